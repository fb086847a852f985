package integration

// What a container leaves behind when its create is interrupted or fails,
// or when its processes outlive its init, and the cgroup states create
// must not hang on.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupV2 says the host runs the unified hierarchy only.
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupLeft lists the directories of the cgroup path in every hierarchy.
func cgroupLeft(path string) []string {
	if cgroupV2() {
		if d := filepath.Join("/sys/fs/cgroup", path); isDir(d) {
			return []string{d}
		}
		return nil
	}
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", path))
	return left
}

// removeCgroup kills what is left in the test's own cgroup path (code
// that fails the test may leave its processes there) and removes the path
// and its parent in every hierarchy, for a test's cleanup.
func removeCgroup(path string) {
	hierarchies := []string{"/sys/fs/cgroup"}
	if !cgroupV2() {
		hierarchies, _ = filepath.Glob("/sys/fs/cgroup/*")
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range hierarchies {
		dir := filepath.Join(h, path)
		for isDir(dir) && os.Remove(dir) != nil && time.Now().Before(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Remove(filepath.Dir(dir))
	}
}

// waitFile polls until path exists and returns its content.
func waitFile(t *testing.T, path string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killPidFile kills the process whose pid the file holds, if any.
func killPidFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// listed is the status `list` shows for id, "" when it is not listed.
func (r *rt) listed(id string) string {
	r.t.Helper()
	var states []ociState
	if err := json.Unmarshal([]byte(r.must("list", "--format", "json")), &states); err != nil {
		r.t.Fatal(err)
	}
	for _, s := range states {
		if s.ID == id {
			return s.Status
		}
	}
	return ""
}

// TestInterruptedCreate kills `create` with SIGKILL while a slow hook
// runs: what it made (the state, the cgroup, the mounts it made in the
// runtime's mount namespace) must show in `list` and go with `delete
// --force`, and the id must be usable again.
func TestInterruptedCreate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		point      string
		hostMounts bool
	}{
		{name: "createRuntime", point: "createRuntime"},
		{name: "prestart", point: "prestart"},
		{name: "createContainer, no mount namespace", point: "createContainer", hostMounts: true},
	} {
		t.Run(tc.name, func(t *testing.T) { interruptCreate(t, tc.point, tc.hostMounts) })
	}
}

func interruptCreate(t *testing.T, point string, hostMounts bool) {
	r := newRT(t)
	logDir := t.TempDir()
	hookPid, started := filepath.Join(logDir, "hook.pid"), filepath.Join(logDir, "started")
	t.Cleanup(func() { killPidFile(hookPid) })
	slowHook := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo $$ > " + hookPid + "; touch " + started + "; exec sleep 300"}}
	if point == "createContainer" {
		// It runs in the container's pid namespace, where $$ is no host
		// pid; as init's child it is in the cgroup, which delete empties.
		slowHook.Args = []string{"sh", "-c", "touch " + started + "; exec sleep 300"}
	}
	cgPath := "/berth-it/" + newID(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		switch point {
		case "createRuntime":
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{slowHook}}
		case "prestart":
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{slowHook}} //nolint:staticcheck // still honoured
		case "createContainer":
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{slowHook}}
		}
		if hostMounts {
			dropNamespace(s, specs.MountNamespace)
		}
	}, "true")
	t.Cleanup(func() { removeCgroup(cgPath) })
	id := newID(t)
	create := exec.Command(runtimeBin, "--root", r.root, "create", "-b", b, id)
	createOut := tempFile(t)
	create.Stdout, create.Stderr = createOut, createOut
	if err := create.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { create.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for _, err := os.Stat(started); err != nil; _, err = os.Stat(started) {
		select {
		case <-exited:
			t.Fatalf("create exited before its hook started: %s", readAll(createOut))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s hook did not start within 20s", point)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := r.state(id).Status; st != "creating" {
		t.Errorf("state of a container whose create runs a hook: %q, want creating", st)
	}
	if res := r.run("delete", "--force", id); res.code == 0 || !strings.Contains(res.stderr, "still being created") {
		t.Errorf("delete --force while create runs: exit %d, stderr %q; want a refusal naming the create", res.code, res.stderr)
	}
	create.Process.Kill()
	<-exited

	if st := r.listed(id); st != "stopped" {
		t.Errorf("list after create was killed shows %s as %q, want stopped", id, st)
	}
	if left := cgroupLeft(cgPath); len(left) == 0 {
		t.Fatalf("no cgroup of the interrupted create at %s: the test did not interrupt it where it meant to", cgPath)
	}
	rootfs := filepath.Join(b, "rootfs")
	if hostMounts && !mountedUnder(rootfs) {
		t.Fatalf("no mounts of the interrupted create under %s: the test did not interrupt it where it meant to", rootfs)
	}
	r.must("delete", "--force", id)
	if left := cgroupLeft(cgPath); len(left) != 0 {
		t.Errorf("after delete --force, the cgroup of the interrupted create is left: %v", left)
	}
	if isDir(filepath.Join(r.root, id)) {
		t.Errorf("after delete --force, the state of the interrupted create is left in %s", r.root)
	}
	if mountedUnder(rootfs) {
		t.Errorf("after delete --force, mounts of the interrupted create are left under %s", rootfs)
	}
	// The id is free again.
	killPidFile(hookPid)
	b2 := busybox(t, func(s *specs.Spec) { s.Linux.CgroupsPath = cgPath }, "true")
	r.must("create", "-b", b2, id)
	r.must("delete", "--force", id)
}

func dropNamespace(s *specs.Spec, kind specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != kind {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

// TestFailedCreateRunsPoststop: when create fails after hooks ran (here
// on a program that does not exist), the poststop hooks run, as runc runs
// them, so tools can undo what the earlier hooks set up.
func TestFailedCreateRunsPoststop(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	poststop := filepath.Join(logDir, "poststop")
	b := busybox(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + filepath.Join(logDir, "createRuntime")}}},
			Poststop:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + poststop}}},
		}
	}, "/no/such/program")
	id := newID(t)
	res := r.run("create", "-b", b, id)
	if res.code == 0 || !strings.Contains(res.stderr, "/no/such/program") {
		t.Fatalf("create of a missing program: exit %d, stderr %q; want a failure naming it", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(logDir, "createRuntime")); err != nil {
		t.Fatalf("the createRuntime hook did not run: %v", err)
	}
	b2, err := os.ReadFile(poststop)
	if err != nil {
		t.Fatalf("the poststop hook did not run after the failed create: %v", err)
	}
	var st specs.State
	if err := json.Unmarshal(b2, &st); err != nil || st.ID != id || st.Status != specs.StateStopped {
		t.Errorf("poststop hook's state: %q (%v), want id %s, status stopped", b2, err, id)
	}
	if isDir(filepath.Join(r.root, id)) {
		t.Errorf("the failed create left its state")
	}
}

