package integration

// `berth logs` against a private containerd, on containers made through
// the containerd client with the log annotation, as `berth run` makes
// them, and run by Berth's shim, which writes the log.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
)

func TestBerthLogs(t *testing.T) {
	c := startShimContainerd(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *ctrd)
	}{
		{"Read", berthLogsRead},
		{"NoLog", berthLogsNoLog},
		{"Follow", berthLogsFollow},
		{"FollowRestarts", berthLogsFollowRestarts},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c.sub(t)) })
	}
}

// berthOn is berth pointed at the test's containerd and namespace (and a
// berth.toml that does not exist: the defaults).
func berthOn(t *testing.T, c *ctrd) (*berthCLI, []string) {
	b := &berthCLI{t: t, bin: berthBin(t), config: filepath.Join(t.TempDir(), "berth.toml")}
	return b, []string{"--address", c.Socket, "--namespace", ctrdNamespace}
}

// berthAsync starts berth in the background: its stdout so far, and a
// channel with its exit code once it ends. The test's cleanup kills it.
func berthAsync(t *testing.T, b *berthCLI, args ...string) (*syncBuffer, <-chan int) {
	t.Helper()
	cmd := exec.Command(b.bin, append([]string{"--config", b.config}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	out, errs := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
		close(done) // the cleanup's receive returns after the test's
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("berth %s: stdout %q, stderr %q", strings.Join(args, " "), out.String(), errs.String())
		}
	})
	return out, done
}

// waitOutput polls until buf holds want.
func waitOutput(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for buf.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", buf.String(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit waits for berth's exit code.
func waitExit(t *testing.T, done <-chan int, what string) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not end", what)
		return -1
	}
}

// startTask creates and starts a task with no stdio (berth run -d).
func startTask(t *testing.T, c *ctrd, ctr containerd.Container) containerd.Task {
	t.Helper()
	_, ctx := c.client()
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("new task: %v%s", err, c.diagnostics())
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start: %v%s", err, c.diagnostics())
	}
	return task
}

