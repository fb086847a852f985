package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type ociState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     string            `json:"created"`
	Owner       *string           `json:"owner"`
	Annotations map[string]string `json:"annotations"`
}

func (r *rt) state(id string) ociState {
	r.t.Helper()
	var st ociState
	if err := json.Unmarshal([]byte(r.must("state", id)), &st); err != nil {
		r.t.Fatalf("state %s: %v", id, err)
	}
	return st
}

func TestRunExitCodes(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 3"}, 3},
	} {
		b := busybox(t, nil, tc.args...)
		res := r.run("run", "--bundle", b, newID(t))
		if res.code != tc.code {
			t.Errorf("run %v: exit %d, want %d (stderr %q)", tc.args, res.code, tc.code, res.stderr)
		}
	}
	// Killed from outside: run reports 128+9, as a shell would.
	id := newID(t)
	done := make(chan result)
	b := busybox(t, nil, "sleep", "300")
	go func() { done <- r.run("run", "-b", b, id) }()
	r.waitStatus(id, "running")
	r.must("kill", id, "KILL")
	if res := <-done; res.code != 137 {
		t.Errorf("run of a container killed with SIGKILL: exit %d, want 137 (%s)", res.code, res.stderr)
	}
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("run without --keep left containers: %q", out)
	}
}

func TestRunOutputAndKeep(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "echo", "hello from berth")
	id := newID(t)
	res := r.run("run", "--keep", "-b", b, id)
	if res.code != 0 || res.stdout != "hello from berth\n" {
		t.Fatalf("run: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if st := r.state(id); st.Status != "stopped" {
		t.Fatalf("after run --keep: status %q, want stopped", st.Status)
	}
	r.must("delete", id)
}

func TestLifecycle(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.example": "yes"}
	}, "sleep", "300")
	id := newID(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("create", "--bundle", b, "--pid-file", pidFile, id)

	st := r.state(id)
	if st.Status != "created" || st.Pid <= 0 || st.ID != id || st.Bundle != b || st.OCIVersion == "" ||
		st.Rootfs != filepath.Join(b, "rootfs") || st.Created == "" || st.Owner == nil || st.Annotations["org.example"] != "yes" {
		t.Fatalf("state after create: %+v", st)
	}
	pidText, _ := os.ReadFile(pidFile)
	if strconv.Itoa(st.Pid) != string(pidText) {
		t.Fatalf("pid file has %q, state says %d", pidText, st.Pid)
	}
	if res := r.run("create", "--bundle", b, id); res.code == 0 || !strings.Contains(res.stderr, "already exists") {
		t.Fatalf("second create with the same id: exit %d %q", res.code, res.stderr)
	}

	r.must("start", id)
	r.waitStatus(id, "running")
	if res := r.run("start", id); res.code == 0 {
		t.Fatal("start of a running container succeeded")
	}
	if res := r.run("delete", id); res.code == 0 || !strings.Contains(res.stderr, "--force") {
		t.Fatalf("delete of a running container without --force: exit %d %q", res.code, res.stderr)
	}

	var list []ociState
	if err := json.Unmarshal([]byte(r.must("list", "--format", "json")), &list); err != nil || len(list) != 1 || list[0].Status != "running" {
		t.Fatalf("list --format json: %v %+v", err, list)
	}
	if table := r.must("list"); !strings.Contains(table, "ID") || !strings.Contains(table, id) || !strings.Contains(table, "running") {
		t.Fatalf("list table: %q", table)
	}

	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if st := r.state(id); st.Pid != 0 {
		t.Fatalf("stopped container reports pid %d", st.Pid)
	}
	if res := r.run("kill", id); res.code == 0 {
		t.Fatal("kill of a stopped container succeeded")
	}
	r.must("delete", id)
	if res := r.run("state", id); res.code != 1 || !strings.Contains(res.stderr, "does not exist") {
		t.Fatalf("state after delete: exit %d %q", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		t.Fatalf("state directory left after delete: %v", err)
	}
}

func TestKillSignals(t *testing.T) {
	r := newRT(t)
	// The shell traps each signal and exits with a code that names it.
	script := `trap "exit 10" HUP; trap "exit 12" USR2; trap "exit 15" TERM; while :; do sleep 0.1; done`
	for _, tc := range []struct {
		sig  []string
		code int
	}{
		{nil, 15},
		{[]string{"HUP"}, 10},
		{[]string{"SIGUSR2"}, 12},
		{[]string{"15"}, 15},
	} {
		b := busybox(t, nil, "sh", "-c", script)
		id := newID(t)
		done := make(chan result, 1)
		go func() { done <- r.run("run", "-b", b, id) }()
		r.waitStatus(id, "running")
		// The shell may not have set its traps yet when it starts, and
		// pid 1 ignores a signal it has no handler for: send until it
		// exits.
		var res result
	wait:
		for i := 0; ; i++ {
			r.run(append([]string{"kill", id}, tc.sig...)...)
			select {
			case res = <-done:
				break wait
			case <-time.After(100 * time.Millisecond):
			}
			if i == 100 {
				t.Fatalf("kill %v: container did not exit", tc.sig)
			}
		}
		if res.code != tc.code {
			t.Errorf("kill %v: exit %d, want %d (%s)", tc.sig, res.code, tc.code, res.stderr)
		}
	}
	if res := r.run("kill", "nosuch", "KILL"); res.code != 1 || !strings.Contains(res.stderr, "does not exist") {
		t.Fatalf("kill of a missing container: exit %d %q", res.code, res.stderr)
	}
	b := busybox(t, nil, "sleep", "100")
	id := newID(t)
	r.must("create", "-b", b, id)
	if res := r.run("kill", id, "NOTASIGNAL"); res.code == 0 || !strings.Contains(res.stderr, "unknown signal") {
		t.Fatalf("bad signal: exit %d %q", res.code, res.stderr)
	}
	// A created container goes without --force, its init killed, as in
	// runc (containerd's runc shim relies on it); a running one does not.
	pid := r.state(id).Pid
	r.must("delete", id)
	if !processGone(pid) {
		t.Errorf("delete of a created container left its init (pid %d) alive", pid)
	}
	id = newID(t)
	r.must("run", "-d", "-b", b, id)
	if res := r.run("delete", id); res.code == 0 || !strings.Contains(res.stderr, "--force") {
		t.Fatalf("delete of a running container without --force: exit %d %q", res.code, res.stderr)
	}
	r.must("delete", "--force", id)
}

func TestRunDetachAndDeleteForce(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "sleep", "300")
	id := newID(t)
	r.must("run", "-d", "-b", b, id)
	st := r.state(id)
	if st.Status != "running" {
		t.Fatalf("after run -d: %q", st.Status)
	}
	r.must("delete", "--force", id)
	if !processGone(st.Pid) {
		t.Fatalf("process %d still alive after delete --force", st.Pid)
	}
}

