package integration

// A real client drives the runtime: containerd (built by `make` from the
// pinned module), its ctr, and containerd's own runc shim running
// berth-runtime as its runc binary. Set CTR_RUNTIME_BINARY=runc to run the
// same steps against runc, which proves the harness; CTR_SHOW_CALLS=1 logs
// every runtime call the shim made.

import (
	"strings"
	"testing"
	"time"
)

func TestContainerdRuncShim(t *testing.T) {
	c := startContainerd(t)
	t.Logf("containerd's runc shim drives %s", c.realRuntime)

	t.Run("RunEcho", func(t *testing.T) {
		c := c.sub(t)
		id := c.container(t)
		r := c.ctr(c.runArgs([]string{"--rm"}, id, "echo", "hi")...)
		if r.code != 0 || r.stdout != "hi\n" {
			t.Fatalf("ctr run --rm %s echo hi: exit %d, stdout %q, stderr %q%s", id, r.code, r.stdout, r.stderr, c.diagnostics())
		}
		if tasks := c.tasks(); len(tasks) != 0 {
			t.Errorf("after ctr run --rm, ctr task ls shows %v, want none", tasks)
		}
		if out := c.mustCtr("container", "ls", "-q"); strings.Contains(out, id) {
			t.Errorf("after ctr run --rm, container %s is still listed: %q", id, out)
		}
	})

	t.Run("ExitCode", func(t *testing.T) {
		c := c.sub(t)
		id := c.container(t)
		r := c.ctr(c.runArgs([]string{"--rm"}, id, "sh", "-c", "exit 3")...)
		if r.code != 3 {
			t.Fatalf("ctr run %s sh -c 'exit 3': exit %d, want 3; stderr %q%s", id, r.code, r.stderr, c.diagnostics())
		}
	})

	t.Run("RunTTY", func(t *testing.T) {
		c := c.sub(t)
		id := c.container(t)
		p := c.ctrOnPty(t, c.runArgs([]string{"--rm", "-t"}, id, "sh")...)
		n := p.waitFor("# ", 0, 30*time.Second)
		// The shell's answer, not the echo of the typed line: only sh
		// computes $((1+2)).
		p.typeLine("echo typed-$((1+2))")
		p.waitFor("typed-3", n, 10*time.Second)
		p.typeLine("exit")
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("ctr run -t: exit %d; terminal: %q%s", code, p.output(), c.diagnostics())
		}
		if _, ok := c.tasks()[id]; ok {
			t.Errorf("after ctr run -t --rm, task %s is still listed", id)
		}
	})

	t.Run("ExecTTY", func(t *testing.T) {
		c := c.sub(t)
		id := c.runDetached(t)
		p := c.ctrOnPty(t, "task", "exec", "-t", "--fifo-dir", c.FifoDir, "--exec-id", "e1", id, "sh")
		n := p.waitFor("# ", 0, 30*time.Second)
		p.typeLine("echo typed-$((1+2))")
		n = p.waitFor("typed-3", n, 10*time.Second)
		p.typeLine("exit 5")
		if code := p.wait(30 * time.Second); code != 5 {
			t.Fatalf("ctr task exec -t ... sh; exit 5: exit %d, want 5; terminal: %q%s", code, p.output(), c.diagnostics())
		}
		if st := c.tasks()[id]; st != "RUNNING" {
			t.Errorf("after the exec exited, task %s is %q, want RUNNING", id, st)
		}
	})

	t.Run("PauseResume", func(t *testing.T) {
		c := c.sub(t)
		id := c.runDetached(t)
		c.mustCtr("task", "pause", id)
		if st := c.tasks()[id]; st != "PAUSED" {
			t.Fatalf("after ctr task pause: status %q, want PAUSED%s", st, c.diagnostics())
		}
		c.mustCtr("task", "resume", id)
		if st := c.tasks()[id]; st != "RUNNING" {
			t.Fatalf("after ctr task resume: status %q, want RUNNING%s", st, c.diagnostics())
		}
	})

	t.Run("KillExitCode", func(t *testing.T) {
		c := c.sub(t)
		id := c.container(t)
		c.expectKilledRun(t, id, c.runArgs([]string{"--rm"}, id, "sleep", "300"))
		if _, ok := c.tasks()[id]; ok {
			t.Errorf("after the killed ctr run --rm, task %s is still listed", id)
		}
	})

	t.Run("ForceDeleteStopped", func(t *testing.T) {
		// What `ctr task delete --force` (the client's WithProcessKill) does
		// to a task that already stopped: SIGKILL to all its processes again,
		// which runc answers with success, then delete.
		c := c.sub(t)
		id := c.runDetached(t)
		c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
		c.waitTask(id, "STOPPED")
		c.mustCtr("task", "delete", "--force", id)
		if _, ok := c.tasks()[id]; ok {
			t.Errorf("after ctr task delete --force, task %s is still listed", id)
		}
	})

	t.Run("DeleteCreated", func(t *testing.T) { ctrdDeleteCreated(t, c.sub(t)) })

	t.Run("RunMissingProgram", func(t *testing.T) {
		// The runtime's error reaches the user: the shim reads it from the
		// runtime's --log (JSON lines) and ctr prints it.
		c := c.sub(t)
		id := c.container(t)
		r := c.ctr(c.runArgs([]string{"--rm"}, id, "/no/such/program")...)
		if r.code == 0 || !strings.Contains(r.stderr, "/no/such/program") {
			t.Fatalf("ctr run of a missing program: exit %d, stderr %q; want a failure naming the program%s", r.code, r.stderr, c.diagnostics())
		}
		if _, ok := c.tasks()[id]; ok {
			t.Errorf("after a failed ctr run --rm, task %s is still listed", id)
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		c := c.sub(t)
		c.checkMetricsPids(c.runDetached(t))
	})

	t.Run("Ps", func(t *testing.T) {
		c := c.sub(t)
		id := c.runDetached(t)
		var pid string
		for _, line := range strings.Split(c.mustCtr("task", "ls"), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == id {
				pid = f[1]
			}
		}
		out := c.mustCtr("task", "ps", id)
		if pid == "" || !strings.Contains(out, pid) {
			t.Fatalf("ctr task ps %s does not list the task's pid %q:\n%s%s", id, pid, out, c.diagnostics())
		}
	})

	t.Run("NothingLeft", func(t *testing.T) {
		c := c.sub(t)
		if tasks := c.tasks(); len(tasks) != 0 {
			t.Errorf("tasks left after the tests cleaned up: %v", tasks)
		}
		if out := strings.TrimSpace(c.mustCtr("container", "ls", "-q")); out != "" {
			t.Errorf("containers left after the tests cleaned up: %q", out)
		}
	})
}

// runDetached runs `sleep 300` as a detached task (no IO) and waits until it
// runs; the test's cleanup kills and deletes it.
func (c *ctrd) runDetached(t *testing.T) string {
	t.Helper()
	id := c.container(t)
	c.mustCtr(c.runArgs([]string{"--detach", "--null-io"}, id, "sleep", "300")...)
	c.waitTask(id, "RUNNING")
	return id
}
