package integration

// A private containerd for tests (package ctrd), driven through its own
// ctr, with containerd's runc shim (containerd-shim-runc-v2) running the
// runtime under test as its "runc". Everything it makes lives under its
// own directories, and cleanup takes all of it down again, failure or
// not; what the test left behind fails it.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	ctrdpkg "github.com/berthrt/berth/integration/ctrd"
)

const (
	// ctrdNamespace is the containerd namespace of every test container;
	// ctr makes each container's cgroup /<namespace>/<id>.
	ctrdNamespace = "berthtest"
	// ctrdImage is the name the test image is imported under.
	ctrdImage = ctrdpkg.DefaultImage
)

// ctrd is one running private containerd, as a test sees it.
type ctrd struct {
	*ctrdpkg.Daemon
	t        *testing.T
	runcRoot string // --root the shim passes to the runtime
	// runtime is what the shim runs as "runc": a script that records each
	// call in calls and then runs realRuntime.
	runtime     string
	realRuntime string
	calls       string
}

// containerdBinDir is where the containerd binaries are: CONTAINERD_BIN_DIR,
// else the repository's bin/ (where `make` puts them).
func containerdBinDir() string {
	if d := os.Getenv("CONTAINERD_BIN_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs("../bin")
	return d
}

// ctrdRuntimeBinary is the runtime the shim drives: CTR_RUNTIME_BINARY (e.g.
// /usr/sbin/runc, to prove the harness), else the berth-runtime under test.
func ctrdRuntimeBinary(t *testing.T) string {
	p := os.Getenv("CTR_RUNTIME_BINARY")
	if p == "" {
		return runtimeBin
	}
	if !filepath.IsAbs(p) {
		lp, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("CTR_RUNTIME_BINARY=%s: %v", p, err)
		}
		p = lp
	}
	return p
}

