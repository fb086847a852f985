package validate

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The kernel's bounds on cpu.shares (MIN_SHARES and MAX_SHARES). cgroup v1
// clamps a value outside them without a word, and the v2 conversion to
// cpu.weight would fail late; refuse it, as runc does.
const (
	minCPUShares = 2
	maxCPUShares = 262144
)

// Resources checks linux.resources: at create, and the merged result of an
// update.
func Resources(r *specs.LinuxResources, h Host) error {
	if r == nil {
		return nil
	}
	if err := memory(r.Memory, h); err != nil {
		return err
	}
	if c := r.CPU; c != nil && c.Shares != nil && *c.Shares != 0 {
		if *c.Shares < minCPUShares || *c.Shares > maxCPUShares {
			return fmt.Errorf("linux.resources.cpu.shares %d is out of the kernel's range %d-%d", *c.Shares, minCPUShares, maxCPUShares)
		}
	}
	for i, d := range r.Devices {
		if err := deviceRule(d); err != nil {
			return fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
	}
	return nil
}

// memory checks the limits; -1 means unlimited, 0 unset.
func memory(m *specs.LinuxMemory, h Host) error {
	if m == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}} {
		if f.v != nil && *f.v < -1 {
			return fmt.Errorf("linux.resources.memory.%s %d is negative (use -1 for unlimited)", f.name, *f.v)
		}
	}
	// The kernel counts memory in pages and rounds a limit down to whole
	// ones: a limit under one page is no memory at all.
	if m.Limit != nil && *m.Limit > 0 && *m.Limit < h.PageSize {
		return fmt.Errorf("linux.resources.memory.limit %d is below the kernel's minimum of %d bytes (one page)", *m.Limit, h.PageSize)
	}
	if m.Limit != nil && m.Swap != nil && *m.Limit > 0 && *m.Swap > 0 && *m.Swap < *m.Limit {
		return fmt.Errorf("linux.resources.memory.swap %d is below memory.limit %d: swap is memory plus swap, so it must be at least the limit (or -1)", *m.Swap, *m.Limit)
	}
	return nil
}

func deviceRule(d specs.LinuxDeviceCgroup) error {
	switch d.Type {
	case "", "a", "b", "c":
	default:
		return fmt.Errorf("type %q is not a device type (want a, b or c)", d.Type)
	}
	if strings.Trim(d.Access, "rwm") != "" {
		return fmt.Errorf("access %q: want letters of rwm", d.Access)
	}
	for _, n := range []*int64{d.Major, d.Minor} {
		if n != nil && *n < -1 {
			return fmt.Errorf("device number %d is negative (omit it, or -1, for any)", *n)
		}
	}
	return nil
}

// devices checks linux.devices, the nodes create makes in the container.
func devices(list []specs.LinuxDevice) error {
	for i, d := range list {
		switch d.Type {
		case "c", "u", "b", "p":
		default:
			return fmt.Errorf("linux.devices[%d] %s: type %q is not a device type (want c, u, b or p)", i, d.Path, d.Type)
		}
		if filepath.Join("/", d.Path) == "/" {
			return fmt.Errorf("linux.devices[%d]: path %q must name a file, like /dev/fuse", i, d.Path)
		}
		if d.Type != "p" && (d.Major < 0 || d.Minor < 0) {
			return fmt.Errorf("linux.devices[%d] %s: major %d, minor %d: device numbers are not negative", i, d.Path, d.Major, d.Minor)
		}
	}
	return nil
}
