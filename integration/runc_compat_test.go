package integration

// Behaviours of runc that tools built on it rely on, and that runc's own
// bats suite checks (integration/conformance/runc-bats.sh): these tests
// hold them without bats, busybox images or a terminal of the caller's.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// process.env: a repeated name keeps its last value, once; an empty HOME
// is filled from the user's passwd entry (env.bats).
func TestRuncCompatEnv(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Process.Env = []string{"ONE=two", "PATH=/usr/bin:/bin", "HOME=/override", "ONE=three", "HOME="}
	}, "env")
	out := r.must("run", "-b", b, newID(t))
	lines := strings.Fields(out)
	if len(lines) != 3 || !strings.Contains(out, "ONE=three") || !strings.Contains(out, "HOME=/root") || strings.Contains(out, "ONE=two") {
		t.Fatalf("env of the container:\n%s\nwant PATH, ONE=three and HOME=/root, each once", out)
	}
}

// An unknown capability is left out with a warning, and so is an ambient
// one that cannot be raised; the container runs (capabilities.bats).
func TestRuncCompatCapabilityWarnings(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_UNKNOWN", "CAP_KILL", "CAP_CHOWN"},
			Permitted:   []string{"CAP_KILL", "CAP_CHOWN"},
			Inheritable: []string{"CAP_KILL"},
			Ambient:     []string{"CAP_KILL", "CAP_CHOWN"},
		}
	}, "grep", "CapAmb", "/proc/self/status")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run: exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{`ignoring unknown or unavailable capabilities: [\"CAP_UNKNOWN\"]`, "can't raise ambient capability CAP_CHOWN: "} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr %q lacks the warning %q", res.stderr, want)
		}
	}
	// CAP_KILL (5) is ambient, CAP_CHOWN (0) is not.
	if !strings.Contains(res.stdout, "0000000000000020") {
		t.Errorf("CapAmb line %q, want only CAP_KILL", res.stdout)
	}
}

// A tmpfs without mode= keeps the mode of the directory it covers; with
// one, it has that mode (run.bats "with tmpfs perms").
func TestRuncCompatTmpfsMode(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		options []string
		want    string
	}{
		{nil, "710"},
		{[]string{"mode=0410"}, "410"},
	} {
		b := busybox(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp/test", Type: "tmpfs", Source: "tmpfs", Options: tc.options})
		}, "stat", "-c", "%a", "/tmp/test")
		dir := filepath.Join(b, "rootfs/tmp/test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o710); err != nil {
			t.Fatal(err)
		}
		if out := strings.TrimSpace(r.must("run", "-b", b, newID(t))); out != tc.want {
			t.Errorf("tmpfs with options %q: mode %s, want %s", tc.options, out, tc.want)
		}
	}
}

// createContainer hooks run in the container's root; a failed hook is
// named as runc names it (hooks.bats, hooks_so.bats).
func TestRuncCompatHooks(t *testing.T) {
	r := newRT(t)
	out := filepath.Join(t.TempDir(), "cwd")
	b := busybox(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "pwd > " + out}}}}
	}, "true")
	r.must("run", "-b", b, newID(t))
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(b, "rootfs"); strings.TrimSpace(string(got)) != want {
		t.Errorf("createContainer hook ran in %q, want the container's root %s", got, want)
	}

	b = busybox(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}, {Path: "/bin/false"}}}
	}, "true")
	res := r.run("run", "-b", b, newID(t))
	if res.code == 0 || !strings.Contains(res.stderr, "error running createRuntime hook #1:") {
		t.Fatalf("failing createRuntime hook: exit %d %q, want runc's wording", res.code, res.stderr)
	}

	// A failing poststart hook fails the start and ends the container.
	b = busybox(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/false"}}}
	}, "sleep", "300")
	id := newID(t)
	r.must("create", "-b", b, id)
	pid := r.state(id).Pid
	res = r.run("start", id)
	if res.code == 0 || !strings.Contains(res.stderr, "error running poststart hook #0:") {
		t.Fatalf("failing poststart hook: start exit %d %q, want a failure in runc's wording", res.code, res.stderr)
	}
	r.waitStatus(id, "stopped")
	if !processGone(pid) {
		t.Fatalf("init %d lives on after its poststart hook failed", pid)
	}
	r.must("delete", id)
}

