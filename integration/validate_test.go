package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	ctrdpkg "github.com/berthrt/berth/integration/ctrd"
)

// expectRefused runs create on the bundle and checks what a user sees of a
// refused config: a non-zero exit, one line on stderr that mentions want,
// and nothing left behind (no state directory, no cgroup).
func expectRefused(t *testing.T, r *rt, b, want string) {
	t.Helper()
	id := newID(t)
	res := r.run("create", "-b", b, id)
	if res.code == 0 {
		r.run("delete", "--force", id)
		t.Fatalf("create accepted the config (want it refused with %q)", want)
	}
	msg := strings.TrimRight(res.stderr, "\n")
	if strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Errorf("create: exit %d, stderr %q: want one line that mentions %q", res.code, res.stderr, want)
	}
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		t.Errorf("refused create left its state directory behind")
	}
	if dirs := ctrdpkg.CgroupDirs("berth", id); len(dirs) > 0 {
		t.Errorf("refused create left cgroups behind: %v", dirs)
		for _, d := range dirs {
			os.Remove(d)
		}
	}
}

// hostSysctl reads a sysctl of the test's own (the host's) namespaces and
// puts it back at the end of the test, in case the runtime changed it.
func hostSysctl(t *testing.T, key string) string {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	t.Cleanup(func() {
		if now, _ := os.ReadFile(path); strings.TrimSpace(string(now)) != v {
			t.Errorf("host sysctl %s changed from %s to %s (restored)", key, v, strings.TrimSpace(string(now)))
			os.WriteFile(path, []byte(v), 0)
		}
	})
	return v
}

// otherValue is a number different from v.
func otherValue(t *testing.T, v string) string {
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("sysctl value %q is not a number", v)
	}
	return strconv.Itoa(n + 1)
}

// TestHostSysctlRefused attacks the host through linux.sysctl: a key that
// no namespace holds, a net.* key for a container in the host's network
// namespace, and a net.* key that climbs out with "..". Each is refused
// and the host's value stays as it was (hostSysctl checks at cleanup).
func TestHostSysctlRefused(t *testing.T) {
	r := newRT(t)
	burst := hostSysctl(t, "kernel.printk_ratelimit_burst")
	probes := hostSysctl(t, "net.ipv4.tcp_keepalive_probes")
	for _, tc := range []struct {
		name    string
		key     string
		value   string
		hostNet bool
		want    string
	}{
		{"not namespaced", "kernel.printk_ratelimit_burst", otherValue(t, burst), false, "is not namespaced"},
		{"net in the host's netns", "net.ipv4.tcp_keepalive_probes", otherValue(t, probes), true, "needs the container's own network namespace"},
		{"net key climbing out", "net/../kernel/printk_ratelimit_burst", otherValue(t, burst), false, "is not a sysctl name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := busybox(t, func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{tc.key: tc.value}
				if tc.hostNet {
					s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.NetworkNamespace)
				}
			}, "true")
			expectRefused(t, r, b, tc.key)
			expectRefused(t, r, b, tc.want)
		})
	}
	// A namespaced key in the container's own namespace still works.
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.tcp_keepalive_probes": otherValue(t, probes), "kernel.shmmni": "1000"}
	}, "cat", "/proc/sys/net/ipv4/tcp_keepalive_probes", "/proc/sys/kernel/shmmni")
	if out := r.must("run", "-b", b, newID(t)); strings.Fields(out)[0] != otherValue(t, probes) || strings.Fields(out)[1] != "1000" {
		t.Errorf("namespaced sysctls inside: %q", out)
	}
}

func withoutNS(list []specs.LinuxNamespace, kind specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range list {
		if ns.Type != kind {
			out = append(out, ns)
		}
	}
	return out
}

func TestBadValuesRefusedAtCreate(t *testing.T) {
	r := newRT(t)
	appArmor, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	_, noSELinux := os.Stat("/sys/fs/selinux/enforce")
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		want string
		skip bool
	}{
		{"uid -1", func(s *specs.Spec) { s.Process.User.UID = 4294967295 }, "process.user.uid 4294967295", false},
		{"gid -1", func(s *specs.Spec) { s.Process.User.GID = 4294967295 }, "process.user.gid 4294967295", false},
		{"memory 1 byte", func(s *specs.Spec) { memory(s).Limit = i64(1) }, "below the kernel's minimum of", false},
		{"memory too small for init", func(s *specs.Spec) { memory(s).Limit = i64(64 << 10) }, "linux.resources.memory.limit 65536 bytes is too small for it to start", false},
		{"memory negative", func(s *specs.Spec) { memory(s).Limit = i64(-5) }, "memory.limit -5 is negative", false},
		{"device type z", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z", Major: 1, Minor: 3}}
		}, `type "z" is not a device type`, false},
		{"cpu shares above the kernel's maximum", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(1000000)}
		}, "cpu.shares 1000000 is out of the kernel's range 2-262144", false},
		{"namespace path not a namespace", func(s *specs.Spec) { setNSPath(s, specs.NetworkNamespace, "/etc/passwd") }, "is not a namespace", false},
		{"namespace path of another kind", func(s *specs.Spec) { setNSPath(s, specs.NetworkNamespace, "/proc/self/ns/ipc") }, "of type ipc, listed as network", false},
		{"apparmor profile without AppArmor", func(s *specs.Spec) { s.Process.ApparmorProfile = "berth-test" }, "AppArmor is not enabled", strings.HasPrefix(string(appArmor), "Y")},
		{"selinux label without SELinux", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, "SELinux is not enabled", noSELinux == nil},
		{"mount label without SELinux", func(s *specs.Spec) { s.Linux.MountLabel = "system_u:object_r:container_file_t:s0" }, "SELinux is not enabled", noSELinux == nil},
		{"bad scheduler", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO} }, "SCHED_FIFO wants 1 to 99", false},
		{"bad ioPriority", func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 9}
		}, "ioPriority.priority 9", false},
		{"bad personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"} }, `personality.domain "LINUX64"`, false},
		{"config.json of 20 MiB", func(s *specs.Spec) {
			s.Annotations = map[string]string{"big": strings.Repeat("x", 20<<20)}
		}, "over the limit of 16777216 (16 MiB)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("the host has this LSM: the field is applied, not refused")
			}
			expectRefused(t, r, busybox(t, tc.edit, "true"), tc.want)
		})
	}
}