// startContainerd starts a private containerd for t, imports the busybox
// test image and registers the cleanup that takes it all down. It skips the
// test when the containerd binaries have not been built.
func startContainerd(t *testing.T) *ctrd {
	t.Helper()
	bin := containerdBinDir()
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Skipf("%s not built (run `make containerd` or set CONTAINERD_BIN_DIR): %v", b, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	c := &ctrd{t: t, realRuntime: ctrdRuntimeBinary(t)}
	d, err := ctrdpkg.Start(context.Background(), ctrdpkg.Config{
		BinDir:    bin,
		Namespace: ctrdNamespace,
		Image:     ctrdImage,
		LogLevel:  "debug",
		TempDir:   t.TempDir(),
		Logf:      func(format string, args ...any) { t.Logf("cleanup: "+format, args...) },
		// What the test left behind is a failure.
		Leakf: func(format string, args ...any) { t.Errorf("cleanup: "+format, args...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Daemon = d
	t.Cleanup(c.cleanup)
	if c.runcRoot, err = d.RuntimeRoot("runc", c.realRuntime); err != nil {
		t.Fatal(err)
	}
	c.calls = filepath.Join(d.State, "runtime-calls.log")
	c.runtime = filepath.Join(d.State, "runtime.sh")
	if err := os.WriteFile(c.runtime, []byte(runtimeWrapper(c.realRuntime, c.calls)), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := c.mustCtr("images", "ls", "-q"); !strings.Contains(out, ctrdImage) {
		t.Fatalf("after import, images are %q; want %s", out, ctrdImage)
	}
	return c
}

// runtimeWrapper is a script that appends each call's arguments, and then
// its exit status and on failure the runtime's --log, to calls before
// passing the status on: a record of exactly how the shim drives the runtime.
func runtimeWrapper(real, calls string) string {
	return fmt.Sprintf(`#!/bin/bash
calls=%q
{ printf 'call[%%d]:' $$; printf ' %%q' "$@"; echo; } >>"$calls"
%q "$@"
rc=$?
log=
prev=
for a in "$@"; do
	[[ $prev == --log ]] && log=$a
	[[ $a == --log=* ]] && log=${a#--log=}
	prev=$a
done
{
	printf 'exit[%%d]: %%d\n' $$ "$rc"
	if [[ $rc -ne 0 && -n $log && -f $log ]]; then tail -n 5 "$log" | sed 's/^/  log: /'; fi
} >>"$calls"
exit $rc
`, calls, real)
}

// ctr runs ctr against this containerd in the test namespace, for at most a
// minute.
func (c *ctrd) ctr(args ...string) result {
	return c.ctrTimeout(time.Minute, args...)
}

func (c *ctrd) ctrTimeout(d time.Duration, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := c.CtrCommand(ctx, args...)
	// Files, not pipes: a task's process may keep ctr's stdio open.
	out, errf := tempFile(c.t), tempFile(c.t)
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	res := result{stdout: readAll(out), stderr: readAll(errf)}
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
		if ctx.Err() != nil {
			res.code = -1
			res.stderr += fmt.Sprintf("\n(ctr %s: killed after %s)", strings.Join(args, " "), d)
		}
	} else if err != nil {
		c.t.Fatalf("ctr %v: %v", args, err)
	}
	return res
}

// mustCtr runs a ctr command that has to succeed and returns its stdout.
func (c *ctrd) mustCtr(args ...string) string {
	c.t.Helper()
	r := c.ctr(args...)
	if r.code != 0 {
		c.t.Fatalf("ctr %s: exit %d: %s%s%s", strings.Join(args, " "), r.code, r.stderr, r.stdout, c.diagnostics())
	}
	return r.stdout
}

// runFlags are the flags `ctr run` needs to drive the runtime under test
// through containerd's runc shim, with its state and fifos in our dirs.
func (c *ctrd) runFlags() []string {
	return []string{
		"--runtime", "io.containerd.runc.v2",
		"--runc-binary", c.runtime,
		"--runc-root", c.runcRoot,
		"--fifo-dir", c.FifoDir,
	}
}

// runArgs is `run [flags] IMAGE ID ARGS...` with the runtime flags.
func (c *ctrd) runArgs(flags []string, id string, args ...string) []string {
	a := append([]string{"run"}, c.runFlags()...)
	a = append(a, flags...)
	a = append(a, ctrdImage, id)
	return append(a, args...)
}

// taskList is `ctr task ls`: id → pid and status.
func (c *ctrd) taskList() map[string]ctrdpkg.Task {
	c.t.Helper()
	tasks, err := c.Tasks(context.Background())
	if err != nil {
		c.t.Fatalf("%v%s", err, c.diagnostics())
	}
	return tasks
}

// tasks returns the task list: id → status (RUNNING, PAUSED, STOPPED …).
func (c *ctrd) tasks() map[string]string {
	c.t.Helper()
	tasks := map[string]string{}
	for id, task := range c.taskList() {
		tasks[id] = task.Status
	}
	return tasks
}

// waitTask waits until `ctr task ls` shows the task with status want.
func (c *ctrd) waitTask(id, want string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := c.tasks()[id]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("task %s: status %q (listed %v), want %s%s", id, got, ok, want, c.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// container registers the cleanup of a container the test is about to
// make: its task killed and deleted (--force only for a task that would
// not stop: the plain delete of a stopped task is what every client does),
// then the container with its snapshot.
func (c *ctrd) container(t *testing.T) string {
	id := newID(t)
	c.Track(id)
	t.Cleanup(func() {
		if err := c.RemoveContainer(context.Background(), id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return id
}

// diagnostics is what a failure message needs: the runtime calls so far
// and the end of containerd's log.
func (c *ctrd) diagnostics() string {
	return "\n--- runtime calls:\n" + ctrdpkg.TailFile(c.calls, 40) + "\n--- containerd log:\n" + c.Tail(20) + "\n"
}

// cleanup shows the runtime calls of a failed test, then takes the
// containerd down with everything it made; what the test left behind
// (containers, processes, runtime state, cgroups, shim sockets) fails it.
func (c *ctrd) cleanup() {
	t := c.t
	if t.Failed() || os.Getenv("CTR_SHOW_CALLS") != "" {
		t.Logf("runtime calls (%s):\n%s", c.realRuntime, ctrdpkg.TailFile(c.calls, 400))
	}
	if err := c.Close(); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// cmdline is pid's command line, for messages.
func cmdline(pid int) string { return strings.Join(ctrdpkg.Cmdline(pid), " ") }

// knownIDs are the container ids this process handed out so far.
func (c *ctrd) knownIDs() []string {
	var ids []string
	for i := int64(1); i <= idSeq.Load(); i++ {
		ids = append(ids, fmt.Sprintf("it-%d-%d", os.Getpid(), i))
	}
	return ids
}

// ptyCtr is a ctr command running on a terminal the test holds the other
// end of, as a user at a terminal would run `ctr run -t`.
type ptyCtr struct {
	t       *testing.T
	cmd     *exec.Cmd
	master  console.Console
	mu      sync.Mutex
	out     bytes.Buffer
	done    chan struct{} // closed when ctr has exited
	readEOF chan struct{}
}

// ctrOnPty starts ctr with a new pty as its controlling terminal and stdio.
func (c *ctrd) ctrOnPty(t *testing.T, args ...string) *ptyCtr {
	t.Helper()
	return onPty(t, c.CtrCommand(context.Background(), args...))
}

// onPty starts cmd with a new 24x80 pty as its controlling terminal and
// stdio.
func onPty(t *testing.T, cmd *exec.Cmd) *ptyCtr {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Resize(console.WinSize{Height: 24, Width: 80}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	p := &ptyCtr{t: t, master: master, done: make(chan struct{}), readEOF: make(chan struct{})}
	p.cmd = cmd
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = p.cmd.Start()
	slave.Close()
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.readEOF)
				return
			}
		}
	}()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		master.Close()
	})
	return p
}

// output is everything ctr wrote to the terminal so far.
func (p *ptyCtr) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal shows s, after at least from bytes.
func (p *ptyCtr) waitFor(s string, from int, d time.Duration) int {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := p.output()
		if i := strings.Index(out[min(from, len(out)):], s); i >= 0 {
			return from + i + len(s)
		}
		select {
		case <-p.done:
			// ctr is gone: whatever it printed is all there will be.
			time.Sleep(100 * time.Millisecond)
			if out := p.output(); strings.Contains(out[min(from, len(out)):], s) {
				return strings.Index(out, s) + len(s)
			}
			p.t.Fatalf("ctr exited (%v) before the terminal showed %q; it showed %q", p.cmd.ProcessState, s, p.output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("terminal did not show %q in %s; it showed %q", s, d, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeLine types a line at the terminal.
func (p *ptyCtr) typeLine(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s + "\r")); err != nil {
		p.t.Fatalf("type %q: %v", s, err)
	}
}

// wait waits for ctr to exit and returns its exit code.
func (p *ptyCtr) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("ctr did not exit in %s; the terminal showed %q", d, p.output())
		return -1
	}
}

// sub is c for a subtest: failures and cleanups go to t.
func (c *ctrd) sub(t *testing.T) *ctrd {
	cc := *c
	cc.t = t
	return &cc
}

// ctrAsync starts a ctr command and sends its result when it exits; it
// never fails the test itself, so it may run beside the test's goroutine.
func (c *ctrd) ctrAsync(d time.Duration, args ...string) <-chan result {
	done := make(chan result, 1)
	out, errf := tempFile(c.t), tempFile(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	cmd := c.CtrCommand(ctx, args...)
	cmd.Stdout, cmd.Stderr = out, errf
	go func() {
		defer cancel()
		err := cmd.Run()
		res := result{stdout: readAll(out), stderr: readAll(errf), code: -1}
		if cmd.ProcessState != nil {
			res.code = cmd.ProcessState.ExitCode()
		} else if err != nil {
			res.stderr += err.Error()
		}
		done <- res
	}()
	return done
}

// expectKilledRun runs `ctr run` with args, kills the task with SIGKILL once
// it runs, and expects ctr to report 137, as a shell would.
func (c *ctrd) expectKilledRun(t *testing.T, id string, args []string) {
	t.Helper()
	done := c.ctrAsync(time.Minute, args...)
	c.waitTask(id, "RUNNING")
	c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
	select {
	case r := <-done:
		if r.code != 137 {
			t.Fatalf("ctr run of a task killed with SIGKILL: exit %d, want 137; stderr %q%s", r.code, r.stderr, c.diagnostics())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ctr run did not return within 30s of SIGKILL%s", c.diagnostics())
	}
}

// checkMetricsPids checks that `ctr task metrics` of the running task id
// counts its process: a table row "pids.current  N" with N >= 1.
func (c *ctrd) checkMetricsPids(id string) {
	c.t.Helper()
	out := c.mustCtr("task", "metrics", id)
	var pids int
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "pids.current" {
			pids, _ = strconv.Atoi(f[1])
		}
	}
	if pids < 1 {
		c.t.Fatalf("ctr task metrics: no pids.current >= 1 in:\n%s%s", out, c.diagnostics())
	}
}
