package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"

	"github.com/berthrt/berth/libcontainer/events"
)

// Stats is a cgroup's resource usage in the shape `berth-runtime events`
// prints (runc's). The manager fills it straight away rather than through
// an intermediate type: it has no other consumer.
type Stats = events.Stats

// Stats reads the v1 cgroup's usage. The library reads cpu, cpuacct,
// memory, pids, blkio and hugetlb; this adds what it leaves out and runc
// reports: memory.stat as a map, per-CPU user/system time and the cpuset.
// Files a kernel does not have are skipped, not errors: the counters they
// hold are then absent from the result, as with runc.
func (m *v1Manager) Stats() (*Stats, error) {
	lib, err := m.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.Path(), err)
	}
	s := events.NewStats()
	convertV1(lib, s)
	if dir, ok := m.dir(cgroup1.Memory); ok {
		if s.Memory.Raw, err = readKVFile(filepath.Join(dir, "memory.stat")); err != nil {
			return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.Path(), err)
		}
	}
	if dir, ok := m.dir(cgroup1.Cpuacct); ok {
		if err := readUsageAll(filepath.Join(dir, "cpuacct.usage_all"), &s.CPU.Usage); err != nil {
			return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.Path(), err)
		}
	}
	if dir, ok := m.dir(cgroup1.Cpuset); ok {
		if err := readCPUSetV1(dir, &s.CPUSet); err != nil {
			return nil, fmt.Errorf("cgroups: read stats of %s: %w", m.Path(), err)
		}
	}
	return s, nil
}

// convertV1 copies the library's v1 metrics into s, field for field.
func convertV1(lib *v1stats.Metrics, s *Stats) {
	if c := lib.CPU; c != nil {
		if u := c.Usage; u != nil {
			s.CPU.Usage = events.CPUUsage{Total: u.Total, Percpu: u.PerCPU, Kernel: u.Kernel, User: u.User}
		}
		if t := c.Throttling; t != nil {
			s.CPU.Throttling = events.Throttling{Periods: t.Periods, ThrottledPeriods: t.ThrottledPeriods, ThrottledTime: t.ThrottledTime}
		}
	}
	if mem := lib.Memory; mem != nil {
		s.Memory.Cache = mem.Cache
		s.Memory.Usage = memoryEntryV1(mem.Usage)
		s.Memory.Swap = memoryEntryV1(mem.Swap)
		s.Memory.Kernel = memoryEntryV1(mem.Kernel)
		s.Memory.KernelTCP = memoryEntryV1(mem.KernelTCP)
	}
	if p := lib.Pids; p != nil {
		// The library reads "max" as 0, which is also runc's "no limit".
		s.Pids = events.Pids{Current: p.Current, Limit: p.Limit}
	}
	if b := lib.Blkio; b != nil {
		s.Blkio = events.Blkio{
			IoServiceBytesRecursive: blkioEntries(b.IoServiceBytesRecursive),
			IoServicedRecursive:     blkioEntries(b.IoServicedRecursive),
			IoQueuedRecursive:       blkioEntries(b.IoQueuedRecursive),
			IoServiceTimeRecursive:  blkioEntries(b.IoServiceTimeRecursive),
			IoWaitTimeRecursive:     blkioEntries(b.IoWaitTimeRecursive),
			IoMergedRecursive:       blkioEntries(b.IoMergedRecursive),
			IoTimeRecursive:         blkioEntries(b.IoTimeRecursive),
			SectorsRecursive:        blkioEntries(b.SectorsRecursive),
		}
	}
	for _, h := range lib.Hugetlb {
		s.Hugetlb[h.Pagesize] = events.Hugetlb{Usage: h.Usage, Max: h.Max, Failcnt: h.Failcnt}
	}
}

func memoryEntryV1(e *v1stats.MemoryEntry) events.MemoryEntry {
	if e == nil {
		return events.MemoryEntry{}
	}
	return events.MemoryEntry{Limit: e.Limit, Usage: e.Usage, Max: e.Max, Failcnt: e.Failcnt}
}

func blkioEntries(in []*v1stats.BlkIOEntry) []events.BlkioEntry {
	if len(in) == 0 {
		return nil
	}
	out := make([]events.BlkioEntry, len(in))
	for i, e := range in {
		out[i] = events.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value}
	}
	return out
}

// readUsageAll fills the per-CPU user and system times from
// cpuacct.usage_all ("cpu user system" then one line per CPU, in ns).
// Kernels before 4.16 lack the file; the fields then stay empty.
func readUsageAll(path string, u *events.CPUUsage) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var user, kernel []uint64
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue // the header
		}
		if len(f) != 3 {
			return fmt.Errorf("parse %s: line %q", path, line)
		}
		uv, err1 := strconv.ParseUint(f[1], 10, 64)
		kv, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("parse %s: line %q", path, line)
		}
		user, kernel = append(user, uv), append(kernel, kv)
	}
	u.PercpuUser, u.PercpuKernel = user, kernel
	return nil
}

// readCPUSetV1 reads the cpuset and its flags. Each flag file is optional:
// the root cpuset and old kernels lack some.
func readCPUSetV1(dir string, c *events.CPUSet) error {
	var err error
	if c.CPUs, err = readCPUList(filepath.Join(dir, "cpuset.cpus")); err != nil {
		return err
	}
	if c.Mems, err = readCPUList(filepath.Join(dir, "cpuset.mems")); err != nil {
		return err
	}
	flags := []struct {
		file string
		v    *uint64
	}{
		{"cpuset.cpu_exclusive", &c.CPUExclusive}, {"cpuset.mem_hardwall", &c.MemHardwall},
		{"cpuset.mem_exclusive", &c.MemExclusive}, {"cpuset.memory_migrate", &c.MemoryMigrate},
		{"cpuset.memory_spread_page", &c.MemorySpreadPage}, {"cpuset.memory_spread_slab", &c.MemorySpreadSlab},
		{"cpuset.memory_pressure", &c.MemoryPressure}, {"cpuset.sched_load_balance", &c.SchedLoadBalance},
	}
	for _, f := range flags {
		v, err := readInt(filepath.Join(dir, f.file))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		*f.v = uint64(v)
	}
	level, err := readInt(filepath.Join(dir, "cpuset.sched_relax_domain_level"))
	if err == nil {
		c.SchedRelaxDomainLevel = level
	} else if !os.IsNotExist(err) {
		return err
	}
	return nil
}

// readCPUList reads a cpuset list file ("0-3,6"); a missing or empty file
// is an empty list.
func readCPUList(path string) ([]uint16, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	list, err := parseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return list, nil
}

// parseCPUList expands the kernel's list format: ranges and single
// numbers separated by commas.
func parseCPUList(s string) ([]uint16, error) {
	var out []uint16
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid cpu list %q", s)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
				return nil, fmt.Errorf("invalid cpu list %q", s)
			}
		}
		for v := first; v <= last; v++ {
			out = append(out, uint16(v))
		}
	}
	return out, nil
}

// readKVFile reads a "key value" per line file (memory.stat, cpu.stat,
// memory.events) into a map. A missing file gives a nil map.
func readKVFile(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return nil, fmt.Errorf("parse %s: line %q", path, sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: line %q: %w", path, sc.Text(), err)
		}
		out[f[0]] = v
	}
	return out, sc.Err()
}