func memory(s *specs.Spec) *specs.LinuxMemory {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if s.Linux.Resources.Memory == nil {
		s.Linux.Resources.Memory = &specs.LinuxMemory{}
	}
	return s.Linux.Resources.Memory
}

func setNSPath(s *specs.Spec, kind specs.LinuxNamespaceType, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == kind {
			s.Linux.Namespaces[i].Path = path
		}
	}
}

// TestExecLabelRefused: exec --apparmor on a host without AppArmor is
// refused, not ignored.
func TestExecLabelRefused(t *testing.T) {
	if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.HasPrefix(string(b), "Y") {
		t.Skip("the host has AppArmor: the profile is applied, not refused")
	}
	r := newRT(t)
	id := newID(t)
	r.must("run", "-d", "-b", busybox(t, nil, "sleep", "300"), id)
	res := r.run("exec", "--apparmor", "berth-test", id, "true")
	if res.code == 0 || !strings.Contains(res.stderr, "AppArmor is not enabled") {
		t.Errorf("exec --apparmor: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestPersonalityInside: LINUX32 makes the container see a 32-bit machine.
func TestPersonalityInside(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	}, "uname", "-m")
	if out := strings.TrimSpace(r.must("run", "-b", b, newID(t))); out != "i686" {
		t.Errorf("uname -m under LINUX32: %q, want i686", out)
	}
}

// TestSchedulerAndIOPriorityFromOutside checks process.scheduler and
// process.ioPriority on the running container process, as the host sees
// them: the policy and nice fields of /proc/<pid>/stat, and ioprio_get.
func TestSchedulerAndIOPriorityFromOutside(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
	}, "sleep", "300")
	id := newID(t)
	r.must("run", "-d", "-b", b, id)
	pid := r.state(id).Pid
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command, which is in parentheses: state is field 3,
	// nice 19, policy 41.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if nice, policy := f[19-3], f[41-3]; nice != "7" || policy != strconv.Itoa(unix.SCHED_BATCH) {
		t.Errorf("container process: nice %s policy %s, want nice 7 and SCHED_BATCH (%d)", nice, policy, unix.SCHED_BATCH)
	}
	const ioprioWhoProcess, idleClass = 1, 3
	prio, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(pid), 0)
	if e != 0 {
		t.Fatalf("ioprio_get %d: %v", pid, e)
	}
	if prio>>13 != idleClass {
		t.Errorf("container process: I/O priority %#x, want class IDLE (%d)", prio, idleClass)
	}
}

// TestExecProcessAttributes: a process exec'd with process.ioPriority and
// process.scheduler gets them too.
func TestExecProcessAttributes(t *testing.T) {
	r := newRT(t)
	id := newID(t)
	r.must("run", "-d", "-b", busybox(t, nil, "sleep", "300"), id)
	dir := t.TempDir()
	proc := specs.Process{
		Args: []string{"sleep", "300"}, Cwd: "/", Env: []string{"PATH=/bin"},
		Scheduler:  &specs.Scheduler{Policy: specs.SchedIdle},
		IOPriority: &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6},
	}
	b, _ := json.Marshal(proc)
	if err := os.WriteFile(filepath.Join(dir, "process.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "pid")
	r.must("exec", "-d", "--pid-file", pidFile, "-p", filepath.Join(dir, "process.json"), id)
	pidText, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidText)))
	attr, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		t.Fatalf("sched_getattr %d: %v", pid, err)
	}
	if attr.Policy != unix.SCHED_IDLE {
		t.Errorf("exec'd process: policy %d, want SCHED_IDLE (%d)", attr.Policy, unix.SCHED_IDLE)
	}
	const ioprioWhoProcess, bestEffort = 1, 2
	prio, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(pid), 0)
	if e != 0 || prio != bestEffort<<13|6 {
		t.Errorf("exec'd process: I/O priority %#x (%v), want best-effort 6", prio, e)
	}
}

// TestUpdateCPUSharesOutOfRange: update refuses cpu shares above the
// kernel's maximum instead of letting cgroup v1 clamp them silently, and
// the shares stay as they were.
func TestUpdateCPUSharesOutOfRange(t *testing.T) {
	r := newRT(t)
	id, pid := runSleeper(t, r, func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(512)} })
	before := cgroupValue(t, pid, "cpu", "cpu.shares", "cpu.weight")
	res := r.run("update", "--cpu-share", "1000000", id)
	if msg := strings.TrimRight(res.stderr, "\n"); res.code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, "out of the kernel's range 2-262144") {
		t.Errorf("update --cpu-share 1000000: exit %d, stderr %q", res.code, res.stderr)
	}
	if after := cgroupValue(t, pid, "cpu", "cpu.shares", "cpu.weight"); after != before {
		t.Errorf("cpu shares changed from %s to %s", before, after)
	}
}
