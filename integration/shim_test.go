package integration

// Berth's own shim, containerd-shim-berth-v2 (runtime type
// io.containerd.berth.v2), under a private containerd, driven by ctr as a
// user would. The shim runs libcontainer in-process: no runtime binary is
// exec'd per operation.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
)

// shimConcurrent is how many containers ConcurrentRuns starts at once:
// the issue asks for 50, which this runtime manages on the 2-core CI
// machine in well under a minute.
const shimConcurrent = 50

func TestBerthShim(t *testing.T) {
	c := startShimContainerd(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *ctrd)
	}{
		{"RunEcho", shimRunEcho},
		{"ExitCode", shimExitCode},
		{"QuickExitKeepsOutput", shimQuickExitKeepsOutput},
		{"Stdin", shimStdin},
		{"RunTTY", shimRunTTY},
		{"TTYResize", shimTTYResize},
		{"Exec", shimExec},
		{"ExecTTY", shimExecTTY},
		{"ExecTTYResize", shimExecTTYResize},
		{"ExecFailure", shimExecFailure},
		{"StoppedState", shimStoppedState},
		{"DeleteCreated", shimDeleteCreated},
		{"KillExitCode", shimKillExitCode},
		{"KillExecAndAll", shimKillExecAndAll},
		{"ForceDeleteStopped", shimForceDeleteStopped},
		{"PauseResume", shimPauseResume},
		{"UpdateMemory", shimUpdateMemory},
		{"Metrics", shimMetrics},
		{"Ps", shimPs},
		{"OOM", shimOOM},
		{"RunMissingProgram", shimRunMissingProgram},
		{"LogFile", shimLogFile},
		{"LogBinary", shimLogBinary},
		{"RuntimeOptions", shimRuntimeOptions},
		{"Group", shimGroup},
		{"Packing", shimPacking},
		{"Linger", shimLinger},
		{"ShimCgroup", shimCgroupOption},
		{"ConcurrentRuns", shimConcurrentRuns},
		{"NothingLeft", shimNothingLeft},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c.sub(t)) })
	}
}

func shimRunEcho(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.container(t)
	r := c.ctr(c.shimRunArgs([]string{"--rm"}, id, "echo", "hi")...)
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("ctr run --rm %s echo hi: exit %d, stdout %q, stderr %q%s", id, r.code, r.stdout, r.stderr, c.diagnostics())
	}
	if tasks := c.tasks(); len(tasks) != 0 {
		t.Errorf("after ctr run --rm, ctr task ls shows %v, want none", tasks)
	}
	got := ev.waitTopics(id, 10*time.Second, "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete")
	if want := []string{"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("task events of %s: %v, want exactly %v", id, got, want)
	}
}

func shimExitCode(t *testing.T, c *ctrd) {
	for _, code := range []int{0, 3, 127} {
		id := c.container(t)
		r := c.ctr(c.shimRunArgs([]string{"--rm"}, id, "sh", "-c", fmt.Sprintf("exit %d", code))...)
		if r.code != code {
			t.Errorf("ctr run sh -c 'exit %d': exit %d; stderr %q%s", code, r.code, r.stderr, c.diagnostics())
		}
	}
}

