package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set applies res on v1. The library writes cpu, cpuset, reservation,
// swappiness, OOM control, blkio throttles, positive pids limits, devices,
// net_cls/net_prio and rdma. This file does the rest, where the library is
// wrong for a runtime: memory limit and memsw (its reordering on update
// swaps the wrong two entries, so raising a limit fails), blkio weights (it
// only knows CFQ's blkio.weight, gone from modern kernels), hugetlb (no
// update, no check of the page sizes the host has), pids "unlimited" (it
// writes nothing), cpu burst and idle (unknown to it), net_prio (only
// written at creation).
func (m *v1Manager) Set(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if err := m.checkNeeds(res); err != nil {
		return err
	}
	if len(res.Unified) > 0 {
		return fmt.Errorf("cgroups: %s: linux.resources.unified needs cgroup v2", m.Path())
	}
	if err := m.cg.Update(libraryV1Resources(res)); err != nil {
		return fmt.Errorf("cgroups: set resources on %s: %w", m.Path(), explainEINVAL(err))
	}
	steps := []func(*specs.LinuxResources) error{m.setMemory, m.setCPUExtras, m.setPidsMax, m.setBlkioWeights, m.setHugetlb, m.setNetPrio}
	for _, step := range steps {
		if err := step(res); err != nil {
			return explainEINVAL(err)
		}
	}
	return nil
}

// checkNeeds fails before anything is written when a requested resource's
// hierarchy is not mounted, except hugetlb on a hybrid host, whose hugetlb
// controller sits in the unified hierarchy Berth does not use there.
func (m *v1Manager) checkNeeds(res *specs.LinuxResources) error {
	for _, n := range needs(res) {
		if _, ok := m.dir(cgroup1.Name(n.controller)); ok {
			continue
		}
		if n.controller == "hugetlb" && m.cfg.hybrid {
			continue
		}
		return missing(m.Path(), n)
	}
	return nil
}

// libraryV1Resources is res minus what this package writes itself, so the
// library does not write it first, wrongly. Kernel memory limits are dropped:
// the spec deprecates them and kernels since 5.16 refuse the write.
func libraryV1Resources(res *specs.LinuxResources) *specs.LinuxResources {
	c := *res
	if res.Memory != nil {
		mem := *res.Memory
		mem.Limit, mem.Swap, mem.Kernel = nil, nil, nil //nolint:staticcheck // Kernel is deprecated; dropping it is the point
		c.Memory = &mem
	}
	if res.Pids != nil && (res.Pids.Limit == nil || *res.Pids.Limit <= 0) {
		c.Pids = nil
	}
	if res.BlockIO != nil {
		b := *res.BlockIO
		b.Weight, b.LeafWeight, b.WeightDevice = nil, nil, nil
		c.BlockIO = &b
	}
	c.HugepageLimits = nil
	c.Unified = nil
	return &c
}

// memswFirst decides the write order of memory.limit_in_bytes and
// memory.memsw.limit_in_bytes: the kernel keeps limit <= memsw at every
// step, so when the new memsw is above the current limit (raising) memsw
// goes first, otherwise (lowering) the limit goes first. This is runc's rule.
func memswFirst(currentLimit, swap int64) bool {
	return swap == -1 || currentLimit < swap
}

func (m *v1Manager) setMemory(res *specs.LinuxResources) error {
	mem := res.Memory
	if mem == nil || (mem.Limit == nil && mem.Swap == nil) {
		return nil
	}
	dir, _ := m.dir(cgroup1.Memory)
	memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	limit, swap := mem.Limit, mem.Swap
	// "limit -1" alone means unlimited memory, swap included; a finite
	// memsw would otherwise make the kernel refuse the limit.
	if limit != nil && *limit == -1 && swap == nil && exists(memsw) {
		unlimited := int64(-1)
		swap = &unlimited
	}
	if swap != nil && !exists(memsw) {
		return fmt.Errorf("cgroups: %s: memory swap limit requested but %s is missing (swap accounting disabled in the kernel)", m.Path(), memsw)
	}
	if err := checkBeforeUpdate(mem, filepath.Join(dir, "memory.usage_in_bytes")); err != nil {
		return fmt.Errorf("cgroups: %s: %w", m.Path(), err)
	}
	if limit != nil && swap != nil {
		current, err := readInt(filepath.Join(dir, "memory.limit_in_bytes"))
		if err != nil {
			return fmt.Errorf("cgroups: %s: read memory limit: %w", m.Path(), err)
		}
		if memswFirst(current, *swap) {
			if err := writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(*swap, 10)); err != nil {
				return err
			}
			return setMemoryLimitV1(dir, *limit)
		}
	}
	if limit != nil {
		if err := setMemoryLimitV1(dir, *limit); err != nil {
			return err
		}
	}
	if swap != nil {
		return writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(*swap, 10))
	}
	return nil
}