// TestFailedCreateSharedPidNSLeavesNoCgroup: a failed create of a
// container without a pid namespace of its own removes its cgroup even
// when a createContainer hook left a process there, which init's death
// does not take with it.
func TestFailedCreateSharedPidNSLeavesNoCgroup(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	left := filepath.Join(logDir, "left.pid")
	t.Cleanup(func() { killPidFile(left) })
	cgPath := "/berth-it/" + newID(t)
	t.Cleanup(func() { removeCgroup(cgPath) })
	// The hook's process loops on shell builtins alone: it needs no
	// program of the rootfs, and ends only when killed.
	b := busybox(t, func(s *specs.Spec) {
		dropNamespace(s, specs.PIDNamespace)
		s.Linux.CgroupsPath = cgPath
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "(while :; do :; done) >/dev/null 2>&1 & echo $! > " + left}}}}
	}, "/no/such/program")
	res := r.run("create", "-b", b, newID(t))
	if res.code == 0 {
		t.Fatalf("create of a missing program succeeded")
	}
	if _, err := os.Stat(left); err != nil {
		t.Fatalf("the createContainer hook did not run: %v (create: %s)", err, res.stderr)
	}
	if dirs := cgroupLeft(cgPath); len(dirs) != 0 {
		t.Errorf("the failed create left its cgroup %v, with the hook's process in it", dirs)
	}
}

