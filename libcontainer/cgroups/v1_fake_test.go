package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func v1Resources() *specs.LinuxResources {
	return &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Burst: ptr(uint64(1000))},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20)), Swap: ptr(int64(512 << 20)), Reservation: ptr(int64(128 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500)),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 1 << 20}}},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
	}
}

func TestV1FakeTreeLifecycle(t *testing.T) {
	root := fakeV1Root(t)
	// BFQ's weight file stands in for CFQ's blkio.weight, which the host lacks.
	addV1Cgroup(t, root, "/berthtest/c1", map[string]string{"blkio/blkio.bfq.weight": "100"})
	addV1Cgroup(t, root, "/berthtest", nil)
	cfg := v1Config{root: root, hybrid: true} // hugetlb lives in the unified hierarchy: skipped
	m, err := newV1(cfg, cgroupPaths{all: "/berthtest/c1"}, v1Resources())
	if err != nil {
		t.Fatal(err)
	}
	at := func(h string) string { return filepath.Join(root, h, "berthtest/c1") }
	expectFiles(t, at("cpu"), map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "cpu.cfs_burst_us": "1000"})
	// No cpus/mems asked for: copied down from the root, via /berthtest.
	expectFiles(t, at("cpuset"), map[string]string{"cpuset.cpus": "0-1", "cpuset.mems": "0"})
	expectFiles(t, filepath.Join(root, "cpuset/berthtest"), map[string]string{"cpuset.cpus": "0-1", "cpuset.mems": "0"})
	expectFiles(t, at("memory"), map[string]string{"memory.limit_in_bytes": "268435456", "memory.memsw.limit_in_bytes": "536870912", "memory.soft_limit_in_bytes": "134217728"})
	expectFiles(t, at("pids"), map[string]string{"pids.max": "100"})
	expectFiles(t, at("blkio"), map[string]string{"blkio.bfq.weight": "500", "blkio.throttle.read_bps_device": "254:0 1048576"})
	expectFiles(t, at("devices"), map[string]string{"devices.deny": "a *:* rwm", "devices.allow": "c 1:3 rwm"})
	if m.Path() != "/berthtest/c1" {
		t.Errorf("Path() = %q", m.Path())
	}

	if err := m.Add(4242); err != nil {
		t.Fatal(err)
	}
	for h := range v1Hierarchies {
		expectFiles(t, at(h), map[string]string{"cgroup.procs": "4242"})
	}
	if pids, err := m.Procs(); err != nil || len(pids) != 1 || pids[0] != 4242 {
		t.Fatalf("Procs() = %v, %v", pids, err)
	}
	checkFreeze(t, m, filepath.Join(at("freezer"), "freezer.state"), "FROZEN", "THAWED")

	loaded, err := loadV1(cfg, cgroupPaths{all: m.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Delete(); err == nil {
		t.Fatal("Delete with a process inside succeeded")
	}
	for h := range v1Hierarchies {
		writeTree(t, at(h), map[string]string{"cgroup.procs": ""}) // the process exited
	}
	if err := loaded.Delete(); err != nil {
		t.Fatal(err)
	}
	for h := range v1Hierarchies {
		if _, err := os.Stat(at(h)); !os.IsNotExist(err) {
			t.Errorf("%s: leaf still there after Delete: %v", h, err)
		}
		if _, err := os.Stat(filepath.Join(root, h, "berthtest")); err != nil {
			t.Errorf("%s: Delete removed the parent: %v", h, err)
		}
	}
	if err := loaded.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := loadV1(cfg, cgroupPaths{all: m.Path()}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Load after Delete: %v, want ErrNotExist", err)
	}
}

func TestV1FakeTreeSet(t *testing.T) {
	tests := []struct {
		name    string
		hybrid  bool
		res     *specs.LinuxResources
		want    map[string]string // "hierarchy/file": value
		wantErr string
	}{
		{name: "lift limits", res: &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))}, Pids: &specs.LinuxPids{Limit: ptr(int64(0))},
			CPU: &specs.LinuxCPU{Quota: ptr(int64(-1)), Cpus: "1", Mems: "0"},
		}, want: map[string]string{"memory/memory.limit_in_bytes": "-1", "memory/memory.memsw.limit_in_bytes": "-1",
			"pids/pids.max": "max", "cpu/cpu.cfs_quota_us": "-1", "cpuset/cpuset.cpus": "1"}},
		{name: "hugetlb absent on hybrid is skipped", hybrid: true,
			res: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}},
		{name: "hugetlb absent on legacy fails", res: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}},
			wantErr: "hugetlb controller"},
		{name: "net_cls not mounted", hybrid: true, res: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(7))}},
			wantErr: "net_cls controller"},
		{name: "blkio weight without CFQ or BFQ", res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500))}},
			wantErr: "blkio.bfq.weight"},
		{name: "unified needs v2", res: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, wantErr: "cgroup v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeV1Root(t)
			addV1Cgroup(t, root, "/c1", nil)
			m, err := newV1(v1Config{root: root, hybrid: tt.hybrid}, cgroupPaths{all: "/c1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Set(tt.res)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "/c1") {
					t.Fatalf("err = %v, want one naming %q and the path", err, tt.wantErr)
				}
				if strings.Contains(tt.wantErr, "controller") && !errors.Is(err, ErrControllerMissing) {
					t.Fatalf("err = %v, want ErrControllerMissing", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				h, f, _ := strings.Cut(k, "/")
				expectFiles(t, filepath.Join(root, h, "c1"), map[string]string{f: v})
			}
		})
	}
}

