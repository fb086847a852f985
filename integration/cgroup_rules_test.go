package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A device listed in linux.devices is created, but under a deny-all rule
// of linux.resources.devices it stays unusable: the cgroup allows exactly
// what resources.devices says (plus the default devices), as in runc.
func TestListedDeviceDeniedByRules(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/dev/loop-control", &st); err != nil {
		t.Skipf("this host has no /dev/loop-control to list: %v", err)
	}
	major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	r := newRT(t)
	id := sleeper(t, r, func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{
			Path: "/dev/loop-control", Type: "c", Major: major, Minor: minor})
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	})
	defer r.run("delete", "--force", id)
	if !pureV2() {
		list := cgroupValue(t, r.state(id).Pid, "devices", "devices.list", "")
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, "a ") || strings.HasPrefix(l, fmt.Sprintf("c %d:%d ", major, minor)) {
				t.Errorf("devices.list allows the listed device: %q in\n%s", l, list)
			}
		}
	}
	res := r.run("exec", id, "sh", "-c", "ls -l /dev/loop-control && head -c1 /dev/loop-control; echo status=$?")
	if !strings.Contains(res.stdout, "loop-control") {
		t.Fatalf("the listed device was not created: %q %q", res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "Operation not permitted") || strings.Contains(res.stdout, "status=0") {
		t.Fatalf("opening a device that resources.devices denies: out %q err %q, want EPERM", res.stdout, res.stderr)
	}
	// The default devices stay usable under the deny-all rule.
	if out := r.run("exec", id, "sh", "-c", "head -c1 /dev/zero | wc -c"); strings.TrimSpace(out.stdout) != "1" {
		t.Fatalf("/dev/zero under deny-all: %q %q", out.stdout, out.stderr)
	}
}

// A pids limit of 0 is a limit of 1, as in runc: init alone, no fork.
func TestPidsLimitZeroIsOne(t *testing.T) {
	r := newRT(t)
	zero := func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(0)} }
	id := sleeper(t, r, zero)
	defer r.run("delete", "--force", id)
	if got := cgroupValue(t, r.state(id).Pid, "pids", "pids.max", "pids.max"); got != "1" {
		t.Errorf("pids.max of a container with limit 0: %q, want 1", got)
	}
	b := busybox(t, zero, "sh", "-c", "sleep 0 & wait $!; echo forked=$?")
	res := r.run("run", "-b", b, newID(t))
	if strings.Contains(res.stdout, "forked=0") || !strings.Contains(res.stderr, "fork") {
		t.Fatalf("a fork under pids limit 0: exit %d out %q err %q, want a fork failure", res.code, res.stdout, res.stderr)
	}
}

// On a hybrid host (v1 hierarchies, cgroup2 at /sys/fs/cgroup/unified) the
// container is in the unified hierarchy too, at the same path, as with
// runc, so that tools tracking processes by their unified cgroup see it;
// delete removes that cgroup as well.
func TestHybridUnifiedCgroup(t *testing.T) {
	const unified = "/sys/fs/cgroup/unified"
	var sfs unix.Statfs_t
	if pureV2() || unix.Statfs(unified, &sfs) != nil || sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skip("not a hybrid cgroup host")
	}
	r := newRT(t)
	id := sleeper(t, r, nil)
	defer r.run("delete", "--force", id)
	pid := r.state(id).Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	path := "/berth/" + id // the default cgroupsPath
	if !strings.Contains(string(b), "\n0::"+path+"\n") {
		t.Fatalf("init's /proc/%d/cgroup has no 0::%s line:\n%s", pid, path, b)
	}
	procs, err := os.ReadFile(filepath.Join(unified, path, "cgroup.procs"))
	if err != nil || !strings.Contains("\n"+string(procs), fmt.Sprintf("\n%d\n", pid)) {
		t.Fatalf("init %d not in %s/cgroup.procs: %q %v", pid, filepath.Join(unified, path), procs, err)
	}
	// An exec'd process joins it as well.
	if out := r.must("exec", id, "cat", "/proc/self/cgroup"); !strings.Contains(out, "0::") {
		t.Fatalf("exec'd process: no unified line in %q", out)
	} else if line := unifiedLine(out); line != "0::"+path && line != "0::/" {
		t.Errorf("exec'd process in unified cgroup %q, want the container's (%s, or / in its cgroup namespace)", line, path)
	}
	r.must("delete", "--force", id)
	if _, err := os.Stat(filepath.Join(unified, path)); !os.IsNotExist(err) {
		t.Fatalf("unified cgroup %s left after delete: %v", path, err)
	}
}

// TestHybridUnifiedCgroupRelativePath: with a relative cgroupsPath, the
// hierarchies can put the container at different paths (each under the
// runtime's own cgroup there); the state create records from the start
// must still name the unified one, or delete leaves it behind.
func TestHybridUnifiedCgroupRelativePath(t *testing.T) {
	const unified = "/sys/fs/cgroup/unified"
	var sfs unix.Statfs_t
	if pureV2() || unix.Statfs(unified, &sfs) != nil || sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skip("not a hybrid cgroup host")
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	parent := strings.TrimPrefix(unifiedLine(string(own)), "0::")
	r := newRT(t)
	id := newID(t)
	rel := "berth-it-rel-" + id
	dir := filepath.Join(unified, parent, rel)
	t.Cleanup(func() { os.Remove(dir) })
	b := busybox(t, func(s *specs.Spec) { s.Linux.CgroupsPath = rel }, "sleep", "300")
	r.must("run", "-d", "-b", b, id)
	pid := r.state(id).Pid
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil || !strings.Contains("\n"+string(procs), fmt.Sprintf("\n%d\n", pid)) {
		t.Fatalf("init %d not in %s/cgroup.procs: %q %v", pid, dir, procs, err)
	}
	r.must("delete", "--force", id)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("unified cgroup %s left after delete: %v", dir, err)
	}
}

func unifiedLine(procCgroup string) string {
	for _, l := range strings.Split(procCgroup, "\n") {
		if strings.HasPrefix(l, "0::") {
			return l
		}
	}
	return ""
}