// TestStartContainerHookSandboxed: a startContainer hook runs as the
// container's process would, under its seccomp filter and with its
// environment, and holds no fd but its stdio, although the runtime had
// more and the container keeps a preserved one.
func TestStartContainerHookSandboxed(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	hook := "ls -l /proc/self/fd > /hooklog/fds; env > /hooklog/env; mkdir /hooklog/probe; echo $? > /hooklog/mkdir"
	b := busybox(t, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "MARKER=from-process")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: logDir, Options: []string{"rbind", "rw"}})
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		}
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", hook}}}}
	}, "sh", "-c", "ls /proc/self/fd/3 > /dev/null && echo preserved-ok")
	preserved := tempFile(t)
	res := r.runWith(nil, []*os.File{preserved}, "run", "--preserve-fds", "1", "-b", b, newID(t))
	if res.code != 0 || !strings.Contains(res.stdout, "preserved-ok") {
		t.Fatalf("run: exit %d, stdout %q, stderr %q; want the preserved fd to reach the program", res.code, res.stdout, res.stderr)
	}
	fds := readFile(t, filepath.Join(logDir, "fds"))
	var extra []string
	for _, line := range strings.Split(strings.TrimSpace(fds), "\n") {
		name, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue // ls's "total" line, and its own directory fd
		}
		f := strings.Fields(name)
		if fd := f[len(f)-1]; fd != "0" && fd != "1" && fd != "2" && !strings.HasSuffix(target, "/fd") {
			extra = append(extra, fd+" -> "+target)
		}
	}
	if len(extra) > 0 {
		t.Errorf("the startContainer hook holds %v; want only 0, 1 and 2:\n%s", extra, fds)
	}
	if env := readFile(t, filepath.Join(logDir, "env")); !strings.Contains(env, "MARKER=from-process") {
		t.Errorf("the startContainer hook's environment lacks the process's MARKER:\n%s", env)
	}
	if code := strings.TrimSpace(readFile(t, filepath.Join(logDir, "mkdir"))); code == "0" {
		t.Errorf("mkdir in the startContainer hook succeeded: it ran outside the container's seccomp filter")
	}
	if isDir(filepath.Join(logDir, "probe")) {
		t.Errorf("the startContainer hook made a directory the seccomp filter denies")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sharedPidBundle is a bundle without a pid namespace of its own whose
// program backgrounds a sleep (its pid in logDir/child), then runs script.
func sharedPidBundle(t *testing.T, logDir, script string) string {
	t.Cleanup(func() { killPidFile(filepath.Join(logDir, "child")) })
	return busybox(t, func(s *specs.Spec) {
		dropNamespace(s, specs.PIDNamespace)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/log", Type: "bind", Source: logDir, Options: []string{"rbind", "rw"}})
	}, "sh", "-c", "sleep 300 & echo $! > /log/child; "+script)
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) is still alive", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKillSharedPidNS: SIGKILL to a container in the host's pid namespace
// kills every process in its cgroup, not only init, as runc does.
func TestKillSharedPidNS(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	b := sharedPidBundle(t, logDir, "exec sleep 300")
	id := newID(t)
	r.must("run", "-d", "-b", b, id)
	child, _ := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(logDir, "child"), 20*time.Second)))
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	waitGone(t, child, "after kill KILL, the container's other process")
	r.must("delete", id)
}

// TestDeleteAfterInitDiedSharedPidNS: in the host's pid namespace, init
// exits and leaves a process behind; delete kills it and removes the
// cgroup instead of failing on it.
func TestDeleteAfterInitDiedSharedPidNS(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	b := sharedPidBundle(t, logDir, "exit 0")
	id := newID(t)
	cgPath := "/berth/" + id
	t.Cleanup(func() { removeCgroup(cgPath) })
	r.must("run", "-d", "-b", b, id)
	child, _ := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(logDir, "child"), 20*time.Second)))
	r.waitStatus(id, "stopped")
	if processGone(child) {
		t.Fatalf("the background process died with init: the test needs it alive")
	}
	r.must("delete", id)
	waitGone(t, child, "after delete, the container's leftover process")
	if left := cgroupLeft(cgPath); len(left) != 0 {
		t.Errorf("after delete, the cgroup is left: %v", left)
	}
}

// frozenCgroup is a cgroup path with its freezer file: freeze writes it,
// and the test's cleanup thaws it (a frozen process cannot die) and
// removes the cgroup.
type frozenCgroup struct {
	path, file, frozen, thawed string
}