// execIn runs a command in the task's container and waits for it.
func execIn(t *testing.T, c *ctrd, ctr containerd.Container, task containerd.Task, execID string, args ...string) {
	t.Helper()
	_, ctx := c.client()
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Args = args
	proc, err := task.Exec(ctx, execID, &pspec, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := proc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-ch
	proc.Delete(ctx)
}

// killAndDelete kills a task, waits for its exit and deletes it.
func killAndDelete(t *testing.T, c *ctrd, task containerd.Task) {
	t.Helper()
	_, ctx := c.client()
	ch, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ch
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

func berthLogsRead(t *testing.T, c *ctrd) {
	name := "logs-" + strings.ReplaceAll(t.Name(), "/", "-")
	// stdout and stderr are two pipes, read apart: which of two lines
	// written to them back to back is logged first is a race (in docker
	// too). The pause lets --tail 1 know its last line.
	ctr, _ := newLogContainer(t, c, true, nil, map[string]string{"berth/name": name},
		oci.WithProcessArgs("sh", "-c", "echo one; echo two >&2; sleep 0.3; echo three"))
	runTask(t, c, ctr, cio.NullIO)
	b, g := berthOn(t, c)
	for _, tc := range []struct {
		args        []string
		out, errOut string
	}{
		{args: []string{"logs", name}, out: "one\nthree\n", errOut: "two\n"},
		{args: []string{"logs", ctr.ID()}, out: "one\nthree\n", errOut: "two\n"},
		{args: []string{"logs", "--tail", "1", name}, out: "three\n"},
		{args: []string{"logs", "--tail", "0", name}},
		{args: []string{"logs", "--since", "1h", name}, out: "one\nthree\n", errOut: "two\n"},
		{args: []string{"logs", "--until", "2000-01-01T00:00:00Z", name}},
	} {
		res := b.run(append(g, tc.args...)...)
		if res.code != 0 || res.stdout != tc.out || res.stderr != tc.errOut {
			t.Errorf("berth %s: exit %d, stdout %q, stderr %q; want 0, %q, %q", strings.Join(tc.args, " "), res.code, res.stdout, res.stderr, tc.out, tc.errOut)
		}
	}
	res := b.run(append(g, "logs", "-t", name)...)
	stamp := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z `
	if !regexp.MustCompile(`^`+stamp+`one\n`+stamp+`three\n$`).MatchString(res.stdout) || !regexp.MustCompile(`^`+stamp+`two\n$`).MatchString(res.stderr) {
		t.Errorf("berth logs -t: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{args: []string{"logs", "no-such-" + name}, want: "No such container: no-such-" + name},
		{args: []string{"logs", "--tail", "many", name}, want: "--tail"},
		{args: []string{"logs", "--since", "whenever", name}, want: "--since"},
		{args: []string{"logs"}, want: "requires exactly 1 argument"},
	} {
		if res := b.run(append(g, tc.args...)...); res.code != 125 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("berth %s: exit %d, stderr %q; want 125 and %q", strings.Join(tc.args, " "), res.code, res.stderr, tc.want)
		}
	}
}

// --log-driver none: no log annotation, docker's error.
func berthLogsNoLog(t *testing.T, c *ctrd) {
	ctr, _ := newLogContainer(t, c, false, nil, nil, oci.WithProcessArgs("true"))
	b, g := berthOn(t, c)
	res := b.run(append(g, "logs", ctr.ID())...)
	if res.code != 125 || !strings.Contains(res.stderr, "configured logging driver does not support reading") {
		t.Errorf("logs of a container without a log: exit %d, stderr %q", res.code, res.stderr)
	}
}

// logs -f streams a line printed after it started, and ends when the
// container exits (no restart policy).
func berthLogsFollow(t *testing.T, c *ctrd) {
	ctr, _ := newLogContainer(t, c, true, nil, nil,
		oci.WithProcessArgs("sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after; exit 3"))
	task := startTask(t, c, ctr)
	b, g := berthOn(t, c)
	out, done := berthAsync(t, b, append(g, "logs", "-f", ctr.ID())...)
	waitOutput(t, out, "before\n")
	execIn(t, c, ctr, task, "go", "touch", "/tmp/go")
	waitOutput(t, out, "before\nafter\n")
	if code := waitExit(t, done, "logs -f after the container exited"); code != 0 {
		t.Errorf("logs -f: exit %d", code)
	}
	// Of a stopped container, -f shows the log and returns.
	res := b.run(append(g, "logs", "-f", "--tail", "1", ctr.ID())...)
	if res.code != 0 || res.stdout != "after\n" {
		t.Errorf("logs -f of a stopped container: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

// logs -f of a container with a restart policy follows it into its next
// task (the restart monitor's delete, new task, start; done here by the
// test), and ends when it stops for good (berth stop marks it first).
func berthLogsFollowRestarts(t *testing.T, c *ctrd) {
	ctr, path := newLogContainer(t, c, true, nil, map[string]string{"berth/restart": "always"},
		oci.WithProcessArgs("sh", "-c", "echo run; exec sleep 300"))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(path)
			t.Logf("log: %s", b)
		}
	})
	task := startTask(t, c, ctr)
	b, g := berthOn(t, c)
	out, done := berthAsync(t, b, append(g, "logs", "-f", ctr.ID())...)
	want := "run\n"
	waitOutput(t, out, want)
	// Two restarts: a follower that ended at an exit would miss the line
	// of the task after the next.
	for range 2 {
		killAndDelete(t, c, task)
		task = startTask(t, c, ctr)
		want += "run\n"
		waitOutput(t, out, want)
	}
	select {
	case code := <-done:
		t.Fatalf("logs -f ended (exit %d) while the container runs", code)
	default:
	}
	_, ctx := c.client()
	if _, err := ctr.SetLabels(ctx, map[string]string{"berth/stopped-by-user": "true"}); err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(context.WithoutCancel(ctx), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, done, "logs -f after berth stop"); code != 0 {
		t.Errorf("logs -f: exit %d", code)
	}
}
