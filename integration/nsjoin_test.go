package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// raceTarget is a container whose process is pidrace (testdata): with
// CAP_SYS_PTRACE, it attacks every new process in its pid namespace
// through /proc. hostDir is a host directory the container cannot see:
// an attack that got through /proc/<pid>/root or cwd leaves a file there
// (the runtime is run from it, so it is its cwd too).
type raceTarget struct {
	r       *rt
	id      string
	log     string
	hostDir string
}

func startRaceTarget(t *testing.T, r *rt, kinds string) *raceTarget {
	results, hostDir := t.TempDir(), t.TempDir()
	var st syscall.Stat_t
	if err := syscall.Stat(runtimeBin, &st); err != nil {
		t.Fatal(err)
	}
	rt := &raceTarget{r: r, id: newID(t), log: filepath.Join(results, "log"), hostDir: hostDir}
	b := busybox(t, func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_SYS_PTRACE")
		c.Effective = append(c.Effective, "CAP_SYS_PTRACE")
		c.Permitted = append(c.Permitted, "CAP_SYS_PTRACE")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/results", Type: "bind", Source: results, Options: []string{"rbind", "rw"}})
	}, "/bin/pidrace", "/results/log", hostDir, strconv.FormatUint(st.Dev, 10), strconv.FormatUint(st.Ino, 10), kinds)
	build := exec.Command("go", "build", "-o", filepath.Join(b, "rootfs/bin/pidrace"), "./testdata/pidrace")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pidrace: %v\n%s", err, out)
	}
	r.must("run", "-d", "-b", b, rt.id)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasPrefix(rt.report(), "ready\n") {
		if time.Now().After(deadline) {
			t.Fatalf("pidrace never became ready: log %q", rt.report())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return rt
}

func (rt *raceTarget) report() string {
	b, _ := os.ReadFile(rt.log)
	return string(b)
}

// runFromHostDir runs berth-runtime with hostDir as its cwd.
func (rt *raceTarget) runFromHostDir(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtimeBin, append([]string{"--root", rt.r.root}, args...)...)
	cmd.Dir = rt.hostDir
	// A file, not a pipe: a created container keeps its stdio open.
	out := tempFile(t)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		t.Fatalf("berth-runtime %s: %v\n%s", strings.Join(args, " "), err, readAll(out))
	}
}

// check fails the test for every attack that got through, and for any
// file the container made in the host's directory.
func (rt *raceTarget) check(t *testing.T) {
	t.Helper()
	// Stop the attacker first, so that nothing lands after the check.
	rt.r.must("kill", rt.id, "KILL")
	rt.r.waitStatus(rt.id, "stopped")
	if lines := strings.TrimPrefix(rt.report(), "ready\n"); lines != "" {
		t.Errorf("a container process with CAP_SYS_PTRACE reached the host through a process the runtime started:\n%s", lines)
	}
	entries, err := os.ReadDir(rt.hostDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the container wrote %s on the host", filepath.Join(rt.hostDir, e.Name()))
	}
}

// TestExecRaceFindsNoHostProcess: every process exec puts in a container's
// pid namespace has, from its first moment, the container's root and cwd
// and the sealed runtime binary (CVE-2016-9962 and CVE-2019-5736 classes).
func TestExecRaceFindsNoHostProcess(t *testing.T) {
	r := newRT(t)
	target := startRaceTarget(t, r, "root,cwd,exe")
	for i := 0; i < 25; i++ {
		target.runFromHostDir(t, "exec", target.id, "true")
	}
	target.check(t)
}

