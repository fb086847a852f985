package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// need is one controller a resource request depends on.
type need struct {
	controller string // v1 hierarchy or v2 controller name
	what       string // the spec field, for the error message
}

// needs lists the controllers res asks for, named as v1 names them; v2 maps
// blkio to io. Devices need no v2 controller (they are an eBPF program).
func needs(res *specs.LinuxResources) []need {
	var out []need
	if c := res.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil ||
			c.RealtimeRuntime != nil || c.RealtimePeriod != nil || c.Idle != nil {
			out = append(out, need{"cpu", "linux.resources.cpu"})
		}
		if c.Cpus != "" || c.Mems != "" {
			out = append(out, need{"cpuset", "linux.resources.cpu.cpus/mems"})
		}
	}
	if m := res.Memory; m != nil && *m != (specs.LinuxMemory{}) {
		out = append(out, need{"memory", "linux.resources.memory"})
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		out = append(out, need{"pids", "linux.resources.pids"})
	}
	if b := res.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		out = append(out, need{"blkio", "linux.resources.blockIO"})
	}
	if len(res.Devices) > 0 {
		out = append(out, need{"devices", "linux.resources.devices"})
	}
	if len(res.HugepageLimits) > 0 {
		out = append(out, need{"hugetlb", "linux.resources.hugepageLimits"})
	}
	if n := res.Network; n != nil && n.ClassID != nil {
		out = append(out, need{"net_cls", "linux.resources.network.classID"})
	}
	if n := res.Network; n != nil && len(n.Priorities) > 0 {
		out = append(out, need{"net_prio", "linux.resources.network.priorities"})
	}
	if len(res.Rdma) > 0 {
		out = append(out, need{"rdma", "linux.resources.rdma"})
	}
	return out
}

// missing is the error for a resource whose controller the host lacks.
func missing(path string, n need) error {
	return fmt.Errorf("cgroups: %s: %s needs the %s controller: %w", path, n.what, n.controller, ErrControllerMissing)
}

// normalizeDevices fills in what the spec lets a device rule omit: no type
// means all ("a"), no major/minor means any (-1). The library's v2 eBPF
// generator dereferences Major/Minor and rejects an empty type.
func normalizeDevices(in []specs.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	any := int64(-1)
	out := make([]specs.LinuxDeviceCgroup, len(in))
	for i, d := range in {
		if d.Type == "" {
			d.Type = "a"
		}
		if d.Major == nil {
			d.Major = &any
		}
		if d.Minor == nil {
			d.Minor = &any
		}
		out[i] = d
	}
	return out
}

// exists reports whether a control file is there: on cgroupfs a missing file
// means the kernel does not offer that knob.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFile writes one value to an existing control file. Unlike
// os.WriteFile it never creates the file: creating one in a cgroup dir fails
// with a misleading EACCES, and in a fake test tree it would hide a typo.
func writeFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.WriteString(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		// err is an *fs.PathError and already names the file.
		return fmt.Errorf("cgroups: write %q: %w", value, err)
	}
	return nil
}

// limitString renders a limit where -1 means unlimited ("max" on v2).
func limitString(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// checkBeforeUpdate implements memory.checkBeforeUpdate: refuse a limit
// below what the cgroup already uses instead of letting the kernel reclaim or
// OOM-kill to get there.
func checkBeforeUpdate(mem *specs.LinuxMemory, usageFile string) error {
	if mem.CheckBeforeUpdate == nil || !*mem.CheckBeforeUpdate || mem.Limit == nil || *mem.Limit < 0 {
		return nil
	}
	usage, err := readInt(usageFile)
	if err != nil {
		return fmt.Errorf("cgroups: read memory usage: %w", err)
	}
	if usage > *mem.Limit {
		return fmt.Errorf("cgroups: memory limit %d is below current usage %d (%s)", *mem.Limit, usage, usageFile)
	}
	return nil
}

// blkioWeightOK rejects weights the kernel would reject, before the v2
// conversion below turns them into nonsense.
func blkioWeightOK(path string, w uint16) error {
	if w < 10 || w > 1000 {
		return fmt.Errorf("cgroups: %s: blkio weight %d out of range 10-1000", path, w)
	}
	return nil
}

// deviceString is a device number pair as control files write it.
func deviceString(major, minor int64) string {
	return strings.Join([]string{strconv.FormatInt(major, 10), strconv.FormatInt(minor, 10)}, ":")
}

// explainEINVAL adds the likely reason to the kernel's bare "invalid
// argument" for the writes where it is not the value's format: these come
// up through `update`, which changes one knob of a live cgroup.
func explainEINVAL(err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) || !errors.Is(err, unix.EINVAL) {
		return err
	}
	switch filepath.Base(pe.Path) {
	case "cpu.rt_runtime_us":
		return fmt.Errorf("%w (a realtime runtime must fit in what the parent cgroup's cpu.rt_runtime_us grants)", err)
	case "cpu.shares", "cpu.weight":
		return fmt.Errorf("%w (out of range, or the cgroup is SCHED_IDLE: cpu.idle 1 takes no shares)", err)
	case "memory.memsw.limit_in_bytes", "memory.limit_in_bytes":
		return fmt.Errorf("%w (the memory limit must not exceed the memory+swap limit)", err)
	}
	return err
}
