package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const hostRoot = "/sys/fs/cgroup"

// hostV1 skips unless the test can manage real v1 cgroups.
func hostV1(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if mode := cgroups.Mode(); mode != cgroups.Legacy && mode != cgroups.Hybrid {
		t.Skip("needs cgroup v1 (legacy or hybrid)")
	}
}

// hostHierarchies are the v1 hierarchies mounted on this host.
func hostHierarchies(t *testing.T) []string {
	cfg, err := hostV1Config()
	if err != nil {
		t.Fatal(err)
	}
	return subsystemNames(cfg.subsystems())
}

// hybridUnified is the cgroup2 mount of a hybrid host, "" on a legacy one.
func hybridUnified(t *testing.T) string {
	cfg, err := hostV1Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.unified
}

// uniqueName is a top-level cgroup no other run uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), rand.Uint32())
}

// cleanupDirs removes dirs (deepest first) in every hierarchy, whatever the
// test did: the host must not collect test cgroups.
func cleanupDirs(t *testing.T, paths ...string) {
	t.Cleanup(func() {
		for _, h := range hostHierarchies(t) {
			for i := len(paths) - 1; i >= 0; i-- {
				os.Remove(filepath.Join(hostRoot, h, paths[i]))
			}
		}
		if u := hybridUnified(t); u != "" {
			for i := len(paths) - 1; i >= 0; i-- {
				os.Remove(filepath.Join(u, paths[i]))
			}
		}
	})
}

// startSleep starts a process to put in a cgroup.
func startSleep(t *testing.T) *exec.Cmd {
	cmd := exec.Command("sleep", "300")
	start(t, cmd)
	return cmd
}

// start starts cmd; cleanup kills it by pid (a second Wait after the
// test's own is a harmless error).
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
}

// wholeDisk returns the major and minor numbers of the disk that holds the
// filesystem at path: the blkio throttles take whole disks, not partitions.
// It skips the test where that filesystem is not on a block device.
func wholeDisk(t *testing.T, path string) (major, minor int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	sys := filepath.Join("/sys/dev/block", dev)
	if _, err := os.Stat(sys); err != nil {
		t.Skipf("%s is on device %s, which is not a block device (%v)", path, dev, err)
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		// A partition's sysfs directory sits in its disk's.
		b, err := os.ReadFile(filepath.Join(sys, "..", "dev"))
		if err != nil {
			t.Fatalf("disk of partition %s: %v", dev, err)
		}
		dev = strings.TrimSpace(string(b))
	}
	if _, err := fmt.Sscanf(dev, "%d:%d", &major, &minor); err != nil {
		t.Fatalf("device number %q: %v", dev, err)
	}
	return major, minor
}

