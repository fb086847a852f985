package cgroups

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set applies res on v2. The library converts and writes cpu.weight (from
// shares), cpuset, pids, io.max, hugetlb max and rdma, and builds the eBPF
// device filter. This file writes what it gets wrong for a runtime: cpu.max
// (it writes quota -1 as "-1", which the kernel refuses, and drops a quota
// given without a period), memory (its values are numbers only, so
// unlimited cannot be "max", and swap - limit is computed even for -1), io
// weights (it writes io.weight's 1-10000 scale into io.bfq.weight, whose
// range is 1-1000), hugetlb reservations, cpu burst/idle and unified keys.
// Kernel memory, TCP memory, swappiness and disableOOMKiller have no v2
// file and are ignored, as runc does.
func (m *v2Manager) Set(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if err := m.checkNeeds(res); err != nil {
		return err
	}
	if err := m.lib.Update(m.libraryResources(res)); err != nil {
		return fmt.Errorf("cgroups: set resources on %s: %w", m.dir, explainEINVAL(err))
	}
	steps := []func(*specs.LinuxResources) error{m.setMemory, m.setIOWeights, m.setCPUExtras, m.setHugetlbRsvd, m.setUnified, m.setDevices}
	for _, step := range steps {
		if err := step(res); err != nil {
			return err
		}
	}
	return nil
}

// checkNeeds fails before anything is written when a requested resource's
// controller is not enabled for the group, or has no v2 form at all.
func (m *v2Manager) checkNeeds(res *specs.LinuxResources) error {
	if c := res.CPU; c != nil && (c.RealtimeRuntime != nil || c.RealtimePeriod != nil) {
		return fmt.Errorf("cgroups: %s: linux.resources.cpu realtime limits have no cgroup v2 equivalent", m.dir)
	}
	if b := res.BlockIO; b != nil && b.LeafWeight != nil {
		return fmt.Errorf("cgroups: %s: linux.resources.blockIO.leafWeight has no cgroup v2 equivalent", m.dir)
	}
	ns := needs(res)
	if len(ns) == 0 {
		return nil
	}
	have, err := m.lib.Controllers()
	if err != nil {
		return fmt.Errorf("cgroups: read controllers of %s: %w", m.dir, err)
	}
	for _, n := range ns {
		name := n.controller
		switch name {
		case "devices":
			continue // an eBPF program, not a controller
		case "blkio":
			name = "io"
		}
		if !slices.Contains(have, name) {
			n.controller = name
			err := missing(m.dir, n)
			if m.toggleErr != nil {
				err = fmt.Errorf("%w (enabling controllers failed: %v)", err, m.toggleErr)
			}
			return err
		}
	}
	return nil
}

// libraryResources converts res with the library, minus what this file
// writes itself, and keeps only the hugetlb page sizes the host has.
func (m *v2Manager) libraryResources(res *specs.LinuxResources) *cgroup2.Resources {
	r := cgroup2.ToResources(res)
	r.Memory = nil
	if r.IO != nil {
		r.IO.BFQ.Weight = 0
	}
	if r.CPU != nil {
		r.CPU.Max = v2CPUMax(res.CPU.Quota, res.CPU.Period)
	}
	if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit <= 0 {
		r.Pids = &cgroup2.Pids{Max: -1} // written as "max"
	}
	if r.HugeTlb != nil {
		var kept cgroup2.HugeTlb
		for _, e := range *r.HugeTlb {
			if exists(filepath.Join(m.dir, "hugetlb."+e.HugePageSize+".max")) {
				kept = append(kept, e)
			}
		}
		r.HugeTlb = &kept
	}
	return r
}

// v2CPUMax renders cpu.max the way runc does: a quota of -1 (or none) is
// "max"; without a period only the quota is written and the kernel keeps
// the current period.
func v2CPUMax(quota *int64, period *uint64) cgroup2.CPUMax {
	if quota == nil && period == nil {
		return ""
	}
	q := "max"
	if quota != nil && *quota > 0 {
		q = strconv.FormatInt(*quota, 10)
	}
	if period != nil && *period != 0 {
		return cgroup2.CPUMax(q + " " + strconv.FormatUint(*period, 10))
	}
	return cgroup2.CPUMax(q)
}

// v2SwapMax converts the spec's memory+swap total into memory.swap.max,
// which counts swap alone: swap - limit, "max" for -1. Like runc, a limit of
// -1 without a swap value lifts the swap limit too, and 0 means unset.
func v2SwapMax(limit, swap *int64) (value string, set bool, err error) {
	l := int64(0)
	if limit != nil {
		l = *limit
	}
	if swap == nil || *swap == 0 {
		if l == -1 {
			return "max", true, nil
		}
		return "", false, nil
	}
	s := *swap
	switch {
	case s == -1:
		return "max", true, nil
	case l == 0 || l == -1:
		return "", false, fmt.Errorf("memory+swap limit %d needs a memory limit", s)
	case s < l:
		return "", false, fmt.Errorf("memory+swap limit %d is below the memory limit %d", s, l)
	}
	return strconv.FormatInt(s-l, 10), true, nil
}

func (m *v2Manager) setMemory(res *specs.LinuxResources) error {
	mem := res.Memory
	if mem == nil {
		return nil
	}
	if err := checkBeforeUpdate(mem, filepath.Join(m.dir, "memory.current")); err != nil {
		return fmt.Errorf("cgroups: %s: %w", m.dir, err)
	}
	swap, setSwap, err := v2SwapMax(mem.Limit, mem.Swap)
	if err != nil {
		return fmt.Errorf("cgroups: %s: %w", m.dir, err)
	}
	if setSwap {
		if exists(filepath.Join(m.dir, "memory.swap.max")) {
			if err := writeFile(m.dir, "memory.swap.max", swap); err != nil {
				return err
			}
		} else if swap != "max" {
			return fmt.Errorf("cgroups: %s: swap limit requested but memory.swap.max is missing (swap accounting disabled in the kernel)", m.dir)
		}
	}
	if mem.Limit != nil {
		if err := writeFile(m.dir, "memory.max", limitString(*mem.Limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil {
		return writeFile(m.dir, "memory.low", limitString(*mem.Reservation))
	}
	return nil
}

// setIOWeights writes blkio weights to io.bfq.weight (same 10-1000 scale)
// when BFQ is there, else to io.weight converted to its 1-10000 scale
// (runc's conversion).
func (m *v2Manager) setIOWeights(res *specs.LinuxResources) error {
	b := res.BlockIO
	if b == nil {
		return nil
	}
	file, convert := "io.bfq.weight", func(w uint16) uint64 { return uint64(w) }
	if !exists(filepath.Join(m.dir, file)) {
		file, convert = "io.weight", func(w uint16) uint64 { return 1 + (uint64(w)-10)*9999/990 }
	}
	if (b.Weight != nil || len(b.WeightDevice) > 0) && !exists(filepath.Join(m.dir, file)) {
		return fmt.Errorf("cgroups: %s: blkio weight not supported by the host: no io.bfq.weight or io.weight: %w", m.dir, ErrControllerMissing)
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := blkioWeightOK(m.dir, *b.Weight); err != nil {
			return err
		}
		if err := writeFile(m.dir, file, strconv.FormatUint(convert(*b.Weight), 10)); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight == nil {
			continue
		}
		if err := blkioWeightOK(m.dir, *wd.Weight); err != nil {
			return err
		}
		v := deviceString(wd.Major, wd.Minor) + " " + strconv.FormatUint(convert(*wd.Weight), 10)
		if err := writeFile(m.dir, file, v); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setCPUExtras(res *specs.LinuxResources) error {
	cpu := res.CPU
	if cpu == nil {
		return nil
	}
	if cpu.Burst != nil {
		if err := writeFile(m.dir, "cpu.max.burst", strconv.FormatUint(*cpu.Burst, 10)); err != nil {
			return err
		}
	}
	if cpu.Idle != nil {
		return writeFile(m.dir, "cpu.idle", strconv.FormatInt(*cpu.Idle, 10))
	}
	return nil
}

// setHugetlbRsvd also limits reservations where the kernel has them (the
// spec's default); the library writes only hugetlb.<size>.max.
func (m *v2Manager) setHugetlbRsvd(res *specs.LinuxResources) error {
	for _, l := range res.HugepageLimits {
		name := "hugetlb." + l.Pagesize + ".rsvd.max"
		if exists(filepath.Join(m.dir, name)) {
			if err := writeFile(m.dir, name, strconv.FormatUint(l.Limit, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setUnified writes linux.resources.unified verbatim, which the library
// does not know. Keys are file names in the group's directory.
func (m *v2Manager) setUnified(res *specs.LinuxResources) error {
	for k, v := range res.Unified {
		if k == "" || strings.Contains(k, "/") || k == "." || k == ".." {
			return fmt.Errorf("cgroups: %s: invalid linux.resources.unified key %q", m.dir, k)
		}
		if !exists(filepath.Join(m.dir, k)) {
			ctrl, _, _ := strings.Cut(k, ".")
			return fmt.Errorf("cgroups: %s: linux.resources.unified key %q: no such file (is the %s controller enabled?): %w", m.dir, k, ctrl, ErrControllerMissing)
		}
		if err := writeFile(m.dir, k, v); err != nil {
			return err
		}
	}
	return nil
}

// setDevices attaches the library's eBPF device filter, then detaches the
// filters attached before it. The library attaches with BPF_F_ALLOW_MULTI
// and never detaches; since every attached filter must allow an access,
// each Set would pile up filters that could only ever narrow access.
func (m *v2Manager) setDevices(res *specs.LinuxResources) error {
	if len(res.Devices) == 0 {
		return nil
	}
	fd, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: open %s: %w", m.dir, err)
	}
	defer unix.Close(fd)
	var old []link.AttachedProgram
	if q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice}); err == nil {
		old = q.Programs
	}
	if err := m.lib.Update(&cgroup2.Resources{Devices: normalizeDevices(res.Devices)}); err != nil {
		return fmt.Errorf("cgroups: set device filter on %s: %w", m.dir, err)
	}
	for _, p := range old {
		prog, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			return fmt.Errorf("cgroups: replace device filter on %s: open old program %d: %w", m.dir, p.ID, err)
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice})
		prog.Close()
		if err != nil {
			return fmt.Errorf("cgroups: replace device filter on %s: detach old program %d: %w", m.dir, p.ID, err)
		}
	}
	return nil
}
