package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// sleeper runs a long sleep in a fresh container and returns its id.
func sleeper(t *testing.T, r *rt, edit func(*specs.Spec)) string {
	id := newID(t)
	b := busybox(t, edit, "sleep", "300")
	openToMappedRoot(t, b)
	r.must("run", "-d", "-b", b, id)
	return id
}

func TestExecJoinsContainer(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	})
	pid := r.state(id).Pid
	out := r.must("exec", id, "sh", "-c", nsLinks+"; cat /proc/self/uid_map; id -u")
	got := parseNS(out)
	for _, kind := range []string{"pid", "net", "mnt", "uts", "ipc", "cgroup", "user"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
		if got[kind] != want {
			t.Errorf("exec'd process in %s namespace %q, container's is %q", kind, got[kind], want)
		}
	}
	if !strings.Contains(out, "200000") || !strings.HasSuffix(out, "0\n") {
		t.Errorf("exec output %q: want the container's uid map and uid 0", out)
	}
	// It runs in the container's cgroup: the root of its cgroup namespace.
	expectCgroupLines(t, "exec'd process, seen from inside", r.must("exec", id, "cat", "/proc/self/cgroup"), "/")
}

func TestExecFlags(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	for _, tc := range []struct {
		name  string
		flags []string
		args  []string
		want  string
		code  int
	}{
		{"exit code", nil, []string{"sh", "-c", "exit 5"}, "", 5},
		{"cwd", []string{"--cwd", "/tmp"}, []string{"pwd"}, "/tmp\n", 0},
		{"env", []string{"-e", "FOO=bar"}, []string{"sh", "-c", "echo $FOO"}, "bar\n", 0},
		{"user", []string{"-u", "65534:65534"}, []string{"id"}, "uid=65534(nobody) gid=65534(nobody)", 0},
		{"additional gids", []string{"-u", "65534:65534", "-g", "10"}, []string{"id", "-G"}, "65534 10\n", 0},
		{"cap", []string{"--cap", "CAP_SYS_ADMIN"}, []string{"sh", "-c", "grep CapEff /proc/self/status"}, "0000000020200420\n", 0},
		{"default caps", nil, []string{"sh", "-c", "grep CapEff /proc/self/status"}, "0000000020000420\n", 0},
		{"no new privs", []string{"--no-new-privs"}, []string{"sh", "-c", "grep NoNewPrivs /proc/self/status"}, "NoNewPrivs:\t1", 0},
		{"flags after the id are the command's", nil, []string{"sh", "-c", "echo $0", "--cwd"}, "--cwd\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Flags go before the id; what follows the id is the command.
			res := r.run(append(append([]string{"exec"}, tc.flags...), append([]string{id}, tc.args...)...)...)
			if res.code != tc.code || !strings.Contains(res.stdout, tc.want) {
				t.Fatalf("exec %v: exit %d (want %d), out %q (want %q), err %q", tc.args, res.code, tc.code, res.stdout, tc.want, res.stderr)
			}
		})
	}
	if res := r.run("exec", id, "/no/such/program"); res.code == 0 || !strings.Contains(res.stderr, "/no/such/program") {
		t.Fatalf("exec of a missing program: exit %d %q", res.code, res.stderr)
	}
	if res := r.run("exec", "--cwd", "/nonexistent", id, "true"); res.code == 0 || !strings.Contains(res.stderr, "/nonexistent") {
		t.Fatalf("exec with a missing cwd: exit %d %q", res.code, res.stderr)
	}
}

func TestExecProcessJSONDetachPidFile(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	dir := t.TempDir()
	p := specs.Process{Args: []string{"sleep", "200"}, Cwd: "/", Env: []string{"PATH=/bin"}, User: specs.User{UID: 65534, GID: 65534}}
	b, _ := json.Marshal(p)
	procFile := filepath.Join(dir, "process.json")
	os.WriteFile(procFile, b, 0o644)
	pidFile := filepath.Join(dir, "pid")
	r.must("exec", "-d", "--pid-file", pidFile, "-p", procFile, id)
	text, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(string(text))
	if err != nil || processGone(pid) {
		t.Fatalf("pid file %q: %v", text, err)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(status), "Uid:\t65534") {
		t.Fatalf("detached process runs as %q", status)
	}
	var pids []int
	json.Unmarshal([]byte(r.must("ps", "--format", "json", id)), &pids)
	if len(pids) != 2 {
		t.Fatalf("ps --format json: %v, want init and the exec'd sleep", pids)
	}
	if table := r.must("ps", id); !strings.Contains(table, "PID") || !strings.Contains(table, "sleep 200") {
		t.Fatalf("ps table:\n%s", table)
	}
}

