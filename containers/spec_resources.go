package containers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	capcur "github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// resourceOpts applies the cgroup limits and rlimits.
func resourceOpts(r Resources) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if r.Memory > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.Memory)))
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * r.Memory // docker: as much swap as memory, unless told
		}
		opts = append(opts, oci.WithMemorySwap(swap))
	} else if r.MemorySwap == -1 {
		opts = append(opts, oci.WithMemorySwap(-1))
	}
	if r.MemoryReservation > 0 || r.OomKillDisable != nil {
		opts = append(opts, withMemory(func(m *specs.LinuxMemory) {
			if r.MemoryReservation > 0 {
				m.Reservation = &r.MemoryReservation
			}
			m.DisableOOMKiller = r.OomKillDisable
		}))
	}
	if r.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(r.CPUShares)))
	}
	switch {
	case r.NanoCPUs > 0:
		opts = append(opts, oci.WithCPUCFS(r.NanoCPUs*cfsPeriod/1e9, cfsPeriod))
	case r.CPUQuota != 0 || r.CPUPeriod != 0:
		period := uint64(r.CPUPeriod)
		if period == 0 {
			period = cfsPeriod
		}
		opts = append(opts, oci.WithCPUCFS(r.CPUQuota, period))
	}
	if r.CpusetCpus != "" {
		opts = append(opts, oci.WithCPUs(r.CpusetCpus))
	}
	blkio, err := blockIO(r)
	if err != nil {
		return nil, err
	}
	if blkio != nil {
		opts = append(opts, oci.WithBlockIO(blkio))
	}
	if r.PidsLimit != nil {
		opts = append(opts, oci.WithPidsLimit(*r.PidsLimit))
	}
	for _, u := range r.Ulimits {
		opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)}))
	}
	for _, d := range r.Devices {
		opts = append(opts, oci.WithDevices(d.PathOnHost, d.PathInContainer, d.CgroupPermissions))
	}
	return opts, nil
}

func withMemory(set func(*specs.LinuxMemory)) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		set(s.Linux.Resources.Memory)
		return nil
	}
}

// blockIO is the blkio section: the weight and the per-device rates
// (which need the devices' numbers).
func blockIO(r Resources) (*specs.LinuxBlockIO, error) {
	if r.BlkioWeight == 0 && len(r.BlkioDeviceReadBps) == 0 && len(r.BlkioDeviceWriteBps) == 0 {
		return nil, nil
	}
	b := &specs.LinuxBlockIO{}
	if r.BlkioWeight > 0 {
		b.Weight = &r.BlkioWeight
	}
	for _, t := range []struct {
		flag string
		devs []ThrottleDevice
		into *[]specs.LinuxThrottleDevice
	}{{"--device-read-bps", r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice}, {"--device-write-bps", r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice}} {
		for _, d := range t.devs {
			major, minor, err := deviceNumbers(d.Path)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", t.flag, d.Path, err)
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = major, minor
			*t.into = append(*t.into, td)
		}
	}
	return b, nil
}

// securityOpts applies --privileged, --cap-add/--cap-drop,
// no-new-privileges and --sysctl.
func securityOpts(hc HostConfig) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if hc.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	}
	caps, err := capabilityOpt(hc.CapAdd, hc.CapDrop)
	if err != nil {
		return nil, err
	}
	if caps != nil {
		opts = append(opts, caps)
	}
	for _, o := range hc.SecurityOpt {
		if o == "no-new-privileges" || o == "no-new-privileges=true" {
			opts = append(opts, oci.WithNoNewPrivileges)
		}
	}
	if len(hc.Sysctls) > 0 {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			for k, v := range hc.Sysctls {
				s.Linux.Sysctl[k] = v
			}
			return nil
		})
	}
	return opts, nil
}

// capabilityOpt applies --cap-add and --cap-drop as docker does: ALL in
// --cap-drop starts from nothing, ALL in --cap-add from every capability
// the kernel knows; names are taken with or without CAP_, in any case.
func capabilityOpt(add, drop []string) (oci.SpecOpts, error) {
	if len(add) == 0 && len(drop) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = true
	}
	norm := func(flag string, names []string) (map[string]bool, bool, error) {
		set, all := map[string]bool{}, false
		for _, n := range names {
			n = strings.ToUpper(n)
			if n == "ALL" {
				all = true
				continue
			}
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if !known[n] {
				return nil, false, fmt.Errorf("invalid %s %q: unknown capability (e.g. NET_ADMIN, SYS_PTRACE, or ALL)", flag, n)
			}
			set[n] = true
		}
		return set, all, nil
	}
	adds, addAll, err := norm("--cap-add", add)
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := norm("--cap-drop", drop)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		set := map[string]bool{}
		if !dropAll {
			for _, c := range s.Process.Capabilities.Bounding {
				set[c] = true
			}
		}
		if addAll {
			// ALL is every capability berth itself holds, as docker's is
			// the daemon's: the kernel may know more than it may grant.
			current, err := capcur.Current()
			if err != nil {
				return fmt.Errorf("--cap-add ALL: read berth's capabilities: %w", err)
			}
			for _, c := range current {
				set[c] = true
			}
		}
		for c := range adds {
			set[c] = true
		}
		for c := range drops {
			if !adds[c] {
				delete(set, c)
			}
		}
		var caps []string
		for c := range set {
			caps = append(caps, c)
		}
		slices.Sort(caps)
		return oci.WithCapabilities(caps)(context.Background(), nil, nil, s)
	}, nil
}
