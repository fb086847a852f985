package idle

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
)

func TestCleanMappings(t *testing.T) {
	const smaps = `00400000-00401000 r--p 00000000 fe:00 42 /bin/shim
Rss: 4 kB
Anonymous: 0 kB
00401000-00b16000 r-xp 00001000 fe:00 42 /bin/shim
Rss: 7060 kB
Anonymous: 0 kB
012fc000-01301000 r--p 00efb000 fe:00 42 /bin/shim
Anonymous: 20 kB
01301000-01381000 rw-p 00f00000 fe:00 42 /bin/shim
Anonymous: 0 kB
02000000-02001000 r-xp 00000000 fe:00 43 /bin/other
Anonymous: 0 kB
03000000-03001000 r-xs 00000000 fe:00 42 /bin/shim
Anonymous: 0 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Anonymous: 1024 kB
`
	got := cleanMappings([]byte(smaps), unix.Mkdev(0xfe, 0), 42)
	want := []mapping{{0x400000, 0x401000}, {0x401000, 0xb16000}}
	if len(got) != len(want) {
		t.Fatalf("got %x, want %x (written, writable, shared and other files' mappings excluded)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d: got %x, want %x", i, got[i], want[i])
		}
	}
}

// TestDropCode drops the test binary's code while it runs: the pages it
// had mapped go, and the code still runs afterwards.
func TestDropCode(t *testing.T) {
	before := fileRss(t)
	n, err := DropCode()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("dropped nothing: no clean mapping of the test binary found")
	}
	after := fileRss(t)
	if after >= before {
		t.Errorf("file-backed RSS %d kB before, %d kB after: want less", before, after)
	}
	// Code and constants fault back in: run a fair amount of both.
	if s := strings.Repeat("x", 3); s != "xxx" || len(os.Args) == 0 {
		t.Fatal("code after DropCode misbehaves")
	}
}

// fileRss is the RssFile of this process, in kB.
func fileRss(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			var kb int
			for _, c := range strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) {
				kb = kb*10 + int(c-'0')
			}
			return kb
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// fakeTimer is a timer of fakeClock: armed with a delay until the test
// fires it.
type fakeTimer struct {
	mu    sync.Mutex
	f     func()
	d     time.Duration
	armed bool
}

func (f *fakeTimer) Reset(d time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.armed
	f.d, f.armed = d, true
	return was
}

func (f *fakeTimer) Stop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.armed
	f.armed = false
	return was
}

// pending is the delay the timer is armed with, 0 if it is not.
func (f *fakeTimer) pending() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return 0
	}
	return f.d
}

// fire runs the timer's function as its delay passing would.
func (f *fakeTimer) fire() {
	f.mu.Lock()
	f.armed = false
	f.mu.Unlock()
	f.f()
}

func TestTrimmerWaitsForIdle(t *testing.T) {
	const delay = 500 * time.Millisecond
	trims := 0 // under tr.mu: trim runs under it
	tr := New(delay, "/svc/Wait")
	tr.trim = func() { trims++ }
	count := func() int { tr.mu.Lock(); defer tr.mu.Unlock(); return trims }
	var tm *fakeTimer
	tr.afterFunc = func(d time.Duration, f func()) timer {
		tm = &fakeTimer{f: f, d: d, armed: true}
		return tm
	}
	pending := func() time.Duration {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tm == nil {
			return 0
		}
		return tm.pending()
	}
	ic := tr.Interceptor()
	// call serves method in the background until the returned function
	// is called, which waits for it to return.
	call := func(method string) (finish func()) {
		started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			ic(context.Background(), nil, &ttrpc.UnaryServerInfo{FullMethod: method}, func(context.Context, func(any) error) (any, error) {
				close(started)
				<-release
				return nil, nil
			})
		}()
		<-started
		return func() { close(release); <-done }
	}

	// A request: nothing armed while it runs; the delay after it, then
	// one trim, then a trim every Retrim.
	finish := call("/svc/Create")
	if d := pending(); d != 0 {
		t.Fatalf("a timer of %s armed during a request", d)
	}
	finish()
	if d := pending(); d != delay {
		t.Fatalf("after the request, timer %s, want %s", d, delay)
	}
	tm.fire()
	if n, d := count(), pending(); n != 1 || d != Retrim {
		t.Fatalf("after the delay: %d trims, timer %s; want 1 and %s", n, d, Retrim)
	}

	// A pending Wait does not keep the shim busy, and alone arms nothing.
	finishWait := call("/svc/Wait")
	defer finishWait()
	if d := pending(); d != Retrim {
		t.Fatalf("with a Wait pending, timer %s, want still %s: Wait is not work", d, Retrim)
	}
	call("/svc/State")()
	if d := pending(); d != delay {
		t.Fatalf("after State while Wait blocks, timer %s, want %s", d, delay)
	}
	tm.fire()
	if n := count(); n != 2 {
		t.Fatalf("trimmed %d times, want 2: idle after State while Wait blocks", n)
	}

	// Work that began after the timer fired: no trim under its feet.
	finish = call("/svc/Exec")
	tm.fire()
	if n := count(); n != 2 {
		t.Fatalf("trimmed %d times while a request ran, want still 2", n)
	}
	finish()
}
