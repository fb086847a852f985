package cgroups

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/libcontainer/events"
)

// v2StatFiles are the statistics files of a busy v2 group, as the kernel
// writes them.
var v2StatFiles = map[string]string{
	"cpu.stat":              "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 700\n",
	"cpu.pressure":          "some avg10=1.50 avg60=0.20 avg300=0.00 total=4242\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n",
	"memory.stat":           "anon 8192\nfile 4096\nkernel_stack 16384\n",
	"memory.current":        "12288",
	"memory.max":            "33554432",
	"memory.peak":           "65536",
	"memory.swap.current":   "1024",
	"memory.swap.max":       "max",
	"memory.events":         "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
	"pids.current":          "3",
	"pids.max":              "max",
	"io.stat":               "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	"hugetlb.2MB.current":   "2097152",
	"hugetlb.2MB.events":    "max 2\n",
	"cpuset.cpus.effective": "0-1,3",
	"cpuset.mems.effective": "0",
	"cgroup.events":         "populated 1\nfrozen 0\n",
}

func TestV2FakeTreeStats(t *testing.T) {
	root := fakeV2(t, "c1", allV2)
	writeTree(t, filepath.Join(root, "berth/c1"), v2StatFiles)
	m, err := newV2(root, "/berth/c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	wantCPU := events.CPU{
		Usage:      events.CPUUsage{Total: 1500_000, User: 1000_000, Kernel: 500_000},
		Throttling: events.Throttling{Periods: 10, ThrottledPeriods: 3, ThrottledTime: 700_000},
		PSI:        &events.PSIStats{Some: events.PSIData{Avg10: 1.5, Avg60: 0.2, Total: 4242}, Full: events.PSIData{Total: 17}},
	}
	if !reflect.DeepEqual(s.CPU, wantCPU) {
		t.Errorf("cpu = %+v, want %+v", s.CPU, wantCPU)
	}
	if want := (events.MemoryEntry{Limit: 32 << 20, Usage: 12288, Max: 65536, Failcnt: 7}); s.Memory.Usage != want {
		t.Errorf("memory.usage = %+v, want %+v", s.Memory.Usage, want)
	}
	// Swap is memory+swap as on v1; unlimited swap keeps the limit at max.
	if want := (events.MemoryEntry{Limit: math.MaxUint64, Usage: 12288 + 1024}); s.Memory.Swap != want {
		t.Errorf("memory.swap = %+v, want %+v", s.Memory.Swap, want)
	}
	if s.Memory.Cache != 4096 || s.Memory.Raw["anon"] != 8192 || s.Memory.Raw["kernel_stack"] != 16384 {
		t.Errorf("memory cache %d raw %v", s.Memory.Cache, s.Memory.Raw)
	}
	if want := (events.Pids{Current: 3}); s.Pids != want {
		t.Errorf("pids = %+v, want %+v (max is no limit)", s.Pids, want)
	}
	wantIO := []events.BlkioEntry{{Major: 254, Op: "Read", Value: 4096}, {Major: 254, Op: "Write", Value: 8192}}
	if !reflect.DeepEqual(s.Blkio.IoServiceBytesRecursive, wantIO) {
		t.Errorf("blkio bytes = %+v, want %+v", s.Blkio.IoServiceBytesRecursive, wantIO)
	}
	if len(s.Blkio.IoServicedRecursive) != 2 || s.Blkio.IoServicedRecursive[1].Value != 2 {
		t.Errorf("blkio ios = %+v", s.Blkio.IoServicedRecursive)
	}
	if !reflect.DeepEqual(s.CPUSet.CPUs, []uint16{0, 1, 3}) || !reflect.DeepEqual(s.CPUSet.Mems, []uint16{0}) {
		t.Errorf("cpuset = %+v", s.CPUSet)
	}
	// The library only looks at the host's page sizes.
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err == nil {
		if want := (events.Hugetlb{Usage: 2 << 20, Failcnt: 2}); s.Hugetlb["2MB"] != want || len(s.Hugetlb) != 1 {
			t.Errorf("hugetlb = %+v, want only 2MB: %+v", s.Hugetlb, want)
		}
	}
}