// A relative cgroupsPath that resolved differently per hierarchy must round
// trip through Path() and Load to the same directories.
func TestV1FakeTreePerHierarchyPaths(t *testing.T) {
	root := fakeV1Root(t)
	addV1Cgroup(t, root, "/c1", nil)
	writeTree(t, root, map[string]string{"memory/process_api/b39e/c1/cgroup.procs": ""})
	paths, err := resolveV1("id", "c1", reader(hybridSelf), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newV1(v1Config{root: root}, paths, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Path(), "memory:/process_api/b39e/c1") || !strings.Contains(m.Path(), "cpu:/c1") {
		t.Fatalf("Path() = %q", m.Path())
	}
	for _, d := range []string{"memory/process_api/b39e/c1", "cpu/c1", "systemd/c1"} {
		if _, err := os.Stat(filepath.Join(root, d)); err != nil {
			t.Errorf("%s not created: %v", d, err)
		}
	}
	decoded, err := decodePaths(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := loadV1(v1Config{root: root}, decoded)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "memory/process_api/b39e/c1")); !os.IsNotExist(err) {
		t.Fatalf("memory leaf left behind: %v", err)
	}
}

func TestMemswOrder(t *testing.T) {
	for _, tt := range []struct {
		current, swap int64
		memswFirst    bool
	}{
		{current: 64 << 20, swap: 512 << 20, memswFirst: true},           // raising
		{current: 256 << 20, swap: 128 << 20, memswFirst: false},         // lowering
		{current: 256 << 20, swap: 256 << 20, memswFirst: false},         // new memsw == old limit: either works
		{current: 1 << 62, swap: -1, memswFirst: true},                   // lifting
		{current: 9223372036854771712, swap: 1 << 30, memswFirst: false}, // first limit on a fresh cgroup
	} {
		if got := memswFirst(tt.current, tt.swap); got != tt.memswFirst {
			t.Errorf("memswFirst(%d, %d) = %v", tt.current, tt.swap, got)
		}
	}
}

// On a hybrid host the cgroup has a directory in the unified hierarchy at
// the same path: made by New, joined by Add and by a new process (Entry's
// Dir, for CLONE_INTO_CGROUP), removed by Delete.
func TestV1FakeTreeHybridUnified(t *testing.T) {
	for _, tc := range []struct {
		name  string
		paths cgroupPaths
		want  string // the dir below the unified mount
	}{
		{"one path", cgroupPaths{all: "/berthtest/c1"}, "berthtest/c1"},
		{"per hierarchy", cgroupPaths{per: map[string]string{"cpu": "/a/c1", "memory": "/m/c1", unifiedKey: "/u/c1"}}, "u/c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, unified := fakeV1Root(t), t.TempDir()
			cfg := v1Config{root: root, hybrid: true, unified: unified}
			m, err := newV1(cfg, tc.paths, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(unified, tc.want)
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("no unified cgroup at %s: %v", dir, err)
			}
			writeTree(t, dir, map[string]string{"cgroup.procs": ""}) // as the kernel makes it
			if err := m.Add(4242); err != nil {
				t.Fatal(err)
			}
			expectFiles(t, dir, map[string]string{"cgroup.procs": "4242"})
			for _, sub := range m.cg.Subsystems() {
				if d, ok := m.dir(sub.Name()); ok {
					writeTree(t, d, map[string]string{"tasks": ""})
				}
			}
			e, err := OpenEntry(m)
			if err != nil {
				t.Fatal(err)
			}
			if e.Dir == nil || e.Dir.Name() != dir {
				t.Errorf("entry dir %v, want %s", e.Dir, dir)
			}
			e.Close()
			loaded, err := loadV1(cfg, cgroupPaths{all: m.Path()})
			if tc.paths.per != nil {
				p, derr := decodePaths(m.Path())
				if derr != nil {
					t.Fatal(derr)
				}
				loaded, err = loadV1(cfg, p)
			}
			if err != nil {
				t.Fatal(err)
			}
			// The process exited.
			for _, sub := range m.cg.Subsystems() {
				if d, ok := m.dir(sub.Name()); ok {
					writeTree(t, d, map[string]string{"cgroup.procs": ""})
				}
			}
			os.Remove(filepath.Join(dir, "cgroup.procs"))
			if err := loaded.Delete(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("unified cgroup %s left after Delete: %v", dir, err)
			}
		})
	}
}