func hostExpect(t *testing.T, cg string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		h, f, _ := strings.Cut(k, "/")
		if got := read(t, filepath.Join(hostRoot, h, cg, f)); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestHostV1Lifecycle(t *testing.T) {
	hostV1(t)
	parent := "/" + uniqueName("berthtest")
	cg := parent + "/c1"
	cleanupDirs(t, parent, cg)
	major, minor := wholeDisk(t, "/")
	disk := specs.LinuxBlockIODevice{Major: major, Minor: minor}
	res := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Cpus: "0"},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20)), Reservation: ptr(int64(32 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(50))},
		BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: disk, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: disk, Rate: 100}},
		},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
		},
		// The host has no v1 hugetlb hierarchy (hybrid): skipped, not fatal.
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
	}
	m, err := New("ignored", cg, res)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Delete() })
	if m.Path() != cg {
		t.Fatalf("Path() = %q, want %q", m.Path(), cg)
	}
	hostExpect(t, cg, map[string]string{
		"cpu/cpu.shares": "512", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000", "cpuset/cpuset.cpus": "0",
		"memory/memory.limit_in_bytes": "67108864", "memory/memory.memsw.limit_in_bytes": "134217728",
		"memory/memory.soft_limit_in_bytes": "33554432", "pids/pids.max": "50",
		"blkio/blkio.throttle.read_bps_device":   fmt.Sprintf("%d:%d 1048576", major, minor),
		"blkio/blkio.throttle.write_iops_device": fmt.Sprintf("%d:%d 100", major, minor),
		"devices/devices.list":                   "c 1:3 rwm",
	})

	sleep := startSleep(t)
	pid := sleep.Process.Pid
	if err := m.Add(pid); err != nil {
		t.Fatal(err)
	}
	expectJoined(t, pid, cg)
	if pids, err := m.Procs(); err != nil || !slices.Contains(pids, pid) {
		t.Fatalf("Procs() = %v, %v; want %d in it", pids, err, pid)
	}
	checkFreeze(t, m, filepath.Join(hostRoot, "freezer", cg, "freezer.state"), "FROZEN", "THAWED")

	checkMemoryUpdates(t, m, cg)
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}); err != nil {
		t.Fatal(err)
	}
	hostExpect(t, cg, map[string]string{"pids/pids.max": "max"})

	loaded, err := Load(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Delete(); err == nil {
		t.Fatal("Delete with a live process succeeded")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	sleep.Wait()
	// A container may have made cgroups of its own below its leaf.
	for _, h := range []string{"memory", "cpu", "pids"} {
		if err := os.Mkdir(filepath.Join(hostRoot, h, cg, "nested"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cleanupDirs(t, parent, cg, cg+"/nested")
	checkDeleted(t, loaded, parent, cg)
}

// A relative path lands below this process's own cgroup in each hierarchy;
// on this host the memory one differs from the rest.
func TestHostV1RelativePath(t *testing.T) {
	hostV1(t)
	name := uniqueName("berthtest-rel")
	own, _, err := ownCgroups(readSelfCgroup, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, h := range hostHierarchies(t) {
		dirs = append(dirs, filepath.Join(hostRoot, h, own[h], name))
	}
	t.Cleanup(func() {
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	m, err := New("ignored", name, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Path() = %q", m.Path())
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s not created: %v", d, err)
		}
	}
	loaded, err := Load(m.Path())
	if err != nil {
		t.Fatalf("Load(%q): %v", m.Path(), err)
	}
	if err := loaded.Delete(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
}

// A resource on a hierarchy the host lacks fails New with the controller's
// name, and leaves no directory behind.
func TestHostV1MissingController(t *testing.T) {
	hostV1(t)
	cfg, err := hostV1Config()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.root, "net_cls")); err == nil {
		t.Skip("host has net_cls")
	}
	cg := "/" + uniqueName("berthtest-miss")
	cleanupDirs(t, cg)
	_, err = New("ignored", cg, &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(0x100001))}})
	if !errors.Is(err, ErrControllerMissing) || !strings.Contains(err.Error(), "net_cls") {
		t.Fatalf("New with net_cls: %v, want ErrControllerMissing naming net_cls", err)
	}
	for _, h := range hostHierarchies(t) {
		if _, err := os.Stat(filepath.Join(hostRoot, h, cg)); !os.IsNotExist(err) {
			t.Errorf("failed New left %s%s: %v", h, cg, err)
		}
	}
}

// expectJoined checks /proc/<pid>/cgroup lists cg in every hierarchy.
func expectJoined(t *testing.T, pid int, cg string) {
	t.Helper()
	self, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostHierarchies(t) {
		if h == "systemd" {
			h = "name=systemd"
		}
		if !strings.Contains(string(self), ":"+h+":"+cg+"\n") && !strings.Contains(string(self), ","+h+":"+cg+"\n") {
			t.Errorf("process not in %s:%s:\n%s", h, cg, self)
		}
	}
	// On a hybrid host, in the unified hierarchy at the same path too.
	if hybridUnified(t) != "" && !strings.Contains(string(self), "\n0::"+cg+"\n") {
		t.Errorf("process not in the unified hierarchy's %s:\n%s", cg, self)
	}
}

// checkMemoryUpdates raises, lowers, lifts and sets limit == memsw. The
// kernel keeps limit <= memsw at every write: raising needs memsw first,
// lowering needs the limit first.
func checkMemoryUpdates(t *testing.T, m Manager, cg string) {
	t.Helper()
	for _, step := range []struct{ limit, swap int64 }{{256 << 20, 512 << 20}, {32 << 20, 48 << 20}, {-1, -1}, {16 << 20, 16 << 20}} {
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(step.limit), Swap: ptr(step.swap)}}); err != nil {
			t.Fatalf("Set(limit %d, swap %d): %v", step.limit, step.swap, err)
		}
		want := func(v int64) string {
			if v == -1 {
				return "9223372036854771712"
			}
			return fmt.Sprint(v)
		}
		hostExpect(t, cg, map[string]string{"memory/memory.limit_in_bytes": want(step.limit), "memory/memory.memsw.limit_in_bytes": want(step.swap)})
	}
}

// checkDeleted deletes the cgroup and checks every hierarchy lost the leaf
// (and what a container nested below it) but kept the parent.
func checkDeleted(t *testing.T, m Manager, parent, cg string) {
	t.Helper()
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	for _, h := range hostHierarchies(t) {
		if _, err := os.Stat(filepath.Join(hostRoot, h, cg)); !os.IsNotExist(err) {
			t.Errorf("%s%s left behind: %v", h, cg, err)
		}
		if _, err := os.Stat(filepath.Join(hostRoot, h, parent)); err != nil {
			t.Errorf("parent %s%s removed: %v", h, parent, err)
		}
	}
	if _, err := Load(cg); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Load after Delete: %v, want ErrNotExist", err)
	}
}

// A new process enters a v1 cgroup by itself, through the tasks files
// OpenEntry opens (nsenter's constructor does this for init): a
// single-threaded shell writing "0" to each ends up in the cgroup in every
// hierarchy, which its own /proc/self/cgroup shows. On a hybrid host it
// is cloned into the unified hierarchy's cgroup (Dir).
func TestHostV1Entry(t *testing.T) {
	hostV1(t)
	cg := "/" + uniqueName("berthtest")
	cleanupDirs(t, cg)
	m, err := New("ignored", cg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Delete() })
	e, err := OpenEntry(m)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if (e.Dir != nil) != (hybridUnified(t) != "") || len(e.Tasks) != len(hostHierarchies(t)) {
		t.Fatalf("v1 entry: dir %v and %d tasks files, want one per hierarchy (%v) and the unified dir if hybrid (%q)",
			e.Dir, len(e.Tasks), hostHierarchies(t), hybridUnified(t))
	}
	// (sh's >&N stops at fd 9: the files are reached through /proc.)
	script := ""
	for i := range e.Tasks {
		script += fmt.Sprintf("echo 0 >/proc/self/fd/%d && ", 3+i)
	}
	cmd := exec.Command("/bin/sh", "-c", script+"echo joined && exec sleep 300")
	cmd.ExtraFiles = e.Tasks
	if e.Dir != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(e.Dir.Fd())}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, cmd)
	// The line comes once every write is done (or the shell failed).
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "joined\n" {
		t.Fatalf("the shell did not get through its writes (output %q)", line)
	}
	expectJoined(t, cmd.Process.Pid, cg)
}