// TestCreateJoiningPidNSRaceFindsNoHostProcess: a container created into
// another's pid namespace, as a pod's containers are, with a mount
// namespace of its own, never shows that namespace a process with the
// host's root or cwd, or a copy of the host's runtime binary: its mounts
// and root switch are made before its init exists there. (Before, its init
// had the host's root there until pivot_root, as runc's does.)
func TestCreateJoiningPidNSRaceFindsNoHostProcess(t *testing.T) {
	r := newRT(t)
	target := startRaceTarget(t, r, "root,cwd,exe")
	pidns := fmt.Sprintf("/proc/%d/ns/pid", r.state(target.id).Pid)
	b := busybox(t, func(s *specs.Spec) {
		joinNamespace(s, specs.PIDNamespace, pidns)
	}, "true")
	for i := 0; i < 10; i++ {
		id := newID(t)
		target.runFromHostDir(t, "create", "-b", b, id)
		r.must("delete", "--force", id)
	}
	target.check(t)
}

// TestCreateJoiningPidNSWorks: a container that joins another's pid
// namespace with a mount namespace of its own (its /proc mounted after its
// root switch) sees that namespace's processes in its own /proc, gets its
// masked paths and its read-only root, and runs its createContainer hooks.
func TestCreateJoiningPidNSWorks(t *testing.T) {
	r := newRT(t)
	first := sleeper(t, r, nil)
	pidns := fmt.Sprintf("/proc/%d/ns/pid", r.state(first).Pid)
	hookOut := filepath.Join(t.TempDir(), "hook")
	b := busybox(t, func(s *specs.Spec) {
		joinNamespace(s, specs.PIDNamespace, pidns)
		s.Root.Readonly = true
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + hookOut}}}}
	}, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/self/ns/pid; stat -c 'keys %t:%T' /proc/keys; touch /x 2>/dev/null || echo root-ro")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run joining pid namespace %s: exit %d: %s", pidns, res.code, res.stderr)
	}
	want, _ := os.Readlink(pidns)
	for _, line := range []string{"sleep 300 \n", want + "\n", "keys 1:3\n", "root-ro\n"} {
		if !strings.Contains(res.stdout, line) {
			t.Errorf("output %q lacks %q", res.stdout, line)
		}
	}
	if b, err := os.ReadFile(hookOut); err != nil || !strings.Contains(string(b), `"status":"creating"`) {
		t.Errorf("createContainer hook's state %q (%v): want the creating container's", b, err)
	}
}

// TestExecIntoContainerJoiningPidNS: exec reaches a container whose init
// forked into the joined pid namespace after its root switch: it sees the
// container's root and the namespace's processes.
func TestExecIntoContainerJoiningPidNS(t *testing.T) {
	r := newRT(t)
	pidns := fmt.Sprintf("/proc/%d/ns/pid", r.state(sleeper(t, r, nil)).Pid)
	id := sleeper(t, r, func(s *specs.Spec) { joinNamespace(s, specs.PIDNamespace, pidns) })
	res := r.run("exec", id, "sh", "-c", "readlink /proc/self/ns/pid; ls /proc | grep -c '^[0-9]'; test -e /bin/busybox && echo own-root")
	if res.code != 0 {
		t.Fatalf("exec into %s: exit %d: %s", id, res.code, res.stderr)
	}
	want, _ := os.Readlink(pidns)
	for _, line := range []string{want + "\n", "own-root\n"} {
		if !strings.Contains(res.stdout, line) {
			t.Errorf("exec output %q lacks %q", res.stdout, line)
		}
	}
}

// TestCreateJoiningPidNSRefusesBindUnderProc: a bind mount under /proc
// cannot be made once the root has switched (its source is a host path),
// so such a container is refused with the reason, not set up without it.
func TestCreateJoiningPidNSRefusesBindUnderProc(t *testing.T) {
	r := newRT(t)
	pidns := fmt.Sprintf("/proc/%d/ns/pid", r.state(sleeper(t, r, nil)).Pid)
	b := busybox(t, func(s *specs.Spec) {
		joinNamespace(s, specs.PIDNamespace, pidns)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/uptime", Type: "bind", Source: "/proc/uptime", Options: []string{"bind"}})
	}, "true")
	id := newID(t)
	res := r.run("run", "-b", b, id)
	if res.code == 0 || !strings.Contains(res.stderr, "joins a pid namespace takes only procfs mounts") {
		t.Fatalf("run with a bind under /proc joining pid namespace %s: exit %d, stderr %q: want a clear refusal", pidns, res.code, res.stderr)
	}
	if got := r.run("state", id); got.code == 0 {
		t.Errorf("refused create left container %s: %s", id, got.stdout)
	}
}

