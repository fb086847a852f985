package containers

import (
	"fmt"
	"math/big"
	"path/filepath"
	"strings"

	"github.com/docker/go-units"
)

// parseResources parses the memory, cpu, io, pids, ulimit and device flags.
func (f *Flags) parseResources(r *Resources) error {
	var err error
	sizes := []struct {
		flag, value string
		into        *int64
	}{{"--memory", f.Memory, &r.Memory}, {"--memory-reservation", f.MemoryReservation, &r.MemoryReservation}}
	for _, s := range sizes {
		if s.value == "" {
			continue
		}
		if *s.into, err = units.RAMInBytes(s.value); err != nil || *s.into <= 0 {
			return fmt.Errorf("invalid %s %q: want a positive size such as 32m or 1g", s.flag, s.value)
		}
	}
	if r.Memory > 0 && r.Memory < 6*1024*1024 {
		return fmt.Errorf("invalid --memory %q: the minimum is 6m", f.Memory)
	}
	switch f.MemorySwap {
	case "":
	case "-1":
		r.MemorySwap = -1
	default:
		if r.MemorySwap, err = units.RAMInBytes(f.MemorySwap); err != nil || r.MemorySwap <= 0 {
			return fmt.Errorf("invalid --memory-swap %q: want a size (memory plus swap) or -1 for unlimited swap", f.MemorySwap)
		}
		if r.Memory == 0 {
			return fmt.Errorf("invalid --memory-swap %q: it needs --memory as well", f.MemorySwap)
		}
		if r.MemorySwap < r.Memory {
			return fmt.Errorf("invalid --memory-swap %q: it is memory plus swap, so it must be at least --memory %q", f.MemorySwap, f.Memory)
		}
	}
	if f.OomKillDisable {
		t := true
		r.OomKillDisable = &t
	}
	if err := f.parseCPU(r); err != nil {
		return err
	}
	if f.BlkioWeight != 0 && (f.BlkioWeight < 10 || f.BlkioWeight > 1000) {
		return fmt.Errorf("invalid --blkio-weight %d: want 10 to 1000", f.BlkioWeight)
	}
	r.BlkioWeight = f.BlkioWeight
	if r.BlkioDeviceReadBps, err = parseThrottle("--device-read-bps", f.DeviceReadBps); err != nil {
		return err
	}
	if r.BlkioDeviceWriteBps, err = parseThrottle("--device-write-bps", f.DeviceWriteBps); err != nil {
		return err
	}
	if f.PidsLimitSet {
		n := f.PidsLimit
		if n <= 0 {
			n = -1 // docker: 0 or -1 is unlimited
		}
		r.PidsLimit = &n
	}
	for _, u := range f.Ulimits {
		parsed, err := units.ParseUlimit(u)
		if err != nil {
			return fmt.Errorf("invalid --ulimit %q: %w (want NAME=SOFT[:HARD], e.g. nofile=1024:2048)", u, err)
		}
		r.Ulimits = append(r.Ulimits, parsed)
	}
	for _, d := range f.Devices {
		m, err := parseDevice(d)
		if err != nil {
			return err
		}
		r.Devices = append(r.Devices, m)
	}
	return nil
}

// cfsPeriod is the CFS period --cpus uses, docker's 100ms.
const cfsPeriod = 100000

