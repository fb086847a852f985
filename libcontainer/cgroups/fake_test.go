package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fake trees below are plain directories shaped like cgroupfs. The
// kernel creates a cgroup's control files when the directory is made; here
// the tests create them up front, so the code under test finds (or, for a
// knob the "host" lacks, misses) them exactly as on a real host.

// writeTree creates files (path -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// read returns a control file's content without surrounding whitespace.
func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// expectFiles checks control files under dir.
func expectFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := read(t, filepath.Join(dir, name)); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// v2Leaf is what the kernel puts in a new cgroup v2 directory with the
// cpuset, cpu, io, memory, hugetlb (2MB pages only) and pids controllers.
func v2Leaf(controllers string) map[string]string {
	return map[string]string{
		"cgroup.controllers": controllers, "cgroup.subtree_control": "", "cgroup.procs": "",
		"cgroup.freeze": "0", "cgroup.type": "domain", "cgroup.events": "populated 0\nfrozen 0",
		"cpu.max": "max 100000", "cpu.weight": "100", "cpu.max.burst": "0", "cpu.idle": "0",
		"cpuset.cpus": "", "cpuset.mems": "",
		"memory.max": "max", "memory.high": "max", "memory.swap.max": "max", "memory.low": "0", "memory.current": "4096",
		"pids.max": "max", "io.max": "", "io.weight": "default 100",
		"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max",
	}
}

const allV2 = "cpuset cpu io memory hugetlb pids"

// fakeV2 lays out a unified mount with /berth and an (already created by
// "the kernel") leaf /berth/<leaf> whose available controllers are given.
func fakeV2(t *testing.T, leaf, controllers string) string {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cgroup.controllers": allV2, "cgroup.subtree_control": "", "cgroup.procs": "",
		"berth/cgroup.controllers": allV2, "berth/cgroup.subtree_control": "", "berth/cgroup.procs": "",
	})
	files := map[string]string{}
	for k, v := range v2Leaf(controllers) {
		files[filepath.Join("berth", leaf, k)] = v
	}
	writeTree(t, root, files)
	return root
}

// v1Hierarchies are the hierarchies the CI host mounts, with the control
// files a new cgroup gets in each (no CFQ blkio.weight: the host has none).
var v1Hierarchies = map[string]map[string]string{
	"cpu":     {"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpu.cfs_burst_us": "0", "cpu.idle": "0", "cpu.rt_runtime_us": "0", "cpu.rt_period_us": "1000000"},
	"cpuacct": {"cpuacct.usage": "0"},
	"cpuset":  {"cpuset.cpus": "", "cpuset.mems": ""},
	"memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
		"memory.soft_limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "4096",
		"memory.max_usage_in_bytes": "8192", "memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0"},
	"pids": {"pids.max": "max"},
	"blkio": {"blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
		"blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""},
	"freezer": {"freezer.state": "THAWED"},
	"devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
	"systemd": {},
}

// fakeV1Root lays out the v1 hierarchies with their root cgroups.
func fakeV1Root(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for h := range v1Hierarchies {
		writeTree(t, root, map[string]string{h + "/cgroup.procs": "", h + "/tasks": ""})
	}
	writeTree(t, root, map[string]string{"cpuset/cpuset.cpus": "0-1", "cpuset/cpuset.mems": "0"})
	return root
}

// addV1Cgroup makes the directories of cgroup path in every hierarchy, with
// the files the kernel would create, plus extra ("hierarchy/file": value).
func addV1Cgroup(t *testing.T, root, path string, extra map[string]string) {
	t.Helper()
	files := map[string]string{}
	for h, ctl := range v1Hierarchies {
		files[filepath.Join(h, path, "cgroup.procs")] = ""
		files[filepath.Join(h, path, "tasks")] = ""
		for k, v := range ctl {
			files[filepath.Join(h, path, k)] = v
		}
	}
	for k, v := range extra {
		h, f, _ := strings.Cut(k, "/")
		files[filepath.Join(h, path, f)] = v
	}
	writeTree(t, root, files)
}
