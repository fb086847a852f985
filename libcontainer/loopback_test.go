package libcontainer

import (
	"os"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestBringLoopbackUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	for _, tc := range []struct {
		name   string
		ns     []specs.LinuxNamespace
		wantUp bool
	}{
		{"new network namespace", []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}}, true},
		{"joined by path", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}, false},
		{"the runtime's own", []specs.LinuxNamespace{{Type: specs.PIDNamespace}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				up  bool
				err error
			}
			done := make(chan result)
			go func() {
				// A fresh namespace stands in for the container's. The
				// thread is never unlocked, so it ends with the goroutine
				// instead of going back to the scheduler in that namespace.
				runtime.LockOSThread()
				if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
					done <- result{err: err}
					return
				}
				err := bringLoopbackUp(tc.ns)
				up, ferr := loopbackUp()
				if err == nil {
					err = ferr
				}
				done <- result{up, err}
			}()
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.up != tc.wantUp {
				t.Fatalf("lo up = %v, want %v", r.up, tc.wantUp)
			}
		})
	}
}

func loopbackUp() (bool, error) {
	fd, ifr, err := loopbackFlags()
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	return ifr.Uint16()&unix.IFF_UP != 0, nil
}
