package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostUnified returns a real cgroup2 mount to test the v2 manager on: the
// whole hierarchy on a pure v2 host, the (controller-less) unified mount on
// a hybrid one, where the core files and eBPF device filters still work.
func hostUnified(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	switch cgroups.Mode() {
	case cgroups.Unified:
		return unifiedMountpoint
	case cgroups.Hybrid:
		return filepath.Join(hostRoot, "unified")
	}
	t.Skip("no cgroup2 mount")
	return ""
}

// mknodAny allows mknod of any device of type typ, as runtimes do by default.
func mknodAny(typ string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: "m"}
}

// prober is a shell inside the cgroup that answers "ok" or "denied" to each
// line it reads, after trying to open /dev/null for writing.
type prober struct {
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Reader
}

func startProber(t *testing.T) *prober {
	cmd := exec.Command("sh", "-c", `while read l; do if echo > /dev/null; then echo ok; else echo denied; fi; done 2>/dev/null`)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, cmd)
	return &prober{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (p *prober) probe(t *testing.T) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, "x"); err != nil {
		t.Fatal(err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// deviceFilters counts the device programs attached to dir.
func deviceFilters(t *testing.T, dir string) int {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatal(err)
	}
	return len(q.Programs)
}

// The v2 manager on a real cgroup2 mount: join, freeze, the eBPF device
// filter (narrowed, then widened again, which only works when Set replaces
// the old filter), delete.
func TestHostV2DevicesAndLifecycle(t *testing.T) {
	mnt := hostUnified(t)
	group := "/" + uniqueName("berthtest-v2")
	dir := filepath.Join(mnt, group)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	// loadV2, not newV2: on a hybrid host enabling the unified root's
	// controllers would change host state for no gain.
	m, err := loadV2(mnt, group)
	if err != nil {
		t.Fatal(err)
	}
	p := startProber(t)
	if err := m.Add(p.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if pids, err := m.Procs(); err != nil || !slices.Contains(pids, p.cmd.Process.Pid) {
		t.Fatalf("Procs() = %v, %v", pids, err)
	}
	if got := p.probe(t); got != "ok" {
		t.Fatalf("before any filter: %s", got)
	}
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allowNull := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"}
	for _, step := range []struct {
		rules []specs.LinuxDeviceCgroup
		want  string
	}{
		{[]specs.LinuxDeviceCgroup{denyAll, allowNull}, "ok"},
		{[]specs.LinuxDeviceCgroup{denyAll}, "denied"},
		// runc's default mknod rules ("c *:* m", "b *:* m") grant no access.
		{[]specs.LinuxDeviceCgroup{denyAll, mknodAny("c"), mknodAny("b")}, "denied"},
		{[]specs.LinuxDeviceCgroup{denyAll, mknodAny("c"), mknodAny("b"), allowNull}, "ok"},
	} {
		if err := m.Set(&specs.LinuxResources{Devices: step.rules}); err != nil {
			t.Fatal(err)
		}
		if got := p.probe(t); got != step.want {
			t.Fatalf("after Set(%d rules): /dev/null %s, want %s", len(step.rules), got, step.want)
		}
		if n := deviceFilters(t, dir); n != 1 {
			t.Fatalf("%d device filters attached, want 1", n)
		}
	}
	checkFreeze(t, m, filepath.Join(dir, "cgroup.freeze"), "1", "0")
	if err := m.Delete(); err == nil {
		t.Fatal("Delete with a live process succeeded")
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Wait()
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s left behind: %v", dir, err)
	}
}

// On a pure v2 host: New with resources, check the files, delete.
func TestHostV2Resources(t *testing.T) {
	mnt := hostUnified(t)
	if mnt != unifiedMountpoint {
		t.Skip("needs a pure cgroup v2 host")
	}
	parent := "/" + uniqueName("berthtest-v2")
	group := parent + "/c1"
	t.Cleanup(func() {
		os.Remove(filepath.Join(mnt, group))
		os.Remove(filepath.Join(mnt, parent))
	})
	res := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Cpus: "0"},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(50))},
	}
	m, err := New("ignored", group, res)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Delete() })
	dir := filepath.Join(mnt, group)
	want := map[string]string{"cpu.max": "50000 100000", "cpu.weight": "100", "cpuset.cpus": "0",
		"memory.max": "67108864", "pids.max": "50"}
	if exists(filepath.Join(dir, "memory.swap.max")) {
		want["memory.swap.max"] = "67108864"
	}
	expectFiles(t, dir, want)
	sleep := startSleep(t)
	if err := m.Add(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))}, Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, dir, map[string]string{"memory.max": "max", "pids.max": "max"})
	syscall.Kill(sleep.Process.Pid, syscall.SIGKILL)
	sleep.Wait()
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s left behind: %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, parent)); err != nil {
		t.Fatalf("parent removed: %v", err)
	}
}
