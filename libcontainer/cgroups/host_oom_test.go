package cgroups

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A real OOM kill in a real cgroup, on whatever layout the host has (v1
// eventfd or v2 memory.events): the notification arrives, and the stats of
// the cgroup show its process and its memory.
func TestHostNotifyOOMAndStats(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs busybox")
	}
	parent := "/" + uniqueName("berthtest-oom")
	cg := parent + "/c1"
	if !IsV2() {
		cleanupDirs(t, parent, cg)
	}
	m, err := New("ignored", cg, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(32 << 20)), Swap: ptr(int64(32 << 20))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Delete()
		os.Remove("/sys/fs/cgroup" + parent) // v2; v1 dirs go in cleanupDirs
	})
	// The shell waits for a line so that it allocates only once it is in
	// the cgroup.
	cmd := exec.Command(busybox, "sh", "-c", "read x; exec "+busybox+" dd if=/dev/zero of=/dev/null bs=128M count=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	if err := m.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids.Current != 1 || s.Memory.Usage.Limit != 32<<20 {
		t.Errorf("stats of a cgroup with one shell: pids %+v, memory %+v", s.Pids, s.Memory.Usage)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	oom, err := m.NotifyOOM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	select {
	case _, ok := <-oom:
		if !ok {
			t.Fatal("OOM channel closed without an event")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no OOM event for a 128 MiB buffer under a 32 MiB limit")
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("dd survived its OOM")
	}
	cancel()
	for range oom {
	}
	// The charge dd made before it was killed is on record.
	if s, err = m.Stats(); err != nil {
		t.Fatal(err)
	}
	if s.Memory.Usage.Max < 16<<20 || s.Pids.Current != 0 {
		t.Errorf("stats after the OOM kill: memory %+v (want a peak near the limit), pids %+v", s.Memory.Usage, s.Pids)
	}
}