// list: a --root that does not exist fails; --format json has runc's key
// order (list.bats).
func TestRuncCompatList(t *testing.T) {
	r := newRT(t)
	missing := filepath.Join(t.TempDir(), "nonexistent")
	res := r.run("--root", missing, "list")
	if res.code == 0 || !strings.Contains(res.stderr, missing) {
		t.Fatalf("list of a missing --root: exit %d %q, want a failure naming it", res.code, res.stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatalf("list made the missing root %s", missing)
	}
	id := sleeper(t, r, nil)
	out := r.must("list", "--format", "json")
	if !regexp.MustCompile(`^\[\{"ociVersion":"[^"]+","id":"` + id + `","pid":[0-9]+,"status":"running","bundle":"[^"]+","rootfs":"[^"]+","created":"[^"]+"`).MatchString(out) {
		t.Fatalf("list --format json = %s, want runc's keys in runc's order", out)
	}
	var l []map[string]any
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l) != 1 {
		t.Fatalf("list --format json is not a list of one: %v %s", err, out)
	}
}

// kill with signal 0 tells whether the container runs; kill -a does not
// fail on a stopped one (kill.bats).
func TestRuncCompatKillZero(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	r.must("kill", id, "0")
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if res := r.run("kill", id, "0"); res.code == 0 || !strings.Contains(res.stderr, "container not running") {
		t.Fatalf("kill 0 of a stopped container: exit %d %q", res.code, res.stderr)
	}
	r.must("kill", "-a", id, "0")
	r.must("delete", id)
}

// SIGKILL to a container without its own pid namespace ends what is left
// in its cgroup after its init died (kill.bats "[host pidns + init gone]").
func TestRuncCompatKillHostPidnsInitGone(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	})
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("exec", "-d", "--pid-file", pidFile, id, "sleep", "300")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	execPid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	initPid := r.state(id).Pid
	procs := []int{initPid, execPid}
	if err := syscall.Kill(initPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(id, "stopped")
	r.must("kill", id, "KILL")
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range procs {
		for !processGone(p) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d of the container outlived kill KILL", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r.must("delete", id)
}

// exec's own failures exit 255, the program's status is its own
// (exec.bats "[exit codes]").
func TestRuncCompatExecExitCodes(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"exec", id, "sh", "-c", "exit 42"}, 42},
		{[]string{"exec", id, "no-such-binary"}, 255},
		{[]string{"exec", "--pid-file", "/nonexistent/dir/pid", id, "true"}, 255},
		{[]string{"exec", "no_such_container", "true"}, 255},
	} {
		if res := r.run(tc.args...); res.code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, res.code, tc.code, res.stderr)
		}
	}
	r.must("pause", id)
	if res := r.run("exec", id, "true"); res.code != 255 || !strings.Contains(res.stderr, "paused") {
		t.Errorf("exec into a paused container: exit %d %q, want 255", res.code, res.stderr)
	}
	r.must("resume", id)
}

