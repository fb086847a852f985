// Package validate refuses a container config that Berth cannot honour, or
// that would reach past the container onto the host, before create makes
// anything: no state directory, no cgroup, no process. Each refusal is one
// line that names the field, the value, and what would be accepted.
//
// The rules follow runc's (libcontainer/configs/validate) where runc has
// one, so that a config runc refuses is refused here too.
package validate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MaxConfigSize is the largest config.json create accepts. create keeps a
// copy of the config in the state directory, which lives in memory
// (/run), for every container. 16 MiB is containerd's default gRPC message
// limit, so nothing a CRI client can ask for is larger.
const MaxConfigSize = 16 << 20

// Host is what the checks need to know about the machine.
type Host struct {
	AppArmor bool // the AppArmor LSM is enabled
	SELinux  bool // the SELinux LSM is enabled
	PageSize int64
}

// Probe reads the host's facts.
func Probe() Host {
	return Host{AppArmor: appArmorEnabled(), SELinux: selinuxEnabled(), PageSize: int64(os.Getpagesize())}
}

// appArmorEnabled reads the module parameter AppArmor publishes, as runc
// (through its apparmor package) does.
func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// selinuxEnabled says whether selinuxfs is mounted where the kernel puts
// it: SELinux publishes it whenever it is enabled, and a filesystem of that
// type cannot be mounted without it.
func selinuxEnabled() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/selinux", &st) == nil && uint32(st.Type) == unix.SELINUX_MAGIC
}

// ConfigSize refuses a config.json too large to keep a copy of.
func ConfigSize(size int64) error {
	if size > MaxConfigSize {
		return fmt.Errorf("%d bytes is over the limit of %d (%d MiB) for a config: make it smaller (large seccomp profiles, annotations or env are the usual cause)",
			size, MaxConfigSize, MaxConfigSize>>20)
	}
	return nil
}

// Spec checks a container's config for create.
func Spec(s *specs.Spec, h Host) error {
	if err := required(s); err != nil {
		return err
	}
	ns, err := readNamespaces(s.Linux.Namespaces)
	if err != nil {
		return err
	}
	checks := []func() error{
		func() error { return Process(s.Process, h) },
		func() error { return utsFields(s, ns) },
		func() error { return namespaceFields(s.Linux, ns) },
		func() error { return unsupported(s.Linux) },
		func() error { return sysctls(s.Linux.Sysctl, s.Hostname, ns) },
		func() error { return Resources(s.Linux.Resources, h) },
		func() error { return devices(s.Linux.Devices) },
		func() error { return personality(s.Linux.Personality) },
		func() error { return mountLabel(s.Linux.MountLabel, h) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// required is what create cannot go without.
func required(s *specs.Spec) error {
	switch {
	case s.Root == nil || s.Root.Path == "":
		return errors.New("root.path is required")
	case s.Process == nil:
		return errors.New("process is required to create a container")
	case len(s.Process.Args) == 0:
		return errors.New("process.args must name the program to run")
	case s.Process.Cwd == "" || !filepath.IsAbs(s.Process.Cwd):
		return fmt.Errorf("process.cwd %q must be an absolute path", s.Process.Cwd)
	case s.Linux == nil:
		return errors.New("linux section is required")
	}
	return nil
}

// utsFields refuses a hostname or domainname for a container that shares
// the runtime's uts namespace: setting it would rename the host.
func utsFields(s *specs.Spec, ns namespaces) error {
	if ns[specs.UTSNamespace] != shared {
		return nil
	}
	if s.Hostname != "" {
		return fmt.Errorf("hostname %q needs a uts namespace of the container's own (add {\"type\": \"uts\"} to linux.namespaces): it would rename the host", s.Hostname)
	}
	if s.Domainname != "" {
		return fmt.Errorf("domainname %q needs a uts namespace of the container's own (add {\"type\": \"uts\"} to linux.namespaces): it would change the host's", s.Domainname)
	}
	return nil
}

// namespaceFields refuses settings of a namespace the container does not
// have, as runc does, rather than dropping them.
func namespaceFields(l *specs.Linux, ns namespaces) error {
	if _, ok := ns[specs.UserNamespace]; !ok && (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) {
		return errors.New("linux.uidMappings/gidMappings are set, but linux.namespaces has no user namespace to apply them to")
	}
	return timeOffsets(l.TimeOffsets, ns[specs.TimeNamespace] == created)
}

// timeClocks are the clocks a time namespace offsets: the names are the
// same in linux.timeOffsets and in /proc/<pid>/timens_offsets.
var timeClocks = map[string]bool{"monotonic": true, "boottime": true}

// timeOffsets refuses offsets the kernel cannot apply: they can only be
// written into a time namespace that no process has entered yet, so a
// joined one cannot take them.
func timeOffsets(offsets map[string]specs.LinuxTimeOffset, newTimeNS bool) error {
	if len(offsets) == 0 {
		return nil
	}
	if !newTimeNS {
		return errors.New("linux.timeOffsets needs a new time namespace: add {\"type\": \"time\"} to linux.namespaces")
	}
	for clock, o := range offsets {
		if !timeClocks[clock] {
			return fmt.Errorf("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
		if o.Nanosecs >= 1e9 {
			return fmt.Errorf("linux.timeOffsets.%s: nanosecs %d is not below one second", clock, o.Nanosecs)
		}
	}
	return nil
}

// unsupported refuses the linux sections Berth does not implement (and
// `features` does not claim), rather than dropping them.
func unsupported(l *specs.Linux) error {
	switch {
	case l.IntelRdt != nil && !reflect.ValueOf(*l.IntelRdt).IsZero():
		return errors.New("linux.intelRdt: berth-runtime does not manage Intel RDT (resctrl): remove the section")
	case len(l.NetDevices) > 0:
		return errors.New("linux.netDevices: berth-runtime does not move network devices into the container: remove the section")
	case l.MemoryPolicy != nil && !reflect.ValueOf(*l.MemoryPolicy).IsZero():
		return errors.New("linux.memoryPolicy: berth-runtime does not set a NUMA memory policy: remove the section")
	}
	return nil
}