// Output written just before a fast exit is all there: the shim
// drains the pipes before it closes the client's fifos.
func shimQuickExitKeepsOutput(t *testing.T, c *ctrd) {
	id := c.container(t)
	r := c.ctr(c.shimRunArgs([]string{"--rm"}, id, "sh", "-c", "seq 1 20000; echo err >&2")...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 20000 || lines[19999] != "20000" || ctrStderr(r.stderr) != "err\n" {
		t.Fatalf("ctr run seq 1 20000: exit %d, %d lines (last %q), stderr %q%s", r.code, len(lines), lines[len(lines)-1], r.stderr, c.diagnostics())
	}
}

func shimStdin(t *testing.T, c *ctrd) {
	id := c.container(t)
	r := c.ctrStdin(func() { c.waitTask(id, "RUNNING") }, "hello\nworld\n", c.shimRunArgs([]string{"--rm"}, id, "sh", "-c", "cat; echo done")...)
	if r.code != 0 || r.stdout != "hello\nworld\ndone\n" {
		t.Fatalf("ctr run cat with stdin: exit %d, stdout %q, stderr %q%s", r.code, r.stdout, r.stderr, c.diagnostics())
	}
}

func shimRunTTY(t *testing.T, c *ctrd) {
	id := c.container(t)
	p := c.ctrOnPty(t, c.shimRunArgs([]string{"--rm", "-t"}, id, "sh")...)
	n := p.waitFor("# ", 0, 30*time.Second)
	p.typeLine("echo typed-$((1+2)); stty size")
	n = p.waitFor("typed-3", n, 10*time.Second)
	p.waitFor("24 80", n, 10*time.Second)
	p.typeLine("exit 6")
	if code := p.wait(30 * time.Second); code != 6 {
		t.Fatalf("ctr run -t sh; exit 6: exit %d; terminal: %q%s", code, p.output(), c.diagnostics())
	}
}

func shimExec(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.shimDetached(t)
	r := c.ctr("task", "exec", "--fifo-dir", c.FifoDir, "--exec-id", "e1", id, "sh", "-c", "echo out-$((2*3)); echo err >&2; exit 4")
	if r.code != 4 || r.stdout != "out-6\n" || ctrStderr(r.stderr) != "err\n" {
		t.Fatalf("ctr task exec: exit %d, stdout %q, stderr %q%s", r.code, r.stdout, r.stderr, c.diagnostics())
	}
	// The same exec id again, now that the first is gone.
	r = c.ctrStdin(func() { c.waitExec(id, "e1") }, "piped\n", "task", "exec", "--fifo-dir", c.FifoDir, "--exec-id", "e1", id, "cat")
	if r.code != 0 || r.stdout != "piped\n" {
		t.Fatalf("ctr task exec cat with stdin: exit %d, stdout %q, stderr %q%s", r.code, r.stdout, r.stderr, c.diagnostics())
	}
	if st := c.tasks()[id]; st != "RUNNING" {
		t.Errorf("after the execs, task %s is %q, want RUNNING", id, st)
	}
	ev.waitTopics(id, 10*time.Second, "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit",
		"/tasks/exec-added", "/tasks/exec-started", "/tasks/exit")
}

func shimExecTTY(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	p := c.ctrOnPty(t, "task", "exec", "-t", "--fifo-dir", c.FifoDir, "--exec-id", "t1", id, "sh")
	n := p.waitFor("# ", 0, 30*time.Second)
	p.typeLine("echo typed-$((1+2))")
	p.waitFor("typed-3", n, 10*time.Second)
	p.typeLine("exit 5")
	if code := p.wait(30 * time.Second); code != 5 {
		t.Fatalf("ctr task exec -t sh; exit 5: exit %d; terminal: %q%s", code, p.output(), c.diagnostics())
	}
}

// A task's terminal follows its client's size: ctr resizes the task's
// pty when its own terminal changes size (SIGWINCH → ResizePty), and a
// client can resize it through the task API. `stty size` in the task
// sees each size.
func shimTTYResize(t *testing.T, c *ctrd) {
	id := c.container(t)
	p := c.ctrOnPty(t, c.shimRunArgs([]string{"--rm", "-t"}, id, "sh")...)
	n := p.waitFor("# ", 0, 30*time.Second)
	n = p.waitTTYSize(n, 24, 80)
	// ctr's own terminal changes size: ctr gets SIGWINCH and resizes the task's.
	if err := p.master.Resize(console.WinSize{Height: 40, Width: 132}); err != nil {
		t.Fatal(err)
	}
	n = p.waitTTYSize(n, 40, 132)
	// A client resizes the task's terminal through the API (Task.Resize).
	task, ctx := c.loadTask(t, id)
	if err := task.Resize(ctx, 100, 30); err != nil {
		t.Fatalf("resize the terminal of %s through the task API: %v%s", id, err, c.diagnostics())
	}
	p.waitTTYSize(n, 30, 100)
	p.typeLine("exit 0")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("ctr run -t sh; exit 0: exit %d; terminal: %q%s", code, p.output(), c.diagnostics())
	}
}

// The same for an exec'd process's terminal (ResizePty with an exec id).
func shimExecTTYResize(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	p := c.ctrOnPty(t, "task", "exec", "-t", "--fifo-dir", c.FifoDir, "--exec-id", "r1", id, "sh")
	n := p.waitFor("# ", 0, 30*time.Second)
	n = p.waitTTYSize(n, 24, 80)
	if err := p.master.Resize(console.WinSize{Height: 50, Width: 100}); err != nil {
		t.Fatal(err)
	}
	n = p.waitTTYSize(n, 50, 100)
	task, ctx := c.loadTask(t, id)
	proc, err := task.LoadProcess(ctx, "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Resize(ctx, 90, 33); err != nil {
		t.Fatalf("resize the terminal of exec r1 through the task API: %v%s", err, c.diagnostics())
	}
	p.waitTTYSize(n, 33, 90)
	p.typeLine("exit 0")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("ctr task exec -t sh; exit 0: exit %d; terminal: %q%s", code, p.output(), c.diagnostics())
	}
	if st := c.tasks()[id]; st != "RUNNING" {
		t.Errorf("after the exec, task %s is %q, want RUNNING", id, st)
	}
}