func (f *Flags) parseCPU(r *Resources) error {
	if f.CPUShares < 0 {
		return fmt.Errorf("invalid --cpu-shares %d: want a positive weight (1024 is the default share)", f.CPUShares)
	}
	r.CPUShares = f.CPUShares
	if f.CPUs != "" {
		rat, ok := new(big.Rat).SetString(f.CPUs)
		if !ok || rat.Sign() <= 0 {
			return fmt.Errorf("invalid --cpus %q: want a positive number of CPUs such as 0.5", f.CPUs)
		}
		nano := rat.Mul(rat, big.NewRat(1e9, 1))
		if !nano.IsInt() {
			return fmt.Errorf("invalid --cpus %q: at most 9 decimal places", f.CPUs)
		}
		r.NanoCPUs = nano.Num().Int64()
		if f.CPUQuota != 0 || f.CPUPeriod != 0 {
			return fmt.Errorf("conflicting options: --cpus and --cpu-quota/--cpu-period: give one or the other")
		}
	}
	if f.CPUPeriod != 0 && (f.CPUPeriod < 1000 || f.CPUPeriod > 1000000) {
		return fmt.Errorf("invalid --cpu-period %d: want 1000 to 1000000 (microseconds)", f.CPUPeriod)
	}
	if f.CPUQuota != 0 && f.CPUQuota < 1000 && f.CPUQuota != -1 {
		return fmt.Errorf("invalid --cpu-quota %d: want at least 1000 (microseconds), or -1", f.CPUQuota)
	}
	r.CPUQuota, r.CPUPeriod, r.CpusetCpus = f.CPUQuota, f.CPUPeriod, f.CpusetCpus
	return nil
}

// parseThrottle parses DEVICE:RATE values such as /dev/sda:1mb.
func parseThrottle(flag string, values []string) ([]ThrottleDevice, error) {
	var out []ThrottleDevice
	for _, v := range values {
		dev, rate, ok := strings.Cut(v, ":")
		if !ok || !strings.HasPrefix(dev, "/dev/") {
			return nil, fmt.Errorf("invalid %s %q: want /dev/DEVICE:RATE, e.g. /dev/sda:1mb", flag, v)
		}
		n, err := units.RAMInBytes(rate)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid %s %q: the rate %q is no size (e.g. 1mb, 512kb)", flag, v, rate)
		}
		out = append(out, ThrottleDevice{Path: dev, Rate: uint64(n)})
	}
	return out, nil
}

// parseDevice parses --device HOST[:CONTAINER][:PERMISSIONS].
func parseDevice(v string) (DeviceMapping, error) {
	parts := strings.Split(v, ":")
	m := DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	m.PathInContainer = m.PathOnHost
	switch len(parts) {
	case 1:
	case 2:
		if validDevicePermissions(parts[1]) {
			m.CgroupPermissions = parts[1]
		} else {
			m.PathInContainer = parts[1]
		}
	case 3:
		m.PathInContainer, m.CgroupPermissions = parts[1], parts[2]
	default:
		return DeviceMapping{}, fmt.Errorf("invalid --device %q: want HOST-DEVICE[:CONTAINER-PATH][:rwm]", v)
	}
	if !filepath.IsAbs(m.PathOnHost) || !filepath.IsAbs(m.PathInContainer) || !validDevicePermissions(m.CgroupPermissions) {
		return DeviceMapping{}, fmt.Errorf("invalid --device %q: want HOST-DEVICE[:CONTAINER-PATH][:rwm] with absolute paths", v)
	}
	return m, nil
}

func validDevicePermissions(p string) bool {
	if p == "" {
		return false
	}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) {
			return false
		}
	}
	return true
}

// parseModes parses --ipc, --pid and --uts (--net is parseNetwork's).
func (f *Flags) parseModes(hc *HostConfig) error {
	modes := []struct {
		flag, value string
		allowed     []string
		into        *string
	}{
		{"--ipc", f.Ipc, []string{"", "private", "shareable", "host", "none"}, &hc.IpcMode},
		{"--pid", f.Pid, []string{"", "host"}, &hc.PidMode},
		{"--uts", f.UTS, []string{"", "host"}, &hc.UTSMode},
	}
	for _, m := range modes {
		ok := false
		for _, a := range m.allowed {
			ok = ok || m.value == a
		}
		if !ok {
			return fmt.Errorf("invalid %s %q: want %s", m.flag, m.value, strings.Join(m.allowed[1:], " or "))
		}
		*m.into = m.value
	}
	if hc.IpcMode == "" {
		hc.IpcMode = "private"
	}
	return nil
}