func TestExecLeaksNoFds(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	bait, err := syscall.Open("/", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(bait)
	out := r.must("exec", id, "sh", "-c", "ls /proc/$$/fd; true")
	if strings.Join(strings.Fields(out), " ") != "0 1 2" {
		t.Fatalf("fds of the exec'd process: %q, want 0 1 2", out)
	}
}

func TestExecTerminal(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, nil)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	ln := listenUnix(t, sockPath)
	master := make(chan *os.File, 1)
	go func() { master <- receivePty(t, ln) }()
	done := make(chan result, 1)
	go func() {
		done <- r.run("exec", "-t", "--console-socket", sockPath, id, "sh", "-c", "tty; echo typed:$(head -n1)")
	}()
	m := <-master
	if m == nil {
		t.Fatal("no pty master on the console socket")
	}
	defer m.Close()
	m.Write([]byte("over-the-pty\n"))
	out := readUntil(t, m, "typed:over-the-pty")
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "typed:over-the-pty") {
		t.Fatalf("terminal output %q", out)
	}
	if res := <-done; res.code != 0 {
		t.Fatalf("exec -t: exit %d %s", res.code, res.stderr)
	}
}

// TestPauseResume watches a counter the container writes to a shared file.
func TestPauseResume(t *testing.T) {
	r := newRT(t)
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	id := newID(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
	}, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /shared/n; sleep 0.02; done")
	r.must("run", "-d", "-b", b, id)
	read := func() string { b, _ := os.ReadFile(counter); return string(b) }
	waitChange := func(what string) {
		before := read()
		for i := 0; i < 100 && read() == before; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if read() == before {
			t.Fatalf("%s: the counter does not move", what)
		}
	}
	waitChange("running")
	r.must("pause", id)
	if st := r.state(id).Status; st != "paused" {
		t.Fatalf("after pause: %s", st)
	}
	frozen := read()
	time.Sleep(300 * time.Millisecond)
	if read() != frozen {
		t.Fatal("the counter moved while paused")
	}
	if res := r.run("pause", id); res.code == 0 {
		t.Fatal("pausing a paused container succeeded")
	}
	if res := r.run("exec", id, "true"); res.code == 0 || !strings.Contains(res.stderr, "--ignore-paused") {
		t.Fatalf("exec into a paused container: exit %d %q", res.code, res.stderr)
	}
	r.must("resume", id)
	waitChange("resumed")
	if res := r.run("resume", id); res.code == 0 {
		t.Fatal("resuming a running container succeeded")
	}
	// A paused container dies from SIGKILL and goes with delete --force.
	r.must("pause", id)
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	r.must("delete", id)
	second := sleeper(t, r, nil)
	r.must("pause", second)
	r.must("delete", "--force", second)
	if res := r.run("state", second); res.code == 0 {
		t.Fatal("delete --force left a paused container")
	}
}

// Init and exec'd processes start out inside the container's cgroup: in
// every v1 hierarchy (on v1 they move themselves, through tasks files the
// runtime opened: see cgroups.Entry) or in the v2 group, also from inside
// a user namespace. The host sees init's cgroup by path; inside the
// container's cgroup namespace both processes are at its root.
func TestProcessesStartInTheirCgroup(t *testing.T) {
	r := newRT(t)
	userns := func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	}
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
	}{{"plain", nil}, {"user namespace", userns}} {
		t.Run(tc.name, func(t *testing.T) {
			id := sleeper(t, r, func(s *specs.Spec) {
				if tc.edit != nil {
					tc.edit(s)
				}
				if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace }) {
					s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
				}
			})
			host, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", r.state(id).Pid))
			if err != nil {
				t.Fatal(err)
			}
			expectCgroupLines(t, "init, seen from the host", string(host), "/berth/"+id)
			expectCgroupLines(t, "init, seen from inside", r.must("exec", id, "cat", "/proc/1/cgroup"), "/")
			expectCgroupLines(t, "an exec'd process, seen from inside", r.must("exec", id, "cat", "/proc/self/cgroup"), "/")
		})
	}
}

// expectCgroupLines checks that every hierarchy of a /proc/<pid>/cgroup
// shows want. On a v1 host the unified line (0::) is not the runtime's to
// set, and is skipped.
func expectCgroupLines(t *testing.T, who, cgroup, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(cgroup), "\n")
	for _, line := range lines {
		if strings.HasPrefix(line, "0::") && len(lines) > 1 {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] != want {
			t.Errorf("%s: %q is not in %s:\n%s", who, line, want, cgroup)
		}
	}
}