// An exec that cannot start fails with the reason, and leaves the task
// and the exec id as they were.
func shimExecFailure(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	r := c.ctr("task", "exec", "--exec-id", "bad", id, "/no/such/program")
	if r.code == 0 || !strings.Contains(r.stderr, "/no/such/program") {
		t.Fatalf("exec of a missing program: exit %d, stderr %q; want a failure naming it%s", r.code, r.stderr, c.diagnostics())
	}
	if st := c.tasks()[id]; st != "RUNNING" {
		t.Errorf("after a failed exec, task %s is %q, want RUNNING", id, st)
	}
	if r := c.ctr("task", "exec", "--exec-id", "bad", id, "true"); r.code != 0 {
		t.Errorf("exec with the failed exec's id: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A task that exited keeps its status for Wait and State until deleted.
func shimStoppedState(t *testing.T, c *ctrd) {
	id := c.container(t)
	c.mustCtr(c.shimRunArgs([]string{"--detach", "--null-io"}, id, "sh", "-c", "exit 9")...)
	c.waitTask(id, "STOPPED")
	cl, ctx := c.client()
	ctr, err := cl.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		st, err := task.Status(ctx)
		if err != nil || st.ExitStatus != 9 {
			t.Fatalf("status of the exited task: %+v, %v; want exit status 9", st, err)
		}
		ch, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if code := (<-ch).ExitCode(); code != 9 {
			t.Fatalf("wait on the exited task: %d, want 9", code)
		}
	}
	if err := task.Kill(ctx, unix.SIGTERM); err == nil {
		t.Errorf("a signal to the exited task's init succeeded, want not found")
	}
	st, err := task.Delete(ctx)
	if err != nil || st.ExitCode() != 9 {
		t.Fatalf("delete of the exited task: %v, %v; want exit status 9", st, err)
	}
}

// A task that was created and never started can be deleted: its waiting
// init is killed and nothing of it is left.
func shimDeleteCreated(t *testing.T, c *ctrd) {
	cl, ctx := c.client()
	img, err := cl.GetImage(ctx, ctrdImage)
	if err != nil {
		t.Fatal(err)
	}
	id := c.container(t)
	ctr, err := cl.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "300")),
		containerd.WithRuntime(berthRuntime, nil))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	pid := int(task.Pid())
	if st := c.tasks()[id]; st != "CREATED" {
		t.Errorf("new task is %q, want CREATED", st)
	}
	// Straight to the task service: the client would kill the task first.
	resp, err := cl.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
	if err != nil {
		t.Fatalf("delete of a created task: %v%s", err, c.diagnostics())
	}
	if resp.ExitStatus != 137 {
		t.Errorf("delete of a created task: exit status %d, want 137 (killed)", resp.ExitStatus)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pidAlive(pid) || isDir(filepath.Join(berthShimRoot, ctrdNamespace, id)) {
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the created task: init alive %v, state left %v", pidAlive(pid), isDir(filepath.Join(berthShimRoot, ctrdNamespace, id)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cgroupFile("pids", id, "cgroup.procs"); err == nil {
		t.Errorf("the cgroup of the deleted created task is still there")
	}
}

func shimKillExitCode(t *testing.T, c *ctrd) {
	id := c.container(t)
	c.expectKilledRun(t, id, c.shimRunArgs([]string{"--rm"}, id, "sleep", "300"))
}

func shimKillExecAndAll(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	done := c.ctrAsync(time.Minute, "task", "exec", "--exec-id", "s1", id, "sleep", "300")
	c.waitExec(id, "s1")
	c.mustCtr("task", "kill", "--exec-id", "s1", "--signal", "SIGTERM", id)
	if r := <-done; r.code != 143 {
		t.Errorf("exec killed with SIGTERM: exit %d, want 143; stderr %q", r.code, r.stderr)
	}
	c.mustCtr("task", "kill", "--all", "--signal", "SIGKILL", id)
	c.waitTask(id, "STOPPED")
	c.mustCtr("task", "delete", id)
}

func shimForceDeleteStopped(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
	c.waitTask(id, "STOPPED")
	c.mustCtr("task", "delete", "--force", id)
	if _, ok := c.tasks()[id]; ok {
		t.Errorf("after ctr task delete --force, task %s is still listed", id)
	}
}

func shimPauseResume(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.shimDetached(t)
	c.mustCtr("task", "pause", id)
	if st := c.tasks()[id]; st != "PAUSED" {
		t.Fatalf("after ctr task pause: status %q, want PAUSED%s", st, c.diagnostics())
	}
	if st, err := cgroupFile("freezer", id, "freezer.state"); err == nil && st != "FROZEN" {
		t.Errorf("paused task's freezer.state is %q, want FROZEN", st)
	}
	c.mustCtr("task", "resume", id)
	if st := c.tasks()[id]; st != "RUNNING" {
		t.Fatalf("after ctr task resume: status %q, want RUNNING%s", st, c.diagnostics())
	}
	ev.waitTopics(id, 10*time.Second, "/tasks/paused", "/tasks/resumed")
}

func shimUpdateMemory(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	const limit = 64 << 20
	if err := c.updateMemory(id, limit); err != nil {
		t.Fatalf("update the memory limit of %s: %v%s", id, err, c.diagnostics())
	}
	got, err := cgroupFile("memory", id, "memory.limit_in_bytes")
	if err != nil {
		got, err = cgroupFile("", id, "memory.max")
	}
	if err != nil || got != strconv.Itoa(limit) {
		t.Fatalf("after ctr task update --memory-limit %d: cgroup limit %q (%v)%s", limit, got, err, c.diagnostics())
	}
}