// A program that cannot be exec'd is reported in runc's words, on one
// line, once (run.bats "[execve error]").
func TestRuncCompatExecveError(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "/run.sh")
	if err := os.WriteFile(filepath.Join(b, "rootfs/run.sh"), []byte("#!/mmnnttbb foo bar\nsh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res := r.run("run", "-b", b, newID(t))
	if res.code == 0 || res.stderr != "exec /run.sh: no such file or directory\n" {
		t.Fatalf("run of a script with a missing interpreter: exit %d, stderr %q", res.code, res.stderr)
	}
}

// A masked path listed twice is masked once (mask.bats "[duplicate
// paths]").
func TestRuncCompatMaskedTwice(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/testdir", "/testdir", "/testfile", "/testfile/")
	}, "sh", "-c", "mount | grep -c /testdir; mount | grep -c /testfile")
	if err := os.Mkdir(filepath.Join(b, "rootfs/testdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "rootfs/testfile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := strings.Fields(r.must("run", "-b", b, newID(t))); strings.Join(out, " ") != "1 1" {
		t.Fatalf("mounts on /testdir and /testfile: %q, want one each", out)
	}
}

// The caller's terminal gets the program's lines as written: the relayed
// pty has ONLCR cleared, as runc's (tests and scripts compare lines).
func TestRuncCompatTerminalNoCR(t *testing.T) {
	r := newRT(t)
	m, s := openPty(t)
	b := busybox(t, func(sp *specs.Spec) { sp.Process.Terminal = true }, "printf", `one\ntwo\n`)
	done := make(chan result, 1)
	go func() { done <- r.runOnTerminal(s, "run", "-b", b, newID(t)) }()
	out := readUntil(t, m, "two")
	if res := <-done; res.code != 0 {
		t.Fatalf("run on a terminal: exit %d", res.code)
	}
	if !strings.Contains(out, "one\ntwo") || strings.Contains(out, "\r") {
		t.Fatalf("terminal saw %q, want the lines without \\r", out)
	}
}

// The masked directories share one read-only tmpfs (mask.bats
// "[directories share tmpfs]").
func TestRuncCompatMaskedDirsShareTmpfs(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/testdir", "/testdir2")
	}, "sh", "-c", "stat -c %d /testdir /testdir2; touch /testdir2/foo")
	for _, d := range []string{"testdir", "testdir2"} {
		if err := os.Mkdir(filepath.Join(b, "rootfs", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res := r.run("run", "-b", b, newID(t))
	devs := strings.Fields(res.stdout)
	if len(devs) != 2 || devs[0] != devs[1] {
		t.Errorf("masked directories on devices %q, want one shared", devs)
	}
	if res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("touch in a masked directory: exit %d %q, want a read-only file system", res.code, res.stderr)
	}
}

// exec --cgroup puts the process in a sub-cgroup of the container's, and
// refuses one that leads out of it, a missing one and an unknown
// controller (exec.bats "--cgroup sub-cgroups").
func TestRuncCompatExecSubCgroup(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	// The container's cgroup, as its init's /proc/PID/cgroup names it: the
	// memory hierarchy's on v1, the one tree's on v2.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.state(id).Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var hostDir, ctrl, rel string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		switch {
		case len(f) == 3 && f[1] == "memory":
			hostDir, ctrl, rel = filepath.Join("/sys/fs/cgroup/memory", f[2]), "memory:", f[2]
		case len(f) == 3 && f[0] == "0" && f[1] == "" && hostDir == "" && !isDir("/sys/fs/cgroup/memory"):
			hostDir, rel = filepath.Join("/sys/fs/cgroup", f[2]), f[2]
		}
	}
	if hostDir == "" {
		t.Fatalf("no memory or v2 cgroup for the container's init in %q", b)
	}
	sub := filepath.Join(hostDir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// The container's delete removes its cgroup; the sub-cgroup must be
	// empty and gone first.
	t.Cleanup(func() { os.Remove(sub) })
	out := r.must("exec", "--cgroup", ctrl+"sub", id, "cat", "/proc/self/cgroup")
	if !strings.Contains(out, rel+"/sub\n") && !strings.Contains(out, ":/sub\n") {
		t.Fatalf("exec --cgroup %ssub: /proc/self/cgroup\n%s\nwant %s/sub", ctrl, out, rel)
	}
	for _, tc := range []struct{ arg, want string }{
		{"..", "bad sub cgroup path"},
		{ctrl + "../sibling", "bad sub cgroup path"},
		{ctrl + "nonexistent", " adding pid "},
		{"whaaat:/", "unknown controller "},
	} {
		if res := r.run("exec", "--cgroup", tc.arg, id, "true"); res.code != 255 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("exec --cgroup %s: exit %d %q, want 255 and %q", tc.arg, res.code, res.stderr, tc.want)
		}
	}
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if err := os.Remove(sub); err != nil {
		t.Errorf("remove %s: %v", sub, err)
	}
}

// A terminal belongs to the process's user, in devpts's tty group
// (tty.bats "[tty owner] ({u,g}id != 0)").
func TestRuncCompatTerminalOwner(t *testing.T) {
	r := newRT(t)
	m, s := openPty(t)
	b := busybox(t, func(sp *specs.Spec) {
		sp.Process.Terminal = true
		sp.Process.User = specs.User{UID: 1000, GID: 100}
	}, "sh", "-c", "stat -c owner=%u:%g $(tty)")
	done := make(chan result, 1)
	go func() { done <- r.runOnTerminal(s, "run", "-b", b, newID(t)) }()
	// The group is devpts's tty group (5) either way: read up to it.
	out := readUntil(t, m, ":5")
	if res := <-done; res.code != 0 {
		t.Fatalf("run on a terminal as uid 1000: exit %d (%q)", res.code, out)
	}
	if !strings.Contains(out, "owner=1000:5") {
		t.Fatalf("terminal owner %q, want 1000:5", out)
	}
}
