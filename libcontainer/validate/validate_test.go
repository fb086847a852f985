package validate

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func newNS(kinds ...specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, k := range kinds {
		out = append(out, specs.LinuxNamespace{Type: k})
	}
	return out
}

// baseSpec is a valid config with every namespace new.
func baseSpec() *specs.Spec {
	return &specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"},
		Linux: &specs.Linux{Namespaces: newNS(specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
			specs.UTSNamespace, specs.MountNamespace)},
	}
}

var noLSM = Host{PageSize: 4096}

func TestSysctlRules(t *testing.T) {
	all := []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace}
	without := func(k specs.LinuxNamespaceType) []specs.LinuxNamespaceType {
		var out []specs.LinuxNamespaceType
		for _, n := range all {
			if n != k {
				out = append(out, n)
			}
		}
		return out
	}
	for _, tc := range []struct {
		key      string
		ns       []specs.LinuxNamespaceType
		hostname string
		want     string // "" accepted, else part of the error
	}{
		{"net.ipv4.ip_forward", all, "", ""},
		{"net/ipv4/conf/eth0.100/rp_filter", all, "", ""},
		{"net.ipv4.ip_forward", without(specs.NetworkNamespace), "", "needs the container's own network namespace"},
		{"kernel.shmmax", all, "", ""},
		{"kernel.msgmnb", all, "", ""},
		{"kernel.sem", all, "", ""},
		{"kernel.shm_rmid_forced", all, "", ""},
		{"fs.mqueue.msg_max", all, "", ""},
		{"fs/mqueue/msg_max", all, "", ""},
		{"kernel.shmmax", without(specs.IPCNamespace), "", "needs the container's own ipc namespace"},
		{"fs.mqueue.msg_max", without(specs.IPCNamespace), "", "needs the container's own ipc namespace"},
		{"kernel.domainname", all, "", ""},
		{"kernel.hostname", all, "", ""},
		{"kernel.hostname", all, "box", "conflicts with the hostname field"},
		{"kernel.domainname", without(specs.UTSNamespace), "", "needs the container's own uts namespace"},
		{"kernel.printk_ratelimit_burst", all, "", "not namespaced"},
		{"kernel.core_pattern", all, "", "not namespaced"},
		{"kernel/core_pattern", all, "", "not namespaced"},
		{"vm.overcommit_memory", all, "", "not namespaced"},
		{"kernel.shmmaxx", all, "", "not namespaced"},
		{"fs.file-max", all, "", "not namespaced"},
		// Each of these would pass as net.* and reach kernel/core_pattern
		// through "..".
		{"net/../kernel/core_pattern", all, "", "not a sysctl name"},
		{"net.ipv4/../../kernel/core_pattern", all, "", "not a sysctl name"},
		{"net..kernel.core_pattern", all, "", "not a sysctl name"},
		{"net.ipv4./x", all, "", "not a sysctl name"},
		{"net.", all, "", "not a sysctl name"},
		{"/net/ipv4/ip_forward", all, "", "not a sysctl name"},
		{"", all, "", "not a sysctl name"},
		{"net.ipv4.ip_forward\x00", all, "", "not a sysctl name"},
	} {
		s := baseSpec()
		s.Linux.Namespaces = newNS(tc.ns...)
		s.Hostname = tc.hostname
		s.Linux.Sysctl = map[string]string{tc.key: "1"}
		expect(t, "sysctl "+tc.key, Spec(s, noLSM), tc.want)
	}
}

func TestSysctlInTheRuntimesOwnNamespace(t *testing.T) {
	s := baseSpec()
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	expect(t, "net sysctl in the runtime's own netns by path", Spec(s, noLSM), "needs the container's own network namespace")
}

func TestHostnameNeedsUTSNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns   []specs.LinuxNamespace
		host string
		dom  string
		want string
	}{
		{newNS(specs.UTSNamespace), "box", "example", ""},
		{nil, "box", "", "hostname \"box\" needs a uts namespace"},
		{nil, "", "example", "domainname \"example\" needs a uts namespace"},
		{[]specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"}}, "box", "", "would rename the host"},
		{nil, "", "", ""},
	} {
		s := baseSpec()
		s.Linux.Namespaces, s.Hostname, s.Domainname = tc.ns, tc.host, tc.dom
		expect(t, "hostname "+tc.host+" domainname "+tc.dom, Spec(s, noLSM), tc.want)
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"valid", func(*specs.Spec) {}, ""},
		{"uid -1", func(s *specs.Spec) { s.Process.User.UID = 4294967295 }, "process.user.uid 4294967295"},
		{"gid -1", func(s *specs.Spec) { s.Process.User.GID = 4294967295 }, "process.user.gid 4294967295"},
		{"additional gid -1", func(s *specs.Spec) { s.Process.User.AdditionalGids = []uint32{5, 4294967295} }, "additionalGids"},
		{"largest uid", func(s *specs.Spec) { s.Process.User.UID = 4294967294 }, ""},
		{"memory 1 byte", func(s *specs.Spec) { mem(s).Limit = i64(1) }, "below the kernel's minimum of 4096 bytes"},
		{"memory one page", func(s *specs.Spec) { mem(s).Limit = i64(4096) }, ""},
		{"memory negative", func(s *specs.Spec) { mem(s).Limit = i64(-2) }, "memory.limit -2 is negative"},
		{"memory unlimited", func(s *specs.Spec) { mem(s).Limit = i64(-1) }, ""},
		{"swap negative", func(s *specs.Spec) { mem(s).Swap = i64(-100) }, "memory.swap -100 is negative"},
		{"swap below limit", func(s *specs.Spec) { mem(s).Limit, mem(s).Swap = i64(1<<30), i64(1<<20) }, "below memory.limit"},
		{"swap unlimited", func(s *specs.Spec) { mem(s).Limit, mem(s).Swap = i64(1<<30), i64(-1) }, ""},
		{"cpu shares max", func(s *specs.Spec) { cpu(s).Shares = u64(262144) }, ""},
		{"cpu shares above max", func(s *specs.Spec) { cpu(s).Shares = u64(262145) }, "range 2-262144"},
		{"cpu shares 1", func(s *specs.Spec) { cpu(s).Shares = u64(1) }, "range 2-262144"},
		{"device type z", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z", Major: 1, Minor: 3}}
		}, `type "z" is not a device type`},
		{"device fifo", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/p", Type: "p"}} }, ""},
		{"device at /", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/", Type: "c"}} }, "must name a file"},
		{"device negative major", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: -1}}
		}, "not negative"},
		{"device rule type z", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "z"}}}
		}, `devices[0]: type "z"`},
		{"device rule access", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Access: "rwx"}}}
		}, `access "rwx"`},
		{"namespace path not a namespace", func(s *specs.Spec) { netns(s, "/etc/passwd") }, "is not a namespace"},
		{"namespace path missing", func(s *specs.Spec) { netns(s, "/nonexistent/ns") }, "no such file"},
		{"namespace path of another type", func(s *specs.Spec) { netns(s, "/proc/self/ns/ipc") }, "of type ipc, listed as network"},
		{"namespace path with a comma", func(s *specs.Spec) { netns(s, "/run/netns/a,b") }, "has a comma"},
		{"namespace path ok", func(s *specs.Spec) { netns(s, "/proc/self/ns/net") }, ""},
		{"unknown namespace", func(s *specs.Spec) { s.Linux.Namespaces = newNS("nope") }, `unknown namespace type "nope"`},
		{"apparmor without AppArmor", func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" }, "AppArmor is not enabled"},
		{"selinux label without SELinux", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, "SELinux is not enabled"},
		{"mount label without SELinux", func(s *specs.Spec) { s.Linux.MountLabel = "system_u:object_r:container_file_t:s0" }, "SELinux is not enabled"},
		{"personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32} }, ""},
		{"bad personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"} }, `domain "LINUX64"`},
		{"bad scheduler", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_NOPE"} }, "SCHED_NOPE"},
		{"bad ioPriority", func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}
		}, "priority 8"},
		{"id mappings without a user namespace", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
		}, "no user namespace"},
		{"id mappings with a user namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = newNS(specs.UserNamespace)
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
		}, ""},
		{"time offsets without a time namespace", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 100}}
		}, "needs a new time namespace"},
		{"time offsets with a time namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = newNS(specs.TimeNamespace)
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 100}}
		}, ""},
		{"intelRdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "guaranteed"} }, "linux.intelRdt"},
		{"empty intelRdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} }, ""},
		{"netDevices", func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}} }, "linux.netDevices"},
		{"memoryPolicy", func(s *specs.Spec) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_BIND", Nodes: "0"} }, "linux.memoryPolicy"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path is required"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "absolute"},
	} {
		s := baseSpec()
		tc.edit(s)
		expect(t, tc.name, Spec(s, noLSM), tc.want)
	}
}

func TestLSMFieldsWhereEnabled(t *testing.T) {
	s := baseSpec()
	s.Process.ApparmorProfile = "docker-default"
	s.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
	expect(t, "labels with both LSMs", Spec(s, Host{AppArmor: true, SELinux: true, PageSize: 4096}), "")
	s.Linux.MountLabel = "system_u:object_r:container_file_t:s0"
	expect(t, "mount label with SELinux", Spec(s, Host{AppArmor: true, SELinux: true, PageSize: 4096}), "does not label mounts")
}

func TestConfigSize(t *testing.T) {
	expect(t, "at the limit", ConfigSize(MaxConfigSize), "")
	expect(t, "over the limit", ConfigSize(40<<20), "over the limit of 16777216 (16 MiB)")
}

func mem(s *specs.Spec) *specs.LinuxMemory {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if s.Linux.Resources.Memory == nil {
		s.Linux.Resources.Memory = &specs.LinuxMemory{}
	}
	return s.Linux.Resources.Memory
}

func cpu(s *specs.Spec) *specs.LinuxCPU {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if s.Linux.Resources.CPU == nil {
		s.Linux.Resources.CPU = &specs.LinuxCPU{}
	}
	return s.Linux.Resources.CPU
}

func netns(s *specs.Spec, path string) {
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: path}}
}

// expect checks err against want: "" means no error, else a part of it.
// Every refusal is one line.
func expect(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: refused: %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: accepted, want an error with %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to contain %q", what, err, want)
	case err != nil && strings.Contains(err.Error(), "\n"):
		t.Errorf("%s: error is more than one line: %q", what, err)
	}
}

func TestTimeOffsets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offsets map[string]specs.LinuxTimeOffset
		newNS   bool
		ok      bool
	}{
		{"none", nil, false, true},
		{"with a new namespace", map[string]specs.LinuxTimeOffset{"boottime": {Secs: -5}, "monotonic": {Secs: 1, Nanosecs: 2}}, true, true},
		{"without a new namespace", map[string]specs.LinuxTimeOffset{"boottime": {Secs: 5}}, false, false},
		{"unknown clock", map[string]specs.LinuxTimeOffset{"realtime": {Secs: 5}}, true, false},
		{"a second or more of nanoseconds", map[string]specs.LinuxTimeOffset{"monotonic": {Nanosecs: 1e9}}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := timeOffsets(tc.offsets, tc.newNS); (err == nil) != tc.ok {
				t.Errorf("timeOffsets: %v, want ok %v", err, tc.ok)
			}
		})
	}
}
