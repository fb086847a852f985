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

func TestTrimmerWaitsForIdle(t *testing.T) {
	var mu sync.Mutex
	trims := 0
	tr := New(20*time.Millisecond, "/svc/Wait")
	tr.trim = func() { mu.Lock(); trims++; mu.Unlock() }
	count := func() int { mu.Lock(); defer mu.Unlock(); return trims }
	ic := tr.Interceptor()
	call := func(method string, d time.Duration) {
		ic(context.Background(), nil, &ttrpc.UnaryServerInfo{FullMethod: method}, func(context.Context, func(any) error) (any, error) {
			time.Sleep(d)
			return nil, nil
		})
	}

	// A long request: no trim while it runs, one after it.
	done := make(chan struct{})
	go func() { call("/svc/Create", 100*time.Millisecond); close(done) }()
	time.Sleep(60 * time.Millisecond)
	if n := count(); n != 0 {
		t.Fatalf("trimmed %d times during a request", n)
	}
	<-done
	time.Sleep(80 * time.Millisecond)
	if n := count(); n != 1 {
		t.Fatalf("trimmed %d times after the request, want 1", n)
	}

	// A pending Wait does not keep the shim busy, and alone arms nothing.
	go call("/svc/Wait", 200*time.Millisecond)
	time.Sleep(80 * time.Millisecond)
	if n := count(); n != 1 {
		t.Fatalf("trimmed %d times, want still 1: Wait is not work", n)
	}
	call("/svc/State", 0)
	time.Sleep(80 * time.Millisecond)
	if n := count(); n != 2 {
		t.Fatalf("trimmed %d times, want 2: idle after State while Wait blocks", n)
	}
}