func shimMetrics(t *testing.T, c *ctrd) {
	c.checkMetricsPids(c.shimDetached(t))
}

func shimPs(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	pid := c.taskPid(id)
	if out := c.mustCtr("task", "ps", id); !strings.Contains(out, strconv.Itoa(pid)) {
		t.Fatalf("ctr task ps %s does not list the task's pid %d:\n%s", id, pid, out)
	}
}

func shimOOM(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.container(t)
	// Doubling a shell variable needs more than 16 MiB in a few steps.
	r := c.ctr(c.shimRunArgs([]string{"--rm", "--memory-limit", strconv.Itoa(16 << 20)}, id,
		"sh", "-c", "x=0123456789; while true; do x=$x$x; done")...)
	if r.code != 137 {
		t.Fatalf("ctr run of a task that runs out of memory: exit %d, want 137; stderr %q%s", r.code, r.stderr, c.diagnostics())
	}
	ev.waitTopics(id, 10*time.Second, "/tasks/oom", "/tasks/exit")
}

func shimRunMissingProgram(t *testing.T, c *ctrd) {
	id := c.container(t)
	r := c.ctr(c.shimRunArgs([]string{"--rm"}, id, "/no/such/program")...)
	if r.code == 0 || !strings.Contains(r.stderr, "/no/such/program") {
		t.Fatalf("ctr run of a missing program: exit %d, stderr %q; want a failure naming the program%s", r.code, r.stderr, c.diagnostics())
	}
	if _, ok := c.tasks()[id]; ok {
		t.Errorf("after a failed ctr run --rm, task %s is still listed", id)
	}
}

func shimLogFile(t *testing.T, c *ctrd) {
	id := c.container(t)
	logPath := filepath.Join(t.TempDir(), "out.log")
	c.mustCtr(c.shimRunArgs([]string{"--rm", "--log-uri", "file://" + logPath}, id, "sh", "-c", "echo to-log; echo err-log >&2")...)
	b, _ := os.ReadFile(logPath)
	got := string(b)
	if !strings.Contains(got, "to-log\n") || !strings.Contains(got, "err-log\n") {
		t.Fatalf("file:// log has %q, want both streams%s", got, c.diagnostics())
	}
}

// A binary:// logging driver gets stdout on fd 3, stderr on fd 4
// and says it is ready by closing fd 5.
func shimLogBinary(t *testing.T, c *ctrd) {
	id := c.container(t)
	logger, out := writeLoggerScript(t)
	c.mustCtr(c.shimRunArgs([]string{"--rm", "--log-uri", "binary://" + logger + "?out=" + out}, id, "sh", "-c", "echo to-driver; echo err-driver >&2")...)
	c.waitLoggerOutput(out, "to-driver\n", "err-driver\n")
}

