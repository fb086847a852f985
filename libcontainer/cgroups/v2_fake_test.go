package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fullResources asks for one of everything the spec offers that v2 has.
func fullResources() *specs.LinuxResources {
	return &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)),
			Burst: ptr(uint64(1000)), Cpus: "0", Mems: "0"},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20)), Swap: ptr(int64(512 << 20)), Reservation: ptr(int64(128 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500)),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 1 << 20}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB", Limit: 1 << 30}},
	}
}

func TestV2FakeTreeLifecycle(t *testing.T) {
	root := fakeV2(t, "c1", allV2)
	m, err := newV2(root, "/berth/c1", fullResources())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "berth/c1")
	wantSubtree := "+cpuset +cpu +io +memory +hugetlb +pids"
	expectFiles(t, root, map[string]string{"cgroup.subtree_control": wantSubtree, "berth/cgroup.subtree_control": wantSubtree})
	expectFiles(t, dir, map[string]string{
		"cpu.weight":    strconv.FormatUint(cgroup2.ConvertCPUSharesToCgroupV2Value(512), 10),
		"cpu.max":       "50000 100000",
		"cpu.max.burst": "1000",
		"cpuset.cpus":   "0", "cpuset.mems": "0",
		"memory.max":      strconv.Itoa(256 << 20),
		"memory.swap.max": strconv.Itoa(256 << 20), // swap - limit
		"memory.low":      strconv.Itoa(128 << 20),
		"pids.max":        "100",
		"io.max":          "254:0 rbps=1048576",
		"io.weight":       "4950", // 1 + (500-10)*9999/990
		"hugetlb.2MB.max": strconv.Itoa(4 << 20), "hugetlb.2MB.rsvd.max": strconv.Itoa(4 << 20),
	})
	if _, err := os.Stat(filepath.Join(dir, "hugetlb.1GB.max")); err == nil {
		t.Error("a page size the host lacks was written")
	}
	if m.Path() != "/berth/c1" {
		t.Errorf("Path() = %q", m.Path())
	}

	if err := m.Add(4242); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, dir, map[string]string{"cgroup.procs": "4242"})
	if pids, err := m.Procs(); err != nil || len(pids) != 1 || pids[0] != 4242 {
		t.Fatalf("Procs() = %v, %v", pids, err)
	}
	checkFreeze(t, m, filepath.Join(dir, "cgroup.freeze"), "1", "0")

	loaded, err := loadV2(root, m.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Delete(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Delete with a process inside: %v, want an error naming %s", err, dir)
	}
	writeTree(t, dir, map[string]string{"cgroup.procs": ""}) // the process exited
	if err := loaded.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("leaf still there after Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "berth")); err != nil {
		t.Fatalf("Delete removed the parent: %v", err)
	}
	if err := m.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

// checkFreeze runs Freeze/Frozen/Thaw against the state file.
func checkFreeze(t *testing.T, m Manager, stateFile, frozen, thawed string) {
	t.Helper()
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, stateFile); got != frozen {
		t.Errorf("after Freeze %s = %q, want %q", stateFile, got, frozen)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Errorf("Frozen() = %v, %v after Freeze", f, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, stateFile); got != thawed {
		t.Errorf("after Thaw %s = %q, want %q", stateFile, got, thawed)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Errorf("Frozen() = %v, %v after Thaw", f, err)
	}
}

func TestV2FakeTreeSet(t *testing.T) {
	tests := []struct {
		name        string
		controllers string
		extra       map[string]string // more files in the leaf
		res         *specs.LinuxResources
		want        map[string]string
		wantErr     string
	}{
		{name: "unlimited is max", res: &specs.LinuxResources{
			CPU:    &specs.LinuxCPU{Quota: ptr(int64(-1)), Period: ptr(uint64(100000))},
			Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))},
			Pids:   &specs.LinuxPids{Limit: ptr(int64(-1))},
		}, want: map[string]string{"cpu.max": "max 100000", "memory.max": "max", "memory.swap.max": "max", "pids.max": "max"}},
		{name: "quota without period keeps the period", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(20000))}},
			want: map[string]string{"cpu.max": "20000"}},
		{name: "swap equal to limit means no swap", res: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20)), Swap: ptr(int64(1 << 20))}},
			want: map[string]string{"memory.max": "1048576", "memory.swap.max": "0"}},
		{name: "swap below limit", res: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(2 << 20)), Swap: ptr(int64(1 << 20))}},
			wantErr: "below the memory limit"},
		{name: "weight device", res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Weight: ptr(uint16(1000))}}}},
			want: map[string]string{"io.weight": "254:0 10000"}},
		{name: "bfq takes the spec's scale", extra: map[string]string{"io.bfq.weight": "default 100"}, res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300))}},
			want: map[string]string{"io.bfq.weight": "300"}},
		{name: "write iops", res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 300}}}},
			want: map[string]string{"io.max": "8:16 wiops=300"}},
		{name: "unified", res: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1000000"}},
			want: map[string]string{"memory.high": "1000000"}},
		{name: "unified unknown key", res: &specs.LinuxResources{Unified: map[string]string{"nope.max": "1"}}, wantErr: "nope"},
		{name: "hugetlb controller missing", controllers: "cpu memory pids",
			res: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}, wantErr: "hugetlb controller"},
		{name: "io controller missing", controllers: "cpu memory pids",
			res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(100))}}, wantErr: "io controller"},
		{name: "realtime has no v2 form", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1))}}, wantErr: "realtime"},
		{name: "net_cls has no v2 form", res: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(1))}}, wantErr: "net_cls controller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctrls := allV2
			if tt.controllers != "" {
				ctrls = tt.controllers
			}
			root := fakeV2(t, "c1", ctrls)
			dir := filepath.Join(root, "berth/c1")
			writeTree(t, dir, tt.extra)
			m, err := newV2(root, "/berth/c1", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Set(tt.res)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("err = %v, want one naming %q and %s", err, tt.wantErr, dir)
				}
				if strings.Contains(tt.wantErr, "controller") && !errors.Is(err, ErrControllerMissing) {
					t.Fatalf("err = %v, want ErrControllerMissing", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			expectFiles(t, dir, tt.want)
		})
	}
}