// The JSON must carry runc's names, and the empty parts must print the way
// runc prints them.
func TestStatsJSONNames(t *testing.T) {
	root := fakeV2(t, "c1", allV2)
	writeTree(t, filepath.Join(root, "berth/c1"), v2StatFiles)
	m, err := newV2(root, "/berth/c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(events.Event{Type: events.TypeStats, ID: "c1", Data: s})
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{
		`{"type":"stats","id":"c1","data":{"cpu":{"usage":{"total":1500000,`, `"kernel":500000,"user":1000000}`,
		`"throttling":{"periods":10,"throttledPeriods":3,"throttledTime":700000}`,
		`"memory":{"cache":4096,"usage":{"limit":33554432,"usage":12288,"max":65536,"failcnt":7}`,
		`"kernelTCP":{"limit":0,"failcnt":0}`, `"raw":{"anon":8192,`,
		`"pids":{"current":3}`, `"ioServiceBytesRecursive":[{"major":254,"op":"Read","value":4096}`,
		`"cpuset":{"cpus":[0,1,3],"cpu_exclusive":0,"mems":[0]`, `"intel_rdt":{}`, `"network_interfaces":null`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
	b, _ = json.Marshal(events.Event{Type: events.TypeOOM, ID: "c1"})
	if string(b) != `{"type":"oom","id":"c1"}` {
		t.Errorf("oom event = %s", b)
	}
}

func TestV1FakeTreeStats(t *testing.T) {
	root := fakeV1Root(t)
	// The library counts memsw only when the hierarchy's root has it.
	writeTree(t, root, map[string]string{"memory/memory.memsw.usage_in_bytes": "0"})
	addV1Cgroup(t, root, "/c1", map[string]string{
		"cpu/cpu.stat":                       "nr_periods 5\nnr_throttled 1\nthrottled_time 900\n",
		"cpuacct/cpuacct.stat":               "user 10\nsystem 5\n",
		"cpuacct/cpuacct.usage_percpu":       "100 200",
		"cpuacct/cpuacct.usage_all":          "cpu user system\n0 60 40\n1 150 50\n",
		"cpuacct/cpuacct.usage":              "300",
		"memory/memory.stat":                 "cache 4096\nrss 8192\ntotal_cache 4096\n",
		"memory/memory.failcnt":              "2",
		"memory/memory.memsw.failcnt":        "0",
		"memory/memory.memsw.usage_in_bytes": "4096", "memory/memory.memsw.max_usage_in_bytes": "8192",
		"memory/memory.oom_control":              "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
		"pids/pids.current":                      "2",
		"blkio/blkio.throttle.io_service_bytes":  "254:0 Read 512\n254:0 Write 1024\nTotal 1536\n",
		"blkio/blkio.throttle.io_serviced":       "254:0 Read 1\n254:0 Write 2\nTotal 3\n",
		"cpuset/cpuset.cpus":                     "0-1",
		"cpuset/cpuset.mems":                     "0",
		"cpuset/cpuset.sched_load_balance":       "1",
		"cpuset/cpuset.sched_relax_domain_level": "-1",
	})
	m, err := newV1(v1Config{root: root, hybrid: true}, cgroupPaths{all: "/c1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	u := s.CPU.Usage
	if u.Total != 300 || !reflect.DeepEqual(u.Percpu, []uint64{100, 200}) || !reflect.DeepEqual(u.PercpuUser, []uint64{60, 150}) ||
		!reflect.DeepEqual(u.PercpuKernel, []uint64{40, 50}) || u.User == 0 || u.Kernel == 0 {
		t.Errorf("cpu usage = %+v", u)
	}
	if want := (events.Throttling{Periods: 5, ThrottledPeriods: 1, ThrottledTime: 900}); s.CPU.Throttling != want {
		t.Errorf("throttling = %+v", s.CPU.Throttling)
	}
	if want := (events.MemoryEntry{Limit: 9223372036854771712, Usage: 4096, Max: 8192, Failcnt: 2}); s.Memory.Usage != want {
		t.Errorf("memory.usage = %+v, want %+v", s.Memory.Usage, want)
	}
	if s.Memory.Cache != 4096 || s.Memory.Raw["rss"] != 8192 || s.Memory.Swap.Usage != 4096 {
		t.Errorf("memory = %+v", s.Memory)
	}
	if want := (events.Pids{Current: 2}); s.Pids != want {
		t.Errorf("pids = %+v, want %+v", s.Pids, want)
	}
	wantIO := []events.BlkioEntry{{Major: 254, Op: "Read", Value: 512}, {Major: 254, Op: "Write", Value: 1024}}
	if !reflect.DeepEqual(s.Blkio.IoServiceBytesRecursive, wantIO) {
		t.Errorf("blkio = %+v, want %+v", s.Blkio.IoServiceBytesRecursive, wantIO)
	}
	if c := s.CPUSet; !reflect.DeepEqual(c.CPUs, []uint16{0, 1}) || c.SchedLoadBalance != 1 || c.SchedRelaxDomainLevel != -1 {
		t.Errorf("cpuset = %+v", c)
	}
	if s.Hugetlb == nil || len(s.Hugetlb) != 0 {
		t.Errorf("hugetlb = %#v, want an empty map (no hierarchy)", s.Hugetlb)
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]uint16{"": nil, "0": {0}, "0-2": {0, 1, 2}, "0-1,4,6-7": {0, 1, 4, 6, 7}} {
		got, err := parseCPUList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"a", "3-1", "1-", "0,,1"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) succeeded", bad)
		}
	}
}

// receive waits for one OOM event or the channel's end.
func receive(t *testing.T, ch <-chan struct{}) (got, open bool) {
	t.Helper()
	select {
	case _, ok := <-ch:
		return ok, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no OOM event and no end within 5s")
	}
	return false, false
}

// The fake memory.events is a plain file, and inotify sees writes to it
// as it sees the kernel's.
func TestV2FakeTreeNotifyOOM(t *testing.T) {
	root := fakeV2(t, "c1", allV2)
	dir := filepath.Join(root, "berth/c1")
	writeTree(t, dir, map[string]string{"memory.events": "max 0\noom 0\noom_kill 2\n", "cgroup.events": "populated 1\nfrozen 0\n"})
	m, err := newV2(root, "/berth/c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.NotifyOOM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A write that leaves oom_kill alone is no OOM; the next one is.
	writeTree(t, dir, map[string]string{"memory.events": "max 3\noom 0\noom_kill 2\n"})
	writeTree(t, dir, map[string]string{"memory.events": "max 3\noom 1\noom_kill 3\n"})
	if got, _ := receive(t, ch); !got {
		t.Fatal("channel closed before the OOM kill was reported")
	}
	select {
	case <-ch:
		t.Fatal("one OOM kill reported twice")
	case <-time.After(100 * time.Millisecond):
	}
	// An OOM kill right before cancellation is still delivered, then the
	// channel ends.
	writeTree(t, dir, map[string]string{"memory.events": "max 3\noom 2\noom_kill 4\n"})
	cancel()
	n := 0
	for range ch {
		n++
	}
	if n != 1 {
		t.Fatalf("%d events after the last OOM kill and cancel, want 1", n)
	}
}

func TestV2FakeTreeNotifyOOMEndsWhenEmpty(t *testing.T) {
	root := fakeV2(t, "c1", allV2)
	dir := filepath.Join(root, "berth/c1")
	writeTree(t, dir, map[string]string{"memory.events": "oom_kill 0\n", "cgroup.events": "populated 1\nfrozen 0\n"})
	m, err := newV2(root, "/berth/c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.NotifyOOM(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"cgroup.events": "populated 0\nfrozen 0\n"})
	if got, _ := receive(t, ch); got {
		t.Fatal("an OOM reported when the group only emptied")
	}
}

func TestNotifyOOMNeedsMemory(t *testing.T) {
	root := fakeV2(t, "c1", "cpu pids")
	os.Remove(filepath.Join(root, "berth/c1/memory.events"))
	m, err := newV2(root, "/berth/c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.NotifyOOM(context.Background()); !errors.Is(err, ErrControllerMissing) {
		t.Fatalf("NotifyOOM without memory.events: %v, want ErrControllerMissing", err)
	}
}

// On the fake v1 tree the kernel side of cgroup.event_control is missing,
// but the registration it is sent must be right: "<eventfd> <fd of
// memory.oom_control>".
func TestV1FakeTreeNotifyOOMRegisters(t *testing.T) {
	root := fakeV1Root(t)
	addV1Cgroup(t, root, "/c1", map[string]string{"memory/cgroup.event_control": ""})
	m, err := newV1(v1Config{root: root, hybrid: true}, cgroupPaths{all: "/c1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := m.NotifyOOM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(read(t, filepath.Join(root, "memory/c1/cgroup.event_control"))); len(f) != 2 {
		t.Errorf("cgroup.event_control = %q, want two fds", f)
	}
	cancel()
	for range ch {
		t.Error("an OOM reported with none signalled")
	}
}