// joinNamespace makes the spec join the namespace at path instead of
// making its own of that kind.
func joinNamespace(s *specs.Spec, kind specs.LinuxNamespaceType, path string) {
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == kind {
			s.Linux.Namespaces[i].Path = path
		}
	}
}

// userNSHolder starts a process in a new user namespace that maps
// container ids 0-65535 to host ids 300000-365535, as a pod's ready user
// namespace is, and returns the path of that namespace.
func userNSHolder(t *testing.T) string {
	return userNSHolderMapping(t, syscall.SysProcIDMap{ContainerID: 0, HostID: 300000, Size: 65536})
}

// userNSHolderMapping is userNSHolder with the uids and gids mapped by m.
func userNSHolderMapping(t *testing.T, m syscall.SysProcIDMap) string {
	holder := exec.Command("sleep", "300")
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{m},
		GidMappings: []syscall.SysProcIDMap{m},
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	return fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid)
}

// TestJoinUserNamespaceByPath: the new namespaces of a container that
// joins a user namespace by path belong to that user namespace, so its
// root can set the mounts' propagation and the hostname.
func TestJoinUserNamespaceByPath(t *testing.T) {
	r := newRT(t)
	userns := userNSHolder(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: userns})
		s.Hostname = "in-pod"
	}, "sh", "-c", nsLinks+"; echo host $(hostname); cat /proc/self/uid_map")
	openToMappedRoot(t, b)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run joining user namespace %s: exit %d: %s", userns, res.code, res.stderr)
	}
	ns := parseNS(res.stdout)
	if want, _ := os.Readlink(userns); ns["user"] != want {
		t.Errorf("user namespace %q, want the joined %q", ns["user"], want)
	}
	for _, kind := range []string{"mnt", "uts", "pid", "net", "ipc"} {
		if ns[kind] == "" || ns[kind] == hostNS(t, kind) {
			t.Errorf("%s namespace %q: want a new one", kind, ns[kind])
		}
	}
	if !strings.Contains(res.stdout, "host in-pod\n") || !strings.Contains(res.stdout, "300000") {
		t.Errorf("output %q: want hostname in-pod and the joined namespace's map", res.stdout)
	}
}

// TestTimeNamespaceOffsets: a new time namespace is made with the spec's
// offsets, which the container sees in its clocks.
func TestTimeNamespaceOffsets(t *testing.T) {
	r := newRT(t)
	const shift = 100 * 24 * 3600 // 100 days, far more than the host's uptime can differ by
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: shift}, "monotonic": {Secs: shift}}
	}, "sh", "-c", "readlink /proc/self/ns/time; cat /proc/uptime; cat /proc/self/timens_offsets")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run with a time namespace: exit %d: %s", res.code, res.stderr)
	}
	lines := strings.Split(res.stdout, "\n")
	if len(lines) < 2 || lines[0] == hostNS(t, "time") {
		t.Fatalf("output %q: want a new time namespace (host's %s)", res.stdout, hostNS(t, "time"))
	}
	f := strings.Fields(lines[1])
	inside, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("uptime %q: %v", lines[1], err)
	}
	host := hostUptime(t)
	if d := inside - host; d < shift-60 || d > shift+60 {
		t.Errorf("uptime inside %.0fs, host %.0fs: want the boottime offset %ds between them", inside, host, shift)
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Join(strings.Fields(l), " ") == fmt.Sprintf("monotonic %d 0", shift)
	}) {
		t.Errorf("timens_offsets inside %q: want the monotonic offset", res.stdout)
	}
}