// A failed New must not leave the group it created behind.
func TestV2FakeTreeNewFailureCleansUp(t *testing.T) {
	root := fakeV2(t, "other", allV2)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(2)), Swap: ptr(int64(1))}}
	if _, err := newV2(root, "/berth/new", res); err == nil {
		t.Fatal("New with swap below limit succeeded")
	}
	if _, err := os.Stat(filepath.Join(root, "berth/new")); !os.IsNotExist(err) {
		t.Fatalf("failed New left its group: %v", err)
	}
}

func TestV2Conversions(t *testing.T) {
	for _, tt := range []struct {
		quota  *int64
		period *uint64
		want   cgroup2.CPUMax
	}{
		{nil, nil, ""},
		{ptr(int64(-1)), nil, "max"},
		{ptr(int64(-1)), ptr(uint64(50000)), "max 50000"},
		{nil, ptr(uint64(50000)), "max 50000"},
		{ptr(int64(25000)), ptr(uint64(50000)), "25000 50000"},
	} {
		if got := v2CPUMax(tt.quota, tt.period); got != tt.want {
			t.Errorf("v2CPUMax(%v, %v) = %q, want %q", tt.quota, tt.period, got, tt.want)
		}
	}
	for _, tt := range []struct {
		limit, swap *int64
		want        string
		set, err    bool
	}{
		{nil, nil, "", false, false},
		{ptr(int64(-1)), nil, "max", true, false},
		{ptr(int64(100)), nil, "", false, false},
		{ptr(int64(100)), ptr(int64(-1)), "max", true, false},
		{ptr(int64(100)), ptr(int64(300)), "200", true, false},
		{ptr(int64(100)), ptr(int64(0)), "", false, false},
		{nil, ptr(int64(300)), "", false, true},
		{ptr(int64(-1)), ptr(int64(300)), "", false, true},
		{ptr(int64(300)), ptr(int64(100)), "", false, true},
	} {
		got, set, err := v2SwapMax(tt.limit, tt.swap)
		if got != tt.want || set != tt.set || (err != nil) != tt.err {
			t.Errorf("v2SwapMax(%v, %v) = %q, %v, %v", tt.limit, tt.swap, got, set, err)
		}
	}
}

// The spec lets a device rule omit type, major and minor; the library's
// eBPF generator needs all three. Normalized rules must compile.
func TestDeviceRulesCompileForV2(t *testing.T) {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rw"},
	}
	norm := normalizeDevices(rules)
	if norm[0].Type != "a" || *norm[0].Major != -1 || *norm[2].Minor != -1 || rules[0].Major != nil {
		t.Fatalf("normalizeDevices = %+v (input changed: %v)", norm, rules[0].Major != nil)
	}
	if _, _, err := cgroup2.DeviceFilter(norm); err != nil {
		t.Fatal(err)
	}
}