func newFrozenCgroup(t *testing.T) *frozenCgroup {
	cgPath := "/berth-it/" + newID(t)
	freezerDir := filepath.Join("/sys/fs/cgroup/freezer", cgPath)
	fc := &frozenCgroup{path: cgPath, file: filepath.Join(freezerDir, "freezer.state"), frozen: "FROZEN", thawed: "THAWED"}
	if cgroupV2() {
		freezerDir = filepath.Join("/sys/fs/cgroup", cgPath)
		fc.file, fc.frozen, fc.thawed = filepath.Join(freezerDir, "cgroup.freeze"), "1", "0"
	}
	if err := os.MkdirAll(freezerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Until it reads back thawed: a v1 freezer still FREEZING may
		// not take the first write.
		deadline := time.Now().Add(5 * time.Second)
		for os.WriteFile(fc.file, []byte(fc.thawed), 0) == nil && time.Now().Before(deadline) {
			if b, _ := os.ReadFile(fc.file); strings.TrimSpace(string(b)) == fc.thawed {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		removeCgroup(cgPath)
	})
	return fc
}

// runFrozen runs `run -d` of b, which must fail within 20 s saying the
// cgroup is frozen, and leave no state.
func runFrozen(t *testing.T, r *rt, b string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := newID(t)
	cmd := exec.CommandContext(ctx, runtimeBin, "--root", r.root, "run", "-d", "-b", b, id)
	out := tempFile(t)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("run -d into a frozen cgroup hangs (killed after 20s): %s", readAll(out))
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(readAll(out), "frozen") {
		t.Fatalf("run -d into a frozen cgroup: %v, output %q; want a failure saying the cgroup is frozen", err, readAll(out))
	}
	if isDir(filepath.Join(r.root, id)) {
		t.Errorf("the failed run left its state")
	}
}

// TestRunIntoFrozenCgroup: a container whose cgroup is frozen cannot
// start; run -d says so instead of hanging.
func TestRunIntoFrozenCgroup(t *testing.T) {
	r := newRT(t)
	fc := newFrozenCgroup(t)
	if err := os.WriteFile(fc.file, []byte(fc.frozen), 0); err != nil {
		t.Fatal(err)
	}
	runFrozen(t, r, busybox(t, func(s *specs.Spec) { s.Linux.CgroupsPath = fc.path }, "sleep", "300"))
}

// TestCgroupFrozenDuringCreate: a cgroup frozen after create's check, while
// init sets up (here by a prestart hook, which runs while init waits), no
// longer leaves create waiting forever for a frozen init: it fails saying
// so, and kills init.
func TestCgroupFrozenDuringCreate(t *testing.T) {
	r := newRT(t)
	fc := newFrozenCgroup(t)
	freeze := fmt.Sprintf("echo %s > %s", fc.frozen, fc.file)
	runFrozen(t, r, busybox(t, func(s *specs.Spec) {
		s.Linux.CgroupsPath = fc.path
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", freeze}}}}
	}, "sleep", "300"))
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(fc.file), "cgroup.procs"))
	if left := strings.Fields(string(b)); len(left) != 0 {
		t.Errorf("processes %v left in the frozen cgroup after the failed create", left)
	}
}

// TestStartInFrozenCgroup: `start` of a created container whose cgroup was
// frozen since create fails saying so, instead of waiting forever for an
// init that cannot run; thawed, the container starts.
func TestStartInFrozenCgroup(t *testing.T) {
	r := newRT(t)
	fc := newFrozenCgroup(t)
	id := newID(t)
	r.must("create", "-b", busybox(t, func(s *specs.Spec) { s.Linux.CgroupsPath = fc.path }, "sleep", "300"), id)
	t.Cleanup(func() { r.run("delete", "--force", id) })
	if err := os.WriteFile(fc.file, []byte(fc.frozen), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, runtimeBin, "--root", r.root, "start", id).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("start of a created container in a frozen cgroup hangs (killed after 20s)")
	}
	if err == nil || !strings.Contains(string(out), "frozen") {
		t.Fatalf("start in a frozen cgroup: %v, output %q; want a failure saying the cgroup is frozen", err, out)
	}
	if err := os.WriteFile(fc.file, []byte(fc.thawed), 0); err != nil {
		t.Fatal(err)
	}
	r.must("start", id)
	r.waitStatus(id, "running")
}