// setMemoryLimitV1 explains EBUSY: the kernel could not reclaim down to a
// limit below current usage, which is otherwise a puzzling "device busy".
func setMemoryLimitV1(dir string, limit int64) error {
	err := writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	if err == nil || !errors.Is(err, unix.EBUSY) {
		return err
	}
	usage, _ := readInt(filepath.Join(dir, "memory.usage_in_bytes"))
	peak, _ := readInt(filepath.Join(dir, "memory.max_usage_in_bytes"))
	return fmt.Errorf("cgroups: memory limit %d is below what the cgroup uses (usage %d, peak %d): %w", limit, usage, peak, err)
}

func (m *v1Manager) setCPUExtras(res *specs.LinuxResources) error {
	cpu := res.CPU
	if cpu == nil || (cpu.Burst == nil && cpu.Idle == nil) {
		return nil
	}
	dir, _ := m.dir(cgroup1.Cpu)
	if cpu.Burst != nil {
		if err := writeFile(dir, "cpu.cfs_burst_us", strconv.FormatUint(*cpu.Burst, 10)); err != nil {
			return err
		}
	}
	if cpu.Idle != nil {
		return writeFile(dir, "cpu.idle", strconv.FormatInt(*cpu.Idle, 10))
	}
	return nil
}

// setPidsMax writes "max" for a limit of 0 or less ("no limit"), which the
// library skips, so that an update can lift an earlier limit.
func (m *v1Manager) setPidsMax(res *specs.LinuxResources) error {
	if res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit > 0 {
		return nil
	}
	dir, _ := m.dir(cgroup1.Pids)
	return writeFile(dir, "pids.max", "max")
}

// setBlkioWeights writes the proportional weights to CFQ's files where they
// exist and to BFQ's (blkio.bfq.*) otherwise, as runc does; with neither
// scheduler the request fails with the files it looked for.
func (m *v1Manager) setBlkioWeights(res *specs.LinuxResources) error {
	b := res.BlockIO
	if b == nil {
		return nil
	}
	dir, _ := m.dir(cgroup1.Blkio)
	write := func(knob, value string) error {
		for _, name := range []string{"blkio." + knob, "blkio.bfq." + knob} {
			if exists(filepath.Join(dir, name)) {
				return writeFile(dir, name, value)
			}
		}
		return fmt.Errorf("cgroups: %s: blkio %s not supported by the host: no blkio.%s or blkio.bfq.%s in %s: %w",
			m.Path(), knob, knob, knob, dir, ErrControllerMissing)
	}
	for _, w := range []struct {
		knob string
		v    *uint16
	}{{"weight", b.Weight}, {"leaf_weight", b.LeafWeight}} {
		if w.v == nil || *w.v == 0 {
			continue
		}
		if err := blkioWeightOK(m.Path(), *w.v); err != nil {
			return err
		}
		if err := write(w.knob, strconv.Itoa(int(*w.v))); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		dev := deviceString(wd.Major, wd.Minor)
		if wd.Weight != nil {
			if err := write("weight_device", dev+" "+strconv.Itoa(int(*wd.Weight))); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := write("leaf_weight_device", dev+" "+strconv.Itoa(int(*wd.LeafWeight))); err != nil {
				return err
			}
		}
	}
	return nil
}

// setHugetlb writes each limit whose page size the host has (a file
// hugetlb.<size>.limit_in_bytes exists) and skips the others, plus the
// reservation limit where the kernel has one (the spec's default). The
// library has no hugetlb update and fails on unknown page sizes.
func (m *v1Manager) setHugetlb(res *specs.LinuxResources) error {
	dir, ok := m.dir(cgroup1.Hugetlb)
	if !ok {
		return nil // checkNeeds allowed this: hybrid host
	}
	for _, l := range res.HugepageLimits {
		v := strconv.FormatUint(l.Limit, 10)
		name := "hugetlb." + l.Pagesize + ".limit_in_bytes"
		if !exists(filepath.Join(dir, name)) {
			continue
		}
		if err := writeFile(dir, name, v); err != nil {
			return err
		}
		rsvd := "hugetlb." + l.Pagesize + ".rsvd.limit_in_bytes"
		if exists(filepath.Join(dir, rsvd)) {
			if err := writeFile(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// setNetPrio writes the interface priorities; the library's net_prio
// controller has no update, so they would be lost through Set.
func (m *v1Manager) setNetPrio(res *specs.LinuxResources) error {
	if res.Network == nil {
		return nil
	}
	dir, _ := m.dir(cgroup1.NetPrio)
	for _, p := range res.Network.Priorities {
		if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
			return err
		}
	}
	return nil
}