// writeLoggerScript writes a logging binary (binary://) that copies the
// streams to <out>.stdout and <out>.stderr, out being its "out" argument.
func writeLoggerScript(t *testing.T) (logger, out string) {
	dir := t.TempDir()
	logger = filepath.Join(dir, "logger.sh")
	script := "#!/bin/sh\nout=$2\nexec 5>&-\ncat <&3 >\"$out.stdout\" &\ncat <&4 >\"$out.stderr\"\nwait\n"
	if err := os.WriteFile(logger, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return logger, filepath.Join(dir, "log")
}

// waitLoggerOutput polls until the logging binary wrote stdout and
// stderr.
func (c *ctrd) waitLoggerOutput(out, stdout, stderr string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, _ := os.ReadFile(out + ".stdout")
		e, _ := os.ReadFile(out + ".stderr")
		if string(o) == stdout && string(e) == stderr {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("logging binary got stdout %q, stderr %q%s", o, e, c.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Generic options (a TOML file) with a state root of their own and
// keys that mean nothing to berth: honoured and ignored.
func shimRuntimeOptions(t *testing.T, c *ctrd) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	cfg := filepath.Join(dir, "berth.toml")
	body := fmt.Sprintf("Root = %q\nSystemdCgroup = false\nNotAnOption = 7\n", root)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.shimDetached(t, "--runtime-config-path", cfg)
	if !isDir(filepath.Join(root, ctrdNamespace, id)) {
		t.Errorf("with Root = %s, the container's state is not under it%s", root, c.diagnostics())
	}
	c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
	c.waitTask(id, "STOPPED")
	c.mustCtr("task", "delete", id)
	if isDir(filepath.Join(root, ctrdNamespace, id)) {
		t.Errorf("after delete, the state under %s is still there", root)
	}
	// runc's own options, as a runc-configured client sends them.
	if code, err := c.runWithRuncOptions(context.Background(), t, ""); err != nil || code != 7 {
		t.Errorf("a task with runc options: exit %d, %v; want 7%s", code, err, c.diagnostics())
	}
	// Berth's RuntimeBinary names the berth-runtime containers start
	// from; a wrong one fails the create, saying what to fix.
	bad := filepath.Join(dir, "bad-runtime.toml")
	if err := os.WriteFile(bad, []byte("RuntimeBinary = \"/no/such/berth-runtime\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id = c.container(t)
	res := c.ctr(c.shimRunArgs([]string{"--rm", "--runtime-config-path", bad}, id, "true")...)
	if res.code == 0 || !strings.Contains(res.stderr, "/no/such/berth-runtime") || !strings.Contains(res.stderr, "RuntimeBinary") {
		t.Errorf("ctr run with RuntimeBinary = /no/such/berth-runtime: exit %d, stderr %q; want a failure that names the binary and the option", res.code, res.stderr)
	}
	good := filepath.Join(dir, "good-runtime.toml")
	if err := os.WriteFile(good, fmt.Appendf(nil, "RuntimeBinary = %q\n", runtimeBin), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.mustCtr(c.shimRunArgs([]string{"--rm", "--runtime-config-path", good}, c.container(t), "echo", "hi")...); out != "hi\n" {
		t.Errorf("ctr run with RuntimeBinary = %s printed %q, want hi", runtimeBin, out)
	}
}

// Two containers with one group annotation share one shim.
func shimGroup(t *testing.T, c *ctrd) {
	group := fmt.Sprintf("io.containerd.runc.v2.group=g-%d", time.Now().UnixNano())
	a := c.shimDetached(t, "--label", group)
	b := c.shimDetached(t, "--label", group)
	other := c.shimDetached(t)
	pa, pb, po := parentPid(c.taskPid(a)), parentPid(c.taskPid(b)), parentPid(c.taskPid(other))
	if pa == 0 || pa != pb {
		t.Errorf("grouped containers %s and %s have shims %d and %d, want one", a, b, pa, pb)
	}
	if po == pa {
		t.Errorf("ungrouped container %s shares the group's shim %d", other, po)
	}
	if !strings.Contains(cmdline(pa), "containerd-shim-berth-v2") {
		t.Errorf("parent of the task %d is %q, not the shim", pa, cmdline(pa))
	}
}

// Containers without a shim group share shims, ContainersPerShim to a
// shim (ContainersPerShim = 1: one each, as containerd's runc shim does).
// With ShimLinger = "0s" a shim goes once its last container is deleted,
// and nothing of the packing is left in containerd's socket dir.
func shimPacking(t *testing.T, c *ctrd) {
	dir := t.TempDir()
	options := func(perShim int) string {
		cfg := filepath.Join(dir, fmt.Sprintf("per-shim-%d.toml", perShim))
		if err := os.WriteFile(cfg, fmt.Appendf(nil, "ContainersPerShim = %d\nShimLinger = \"0s\"\n", perShim), 0o644); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	servedBy := map[int][]string{} // shim pid -> its containers
	var ids []string
	run := func(cfg string) int {
		id := c.shimDetached(t, "--runtime-config-path", cfg)
		shim := parentPid(c.taskPid(id))
		if !strings.Contains(cmdline(shim), "containerd-shim-berth-v2") {
			t.Fatalf("parent of the task %d is %q, not the shim", shim, cmdline(shim))
		}
		servedBy[shim] = append(servedBy[shim], id)
		ids = append(ids, id)
		return shim
	}
	for range 5 {
		run(options(2))
	}
	var sizes []int
	for _, served := range servedBy {
		sizes = append(sizes, len(served))
	}
	slices.Sort(sizes)
	if fmt.Sprint(sizes) != "[1 2 2]" {
		t.Errorf("5 containers with ContainersPerShim = 2 went to shims %v, want 3 shims serving 2, 2 and 1%s", servedBy, c.diagnostics())
	}
	own := []int{run(options(1)), run(options(1))}
	for _, shim := range own {
		if len(servedBy[shim]) != 1 {
			t.Errorf("with ContainersPerShim = 1, shim %d serves %v, want one container", shim, servedBy[shim])
		}
	}

	for _, id := range ids {
		c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
		c.waitTask(id, "STOPPED")
		c.mustCtr("task", "delete", id)
	}
	deadline := time.Now().Add(20 * time.Second)
	for shim := range servedBy {
		for pidAlive(shim) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if pidAlive(shim) {
			t.Errorf("shim %d still runs after its containers %v were deleted", shim, servedBy[shim])
		}
	}
	entries, _ := os.ReadDir(c.SocketDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "berth-pack-") {
			t.Errorf("packing state %s left after every container was deleted", filepath.Join(c.SocketDir, e.Name()))
		}
	}
}

// A shared shim whose last container was deleted stays ShimLinger for
// the next container of its namespace, and serves it; once a wait passes
// with no container, it exits and leaves nothing in the socket dir.
func shimLinger(t *testing.T, c *ctrd) {
	const linger = 2 * time.Second
	cfg := filepath.Join(t.TempDir(), "linger.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "ShimLinger = %q\n", linger.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	remove := func(id string) {
		c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
		c.waitTask(id, "STOPPED")
		c.mustCtr("task", "delete", id)
	}
	first := c.shimDetached(t, "--runtime-config-path", cfg)
	shim := parentPid(c.taskPid(first))
	remove(first)
	second := c.shimDetached(t, "--runtime-config-path", cfg)
	if got := parentPid(c.taskPid(second)); got != shim {
		t.Errorf("a container started right after the last one of shim %d went to shim %d (%s)", shim, got, cmdline(got))
	}
	remove(second)
	deleted := time.Now()
	for pidAlive(shim) && time.Since(deleted) < linger+10*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	switch waited := time.Since(deleted); {
	case pidAlive(shim):
		t.Fatalf("shim %d still runs %s after its last container was deleted (ShimLinger %s)", shim, waited, linger)
	case waited < linger*8/10:
		t.Errorf("shim %d left %s after its last container was deleted, before its ShimLinger of %s", shim, waited, linger)
	}
	// Shims of earlier tests may linger still (the default ShimLinger):
	// the state goes with the last of them.
	for len(c.ShimPids()) > 0 && time.Since(deleted) < linger+10*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	entries, _ := os.ReadDir(c.SocketDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "berth-pack-") {
			t.Errorf("packing state %s left after the lingering shim exited", filepath.Join(c.SocketDir, e.Name()))
		}
	}
}

// With the ShimCgroup option a new shim runs in that cgroup: the start
// goes to the shim server, which moves the shim there before containerd
// learns its address.
func shimCgroupOption(t *testing.T, c *ctrd) {
	path := fmt.Sprintf("/berth-shimcg-%d", time.Now().UnixNano())
	cg, err := cgroups.New("shimcg", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var shim int
	t.Cleanup(func() {
		// After the container's own cleanup: the shim must be gone first.
		for deadline := time.Now().Add(10 * time.Second); shim != 0 && pidAlive(shim) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if err := cg.Delete(); err != nil {
			t.Errorf("remove the test's cgroup %s: %v", path, err)
		}
	})
	cfg := filepath.Join(t.TempDir(), "shim-cgroup.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "ShimCgroup = %q\nShimLinger = \"0s\"\n", path), 0o644); err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("io.containerd.runc.v2.group=shimcg-%d", time.Now().UnixNano())
	id := c.shimDetached(t, "--runtime-config-path", cfg, "--label", group)
	shim = parentPid(c.taskPid(id))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", shim))
	if err != nil || !strings.Contains(string(b), ":"+path+"\n") {
		t.Fatalf("shim %d is not in %s (%v):\n%s", shim, path, err, b)
	}
	c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
	c.waitTask(id, "STOPPED")
	c.mustCtr("task", "delete", id)
}

// shimConcurrent containers started at once, each with its own output
// and exit code: every ctr run gets exactly its own.
func shimConcurrentRuns(t *testing.T, c *ctrd) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan string, shimConcurrent)
	for i := 0; i < shimConcurrent; i++ {
		id := c.container(t)
		code := i % 7
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := <-c.ctrAsync(3*time.Minute, c.shimRunArgs([]string{"--rm"}, id, "sh", "-c", fmt.Sprintf("echo out-%s; echo err-%s >&2; exit %d", id, id, code))...)
			if r.code != code || r.stdout != "out-"+id+"\n" || ctrStderr(r.stderr) != "err-"+id+"\n" {
				errs <- fmt.Sprintf("%s: exit %d (want %d), stdout %q, stderr %q", id, r.code, code, r.stdout, r.stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := false
	for e := range errs {
		t.Error(e)
		failed = true
	}
	if failed {
		t.Log(c.diagnostics())
	}
	t.Logf("%d concurrent ctr run --rm: %s", shimConcurrent, time.Since(start))
	if tasks := c.tasks(); len(tasks) != 0 {
		t.Errorf("after the concurrent runs, tasks %v are left", tasks)
	}
}

func shimNothingLeft(t *testing.T, c *ctrd) {
	if tasks := c.tasks(); len(tasks) != 0 {
		t.Errorf("tasks left after the tests cleaned up: %v", tasks)
	}
	if out := strings.TrimSpace(c.mustCtr("container", "ls", "-q")); out != "" {
		t.Errorf("containers left after the tests cleaned up: %q", out)
	}
}

// shimRestartTasks is how many containers run while containerd is killed
// and restarted.
const shimRestartTasks = 10

// shimTrapTERM is a container's program that runs until SIGTERM and then
// exits 7: a shell as the pid namespace's init gets a signal from outside
// only for a trap it set.
var shimTrapTERM = []string{"sh", "-c", "trap 'exit 7' TERM; sleep 300 & wait"}

// TestBerthShimRestarts: containerd is killed outright (SIGKILL, by pid)
// and restarted while shimRestartTasks containers run. Each still runs,
// with the same init, and can be exec'd into (its output checked) and
// stopped (kill, then delete) through the new containerd. One more
// container exits while containerd is down: afterwards it is either
// stopped with its exit status, or (what containerd does with a shim
// that runs no process when it loads it, containerd #6860) deleted with
// nothing of it left; either way its container can be removed.
func TestBerthShimRestarts(t *testing.T) {
	c := startShimContainerd(t)
	ids := make([]string, shimRestartTasks)
	for i := range ids {
		ids[i] = c.container(t)
		c.mustCtr(c.shimRunArgs([]string{"--detach", "--null-io"}, ids[i], shimTrapTERM...)...)
	}
	downExit := c.container(t)
	c.mustCtr(c.shimRunArgs([]string{"--detach", "--null-io"}, downExit, "sh", "-c", "trap 'exit 5' TERM; sleep 300 & wait")...)
	pids := map[string]int{}
	for _, id := range ids {
		c.waitTask(id, "RUNNING")
		pids[id] = c.taskPid(id)
	}
	c.waitTask(downExit, "RUNNING")
	down := c.shimFootprint(t, downExit)

	c.restart(func() {
		// While containerd is down, one init exits; its shim keeps the
		// status for the containerd that comes back.
		unix.Kill(down.pid, unix.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for pidAlive(down.pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	})

	tasks := c.tasks()
	for _, id := range ids {
		if st := tasks[id]; st != "RUNNING" {
			t.Fatalf("after containerd was killed and restarted, task %s is %q, want RUNNING%s", id, st, c.diagnostics())
		}
		if got := c.taskPid(id); got != pids[id] {
			t.Errorf("after the restart the pid of %s is %d, was %d", id, got, pids[id])
		}
	}
	switch st, listed := tasks[downExit]; {
	case !listed:
		t.Logf("containerd deleted the task that exited while it was down")
		c.waitNothingLeft(down)
	case st != "STOPPED":
		t.Errorf("the task that exited while containerd was down is %q, want STOPPED%s", st, c.diagnostics())
	default:
		task, ctx := c.loadTask(t, downExit)
		if st, err := task.Delete(ctx); err != nil || st.ExitCode() != 5 {
			t.Errorf("delete of the task that exited while containerd was down: %v, %v; want exit status 5", st, err)
		}
		c.waitNothingLeft(down)
	}
	c.mustCtr("container", "rm", downExit)

	ev := c.watchEvents(t)
	for _, id := range ids {
		r := c.ctr("task", "exec", "--exec-id", "after-restart", id, "sh", "-c", "echo still-$0; echo err-$0 >&2", id)
		if r.code != 0 || r.stdout != "still-"+id+"\n" || ctrStderr(r.stderr) != "err-"+id+"\n" {
			t.Fatalf("exec in %s after containerd was killed and restarted: exit %d, stdout %q, stderr %q%s", id, r.code, r.stdout, r.stderr, c.diagnostics())
		}
	}
	for _, id := range ids {
		task, ctx := c.loadTask(t, id)
		statusC, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.mustCtr("task", "kill", id) // SIGTERM
		select {
		case st := <-statusC:
			if code, _, err := st.Result(); err != nil || code != 7 {
				t.Errorf("wait on %s after ctr task kill: exit %d, %v; want 7", id, code, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not exit within 30s of ctr task kill%s", id, c.diagnostics())
		}
		c.waitTask(id, "STOPPED")
		c.mustCtr("task", "delete", id)
		if _, listed := c.tasks()[id]; listed {
			t.Errorf("after ctr task delete %s, the task is still listed", id)
		}
		if got := ev.exitStatus(id, 10*time.Second); got != 7 {
			t.Errorf("TaskExit of %s after the restart: exit status %d, want 7", id, got)
		}
		if pidAlive(pids[id]) {
			t.Errorf("the init %d of the deleted task %s is alive", pids[id], id)
		}
	}
}

// TestBerthShimKilled: a shim killed with SIGKILL. containerd sees it
// disconnect, runs `shim delete` and publishes the task's exit. A user
// sees what they see of a task that was killed: Wait returns, a TaskExit
// with status 137, `ctr task ls` no longer lists the task, `ctr c rm`
// works. Nothing of the container is left: processes, cgroups, mounts,
// bundle, libcontainer state, the shim's sockets, fifos.
func TestBerthShimKilled(t *testing.T) {
	c := startShimContainerd(t)
	t.Run("Attached", func(t *testing.T) { shimKilledAttached(t, c.sub(t)) })
	t.Run("Group", func(t *testing.T) { shimKilledGroup(t, c.sub(t)) })
	t.Run("Exited", func(t *testing.T) { shimKilledExited(t, c.sub(t)) })
	t.Run("NothingLeft", func(t *testing.T) { shimNothingLeft(t, c.sub(t)) })
}

// A task that a `ctr run` is attached to (fifos) and a client waits on.
func shimKilledAttached(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.container(t)
	fifoDir := filepath.Join(c.FifoDir, id)
	if err := os.MkdirAll(fifoDir, 0o700); err != nil {
		t.Fatal(err)
	}
	run := c.ctrAsync(2*time.Minute, "run", "--runtime", berthRuntime, "--fifo-dir", fifoDir, ctrdImage, id, "sleep", "300")
	c.waitTask(id, "RUNNING")
	// And an exec with fifos of its own, attached too.
	execRun := c.ctrAsync(2*time.Minute, "task", "exec", "--fifo-dir", fifoDir, "--exec-id", "x1", id, "sleep", "300")
	c.waitExec(id, "x1")
	task, ctx := c.loadTask(t, id)
	statusC, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := c.shimFootprint(t, id)
	if n := len(fifosUnder(fifoDir)); n < 4 {
		t.Fatalf("ctr run and ctr task exec made %d fifos under %s, want stdout and stderr of each: %v", n, fifoDir, fifosUnder(fifoDir))
	}
	unix.Kill(before.shimPid, unix.SIGKILL)

	select {
	case st := <-statusC:
		t.Logf("client Wait after the shim was killed: %+v", st)
	case <-time.After(30 * time.Second):
		t.Fatalf("a client's Wait did not return within 30s of the shim's death%s", c.diagnostics())
	}
	select {
	case r := <-run:
		if r.code == 0 {
			t.Errorf("ctr run of a task whose shim was killed exited 0; stderr %q", r.stderr)
		}
		t.Logf("ctr run after the shim was killed: exit %d, stderr %q", r.code, r.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("ctr run did not return within 30s of the shim's death%s", c.diagnostics())
	}
	select {
	case r := <-execRun:
		if r.code == 0 {
			t.Errorf("ctr task exec in a task whose shim was killed exited 0; stderr %q", r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ctr task exec did not return within 30s of the shim's death%s", c.diagnostics())
	}
	if got := ev.exitStatus(id, 30*time.Second); got != 137 {
		t.Errorf("TaskExit of %s after its shim was killed: exit status %d, want 137 (killed)", id, got)
	}
	ev.waitTopics(id, 10*time.Second, "/tasks/exit", "/tasks/delete")
	c.waitNothingLeft(before)
	c.mustCtr("container", "rm", id)
	if out := c.mustCtr("container", "ls", "-q"); strings.Contains(out, id) {
		t.Errorf("after ctr c rm %s, ctr c ls still lists it", id)
	}
	if f := fifosUnder(fifoDir); len(f) > 0 {
		t.Errorf("fifos left after the task was cleaned up and its container removed: %v", f)
	}
}

// A task that exited (not deleted yet) when its shim is killed: the exit
// containerd reports for it is the one the shim recorded, not a kill.
func shimKilledExited(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.container(t)
	c.mustCtr(c.shimRunArgs([]string{"--detach", "--null-io"}, id, "sh", "-c", "trap 'exit 3' TERM; sleep 300 & wait")...)
	c.waitTask(id, "RUNNING")
	f := c.shimFootprint(t, id)
	c.mustCtr("task", "kill", id) // SIGTERM
	c.waitTask(id, "STOPPED")
	if got := ev.exitStatus(id, 10*time.Second); got != 3 {
		t.Fatalf("TaskExit of %s: exit status %d, want 3", id, got)
	}
	unix.Kill(f.shimPid, unix.SIGKILL)
	c.waitNothingLeft(f)
	// containerd reports the exit again for the task it cleaned up.
	if got := ev.exitStatuses(id, 2, 10*time.Second); got[1] != 3 {
		t.Errorf("TaskExit of %s after its shim was killed: exit status %d, want 3 (the one the shim recorded)", id, got[1])
	}
	c.mustCtr("container", "rm", id)
}

// A shim that serves two grouped containers: both go with it.
func shimKilledGroup(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	group := fmt.Sprintf("io.containerd.runc.v2.group=g-%d", time.Now().UnixNano())
	a := c.shimDetached(t, "--label", group)
	b := c.shimDetached(t, "--label", group)
	fa, fb := c.shimFootprint(t, a), c.shimFootprint(t, b)
	if fa.shimPid != fb.shimPid {
		t.Fatalf("grouped containers %s and %s have shims %d and %d, want one", a, b, fa.shimPid, fb.shimPid)
	}
	unix.Kill(fa.shimPid, unix.SIGKILL)
	for _, f := range []shimFootprint{fa, fb} {
		if got := ev.exitStatus(f.id, 30*time.Second); got != 137 {
			t.Errorf("TaskExit of %s after its shim was killed: exit status %d, want 137 (killed)", f.id, got)
		}
		c.waitNothingLeft(f)
		c.mustCtr("container", "rm", f.id)
	}
}