func hostUptime(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

func TestTimeOffsetsWithoutTimeNamespaceRefused(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10}}
	}, "true")
	res := r.run("run", "-b", b, newID(t))
	if res.code == 0 || !strings.Contains(res.stderr, "linux.timeOffsets needs a new time namespace") {
		t.Fatalf("run with timeOffsets and no time namespace: exit %d, stderr %q: want a clear refusal", res.code, res.stderr)
	}
}

// TestSignalsStartAtDefault: a runtime started with SIGHUP ignored (a
// daemon under nohup, and the shims and runtimes it starts) still gives
// the container's process every signal at its default disposition.
// (`run` in the foreground catches the signals it forwards, which hid
// this; `create` does not.)
func TestSignalsStartAtDefault(t *testing.T) {
	r := newRT(t)
	id := newID(t)
	b := busybox(t, nil, "sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; trap 'echo trapped' HUP; kill -HUP $$; echo end")
	out := tempFile(t)
	create := exec.Command("sh", "-c", `trap "" HUP; exec "$@"`, "sh", runtimeBin, "--root", r.root, "create", "-b", b, id)
	create.Stdout, create.Stderr = out, out
	if err := create.Run(); err != nil {
		t.Fatalf("create with SIGHUP ignored: %v\n%s", err, readAll(out))
	}
	r.must("start", id)
	r.waitStatus(id, "stopped")
	got := readAll(out)
	for _, want := range []string{"SigIgn:\t0000000000000000\n", "SigBlk:\t0000000000000000\n", "trapped\nend\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q: the container inherited its caller's signal dispositions", got, want)
		}
	}
}

// TestNewUserNamespaceBesideJoins: a new user namespace with a joined
// network namespace is made after the join (the runtime writes its maps),
// and the container's other new namespaces belong to it.
func TestNewUserNamespaceBesideJoins(t *testing.T) {
	r := newRT(t)
	netns := fmt.Sprintf("/proc/%d/ns/net", r.state(sleeper(t, r, nil)).Pid)
	b := busybox(t, func(s *specs.Spec) {
		joinNamespace(s, specs.NetworkNamespace, netns)
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
		s.Hostname = "mapped"
		// sysfs needs a network namespace of the container's user
		// namespace; the cgroup mount goes with it.
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return strings.HasPrefix(m.Destination, "/sys") })
	}, "sh", "-c", nsLinks+"; cat /proc/self/uid_map; hostname; id -u")
	openToMappedRoot(t, b)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run with a new user namespace and a joined network namespace: exit %d: %s", res.code, res.stderr)
	}
	ns := parseNS(res.stdout)
	if want, _ := os.Readlink(netns); ns["net"] != want {
		t.Errorf("network namespace %q, want the joined %q", ns["net"], want)
	}
	if ns["user"] == hostNS(t, "user") {
		t.Errorf("user namespace is the host's: want a new one")
	}
	for _, want := range []string{"400000", "mapped\n0\n"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output %q lacks %q", res.stdout, want)
		}
	}
}

// TestJoinFailureInConstructorFails: when nsenter's constructor dies
// while it joins namespaces (here: the joined user namespace does not map
// root, so the process cannot become it), create reports it at once
// instead of waiting forever for a message the dead process never sends.
func TestJoinFailureInConstructorFails(t *testing.T) {
	r := newRT(t)
	userns := userNSHolderMapping(t, syscall.SysProcIDMap{ContainerID: 1000, HostID: 300000, Size: 1})
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: userns})
	}, "true")
	id := newID(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtimeBin, "--root", r.root, "create", "-b", b, id)
	out := tempFile(t)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("create joining user namespace %s without a root mapping hung: %s", userns, readAll(out))
	}
	if err == nil {
		t.Fatalf("create joining user namespace %s without a root mapping succeeded", userns)
	}
	if got := r.run("state", id); got.code == 0 {
		t.Errorf("failed create left container %s: %s", id, got.stdout)
	}
}
