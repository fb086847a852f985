package cgroups

import (
	"fmt"
	"math"
	"path/filepath"

	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"

	"github.com/berthrt/berth/libcontainer/events"
)

// Stats reads the v2 group's usage through the library and converts it to
// runc's v1-shaped record the way runc does: times from µs to ns, swap as
// memory+swap, "max" as the kernel's unlimited value for memory and as 0
// (no limit) for pids. What the library does not read is added: memory.stat
// as a map, the memory failure count and the effective cpuset.
func (m *v2Manager) Stats() (*Stats, error) {
	lib, err := m.lib.Stat()
	if err != nil {
		return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.dir, err)
	}
	s := events.NewStats()
	convertV2(lib, s)
	for _, h := range lib.Hugetlb {
		// The library lists every page size of the host, including those
		// whose controller the group does not have; runc lists only these.
		if exists(filepath.Join(m.dir, "hugetlb."+h.Pagesize+".current")) {
			// v2 keeps no peak: Max stays 0 as in runc.
			s.Hugetlb[h.Pagesize] = events.Hugetlb{Usage: h.Current, Failcnt: h.Failcnt}
		}
	}
	if exists(filepath.Join(m.dir, "memory.stat")) {
		if s.Memory.Raw, err = readKVFile(filepath.Join(m.dir, "memory.stat")); err != nil {
			return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.dir, err)
		}
		// cgroup v1's "cache" is v2's page cache, "file".
		s.Memory.Cache = s.Memory.Raw["file"]
	}
	for _, l := range []struct {
		file string
		v    *[]uint16
	}{{"cpuset.cpus.effective", &s.CPUSet.CPUs}, {"cpuset.mems.effective", &s.CPUSet.Mems}} {
		if *l.v, err = readCPUList(filepath.Join(m.dir, l.file)); err != nil {
			return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.dir, err)
		}
	}
	return s, nil
}

// convertV2 copies the library's v2 metrics into s.
func convertV2(lib *v2stats.Metrics, s *Stats) {
	if c := lib.CPU; c != nil {
		s.CPU.Usage = events.CPUUsage{Total: c.UsageUsec * 1000, User: c.UserUsec * 1000, Kernel: c.SystemUsec * 1000}
		s.CPU.Throttling = events.Throttling{Periods: c.NrPeriods, ThrottledPeriods: c.NrThrottled, ThrottledTime: c.ThrottledUsec * 1000}
		s.CPU.PSI = psi(c.PSI)
	}
	if mem := lib.Memory; mem != nil {
		s.Memory.Usage = events.MemoryEntry{Limit: mem.UsageLimit, Usage: mem.Usage, Max: mem.MaxUsage}
		if ev := lib.MemoryEvents; ev != nil {
			// "max" counts the times usage hit memory.max: v1's failcnt.
			s.Memory.Usage.Failcnt = ev.Max
		}
		s.Memory.Swap = swapV2(mem)
		s.Memory.PSI = psi(mem.PSI)
	}
	if p := lib.Pids; p != nil {
		s.Pids = events.Pids{Current: p.Current, Limit: p.Limit}
		if p.Limit == math.MaxUint64 {
			s.Pids.Limit = 0 // "max"
		}
	}
	if io := lib.Io; io != nil {
		for _, e := range io.Usage {
			entry := func(op string, v uint64) events.BlkioEntry {
				return events.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: op, Value: v}
			}
			s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, entry("Read", e.Rbytes), entry("Write", e.Wbytes))
			s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, entry("Read", e.Rios), entry("Write", e.Wios))
		}
		s.Blkio.PSI = psi(io.PSI)
	}
}

// swapV2 reports swap the way v1 does, as memory+swap (runc's rule): the
// usages add up, the limits too unless swap is unlimited, and there is no
// combined peak.
func swapV2(mem *v2stats.MemoryStat) events.MemoryEntry {
	e := events.MemoryEntry{Usage: mem.SwapUsage + mem.Usage, Limit: mem.SwapLimit}
	if e.Limit != math.MaxUint64 {
		e.Limit += mem.UsageLimit
		if e.Limit < mem.UsageLimit { // memory unlimited: the sum wrapped
			e.Limit = math.MaxUint64
		}
	}
	return e
}

func psi(in *v2stats.PSIStats) *events.PSIStats {
	if in == nil {
		return nil
	}
	conv := func(d *v2stats.PSIData) events.PSIData {
		if d == nil {
			return events.PSIData{}
		}
		return events.PSIData{Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300, Total: d.Total}
	}
	return &events.PSIStats{Some: conv(in.Some), Full: conv(in.Full)}
}