func TestSpec(t *testing.T) {
	r := newRT(t)
	dir := t.TempDir()
	r.must("spec", "--bundle", dir)
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil || s.Root.Path != "rootfs" {
		t.Fatalf("spec output: %v %s", err, b)
	}
	if len(s.Process.Capabilities.Inheritable) != 0 || len(s.Process.Capabilities.Ambient) != 0 {
		t.Fatalf("default spec grants inheritable/ambient capabilities: %+v", s.Process.Capabilities)
	}
	if res := r.run("spec", "--bundle", dir); res.code == 0 {
		t.Fatal("spec overwrote an existing config.json")
	}
	// A cgroup namespace only on a unified (v2) host, as runc's.
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err != nil {
		t.Fatal(err)
	}
	unified := fs.Type == unix.CGROUP2_SUPER_MAGIC
	cgroupNS := false
	for _, n := range s.Linux.Namespaces {
		cgroupNS = cgroupNS || n.Type == specs.CgroupNamespace
	}
	if cgroupNS != unified {
		t.Fatalf("spec on a host with unified cgroups %v has a cgroup namespace: %v", unified, cgroupNS)
	}
}

func TestBadInput(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"missing program", func(s *specs.Spec) { s.Process.Args = []string{"/nonexistent"} }, "/nonexistent"},
		{"rlimit above hard limit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 30, Soft: 1 << 30}}
		}, "CAP_SYS_RESOURCE"},
		// (An unknown capability is left out with a warning, as runc:
		// TestRuncCompatCapabilityWarnings.)
		{"env entry without =", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "NOEQUALS") }, "NOEQUALS"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "cwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := busybox(t, tc.edit, "true")
			id := newID(t)
			res := r.run("create", "-b", b, id)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("create: exit %d, stderr %q, want it to mention %q", res.code, res.stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
				t.Fatalf("failed create left state behind")
			}
		})
	}
	if res := r.run("create", "-b", t.TempDir(), "x"); res.code == 0 || !strings.Contains(res.stderr, "config.json") {
		t.Fatalf("create from a non-bundle: %q", res.stderr)
	}
	if res := r.run("create", "-b", t.TempDir(), "../escape"); res.code == 0 || !strings.Contains(res.stderr, "invalid container id") {
		t.Fatalf("create with a bad id: %q", res.stderr)
	}
}
