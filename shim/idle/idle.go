// Package idle gives a shim's memory back while it has nothing to do.
//
// A shim spends nearly all its life waiting for its containers to exit.
// What it needed to create and start them — the garbage of create, and the
// code of the whole start-up path (containerd's shim library, plugin
// setup, libcontainer's create) — it does not need while it waits, yet by
// default it keeps all of it: the Go heap hands freed pages back to the
// kernel only lazily, and the kernel keeps every page of the binary it
// once faulted in mapped for as long as the process lives. For one
// container that is most of the shim's footprint.
//
// So once no request has been served for a while the shim collects its
// garbage, returns the free heap pages, and unmaps the read-only pages of
// its own binary. Unmapped code stays in the page cache, shared with every
// other process running the binary, and faults back in (a minor fault,
// no I/O) when it next runs; the kernel does the same to these clean pages
// on its own under memory pressure, so dropping them early is safe.
package idle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
)

// Trimmer trims the process after delay without requests, and again every
// Retrim while no request comes: the runtime's own periodic work (the
// shim library frees memory every 30 seconds, which runs the collector)
// faults some code back in.
type Trimmer struct {
	delay time.Duration
	// ignore are the methods that do not count as requests: calls that
	// block until something happens (Wait), during which the shim is idle.
	ignore map[string]bool

	trim func() // Trim; tests count calls instead
	// afterFunc is time.AfterFunc; tests use a clock of their own.
	afterFunc func(d time.Duration, f func()) timer

	mu     sync.Mutex
	active int
	timer  timer
}

// timer is what the Trimmer needs of a *time.Timer.
type timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// Retrim is how often an idle process is trimmed again.
const Retrim = time.Minute

// New returns a Trimmer that trims delay after the last request, not
// counting the methods in ignore (full ttrpc names, "/service/Method").
func New(delay time.Duration, ignore ...string) *Trimmer {
	t := &Trimmer{
		delay: delay, ignore: map[string]bool{}, trim: Trim,
		afterFunc: func(d time.Duration, f func()) timer { return time.AfterFunc(d, f) },
	}
	for _, m := range ignore {
		t.ignore[m] = true
	}
	return t
}

// Interceptor counts the requests the shim serves, to know when it is idle.
func (t *Trimmer) Interceptor() ttrpc.UnaryServerInterceptor {
	return func(ctx context.Context, u ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, m ttrpc.Method) (any, error) {
		if t.ignore[info.FullMethod] {
			return m(ctx, u)
		}
		t.Busy()
		defer t.Done()
		return m(ctx, u)
	}
}

// Busy marks the start of some work: no trim until the matching Done.
func (t *Trimmer) Busy() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active++
	if t.timer != nil {
		t.timer.Stop()
	}
}

// Done marks the end of some work; the last one arms the timer.
func (t *Trimmer) Done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.active > 0 {
		return
	}
	if t.timer == nil {
		t.timer = t.afterFunc(t.delay, t.fire)
		return
	}
	t.timer.Reset(t.delay)
}

func (t *Trimmer) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active > 0 {
		return // work began after the timer fired
	}
	// Under the lock: a request arriving meanwhile waits the millisecond
	// this takes rather than fault back pages as they are dropped.
	t.trim()
	t.timer.Reset(Retrim)
}

// Trim collects garbage, returns free heap pages to the kernel and drops
// the clean pages of the binary (DropCode).
func Trim() {
	debug.FreeOSMemory()
	DropCode()
}

// DropCode unmaps the pages of the running binary that are mapped
// read-only and were never written (the code and read-only data): they
// are clean copies of the file, so unmapping them loses nothing. A mapping
// with any private (written) page — the C library's relocated tables in a
// static binary — is left alone: dropping those pages would undo the
// writes. It returns how many bytes of mappings it dropped.
func DropCode() (int, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return 0, fmt.Errorf("stat own binary: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("read own mappings: %w", err)
	}
	dropped := 0
	for _, m := range cleanMappings(smaps, st.Dev, st.Ino) {
		// The raw call: unix.Madvise wants a []byte, and these addresses
		// are not Go memory.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return dropped, fmt.Errorf("drop mapping %x-%x of own binary: %w", m.start, m.end, errno)
		}
		dropped += int(m.end - m.start)
	}
	return dropped, nil
}

type mapping struct{ start, end uintptr }

// cleanMappings are the private read-only mappings of the file dev:ino in
// a /proc/<pid>/smaps text that hold no anonymous (copied-on-write) page.
func cleanMappings(smaps []byte, dev, ino uint64) []mapping {
	var out []mapping
	var cur *mapping // the mapping being read, while it qualifies
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4 {
			cur = nil
			// start-end perms offset major:minor inode [path]
			if (f[1] != "r-xp" && f[1] != "r--p") || !sameFile(f[3], f[4], dev, ino) {
				continue
			}
			lo, hi, _ := strings.Cut(f[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				cur = &mapping{uintptr(start), uintptr(end)}
			}
			continue
		}
		if cur != nil && len(f) >= 2 && f[0] == "Anonymous:" {
			if f[1] == "0" {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	return out
}

// sameFile reports whether the "major:minor" (hex) and inode fields of a
// smaps header name dev:ino.
func sameFile(devField, inoField string, dev, ino uint64) bool {
	maj, min, ok := strings.Cut(devField, ":")
	if !ok {
		return false
	}
	ma, err1 := strconv.ParseUint(maj, 16, 32)
	mi, err2 := strconv.ParseUint(min, 16, 32)
	in, err3 := strconv.ParseUint(inoField, 10, 64)
	return err1 == nil && err2 == nil && err3 == nil && unix.Mkdev(uint32(ma), uint32(mi)) == dev && in == ino
}
