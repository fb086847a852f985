package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// healthView is inspect's .State.Health.
type healthView struct {
	Status        string
	FailingStreak int
	Log           []struct {
		Start, End time.Time
		ExitCode   int
		Output     string
	}
}

// health is c's .State.Health; nil when inspect shows none.
func (b *berthCLI) health(c string) *healthView {
	b.t.Helper()
	out := b.mustRun("inspect", "--format", "{{json .State.Health}}", c).stdout
	var h *healthView
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		b.t.Fatalf("inspect %s: .State.Health %q: %v", c, out, err)
	}
	return h
}

// waitHealth polls inspect (a berth process per call, none in between)
// until cond holds for c's health, failing after d.
func (b *berthCLI) waitHealth(c string, d time.Duration, what string, cond func(*healthView) bool) *healthView {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := b.health(c)
		if h != nil && cond(h) {
			return h
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not %s within %v: %+v", c, what, d, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// psStatus is c's STATUS column in berth ps.
func (b *berthCLI) psStatus(c string) string {
	b.t.Helper()
	return strings.TrimSpace(b.mustRun("ps", "-a", "--filter", "name=^"+c+"$", "--format", "{{.Status}}").stdout)
}

// lastEnd is when the newest result of h ended.
func lastEnd(h *healthView) time.Time {
	if len(h.Log) == 0 {
		return time.Time{}
	}
	return h.Log[len(h.Log)-1].End
}

// TestBerthHealthcheck runs containers with health checks, from an image's
// HEALTHCHECK (built by berth build) and from the --health-* flags, and
// checks what a user sees: inspect's .State.Health and .Config.Healthcheck,
// ps's "(healthy)", docker's rules for retries, the start period and the
// timeout, and --no-healthcheck. The checks run in berth's containerd, so
// they progress between two berth commands, and go on across a containerd
// restart; they stop with the container, and start again with it, leaving
// no fifos behind.
func TestBerthHealthcheck(t *testing.T) {
	b, dir := newBerthWithBusybox(t)
	res := b.runInput(strings.NewReader("FROM "+busyboxRef+"\nHEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD [\"/bin/sh\", \"-c\", \"echo not ok; exit 1\"]\n"),
		"build", "-q", "-t", "berthtest/sick", "-")
	if res.code != 0 {
		t.Fatalf("build: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	b.mustRun("run", "-d", "--name", "sick", "berthtest/sick", "sleep", "300")
	b.mustRun("run", "-d", "--name", "fine", "--health-cmd", "echo fine", "--health-interval", "1s", busyboxRef, "sleep", "300")
	b.mustRun("run", "-d", "--name", "slow-start", "--health-cmd", "exit 3", "--health-interval", "1s", "--health-start-period", "1h", "--health-start-interval", "500ms", busyboxRef, "sleep", "300")
	b.mustRun("run", "-d", "--name", "hung", "--health-cmd", "sleep 60", "--health-interval", "1s", "--health-timeout", "300ms", "--health-retries", "1", busyboxRef, "sleep", "300")
	b.mustRun("run", "-d", "--name", "unchecked", "--no-healthcheck", "berthtest/sick", "sleep", "300")

	// The image's check, failing: unhealthy at the second failure.
	h := b.waitHealth("sick", 20*time.Second, "unhealthy", func(h *healthView) bool { return h.Status == "unhealthy" })
	if h.FailingStreak < 2 || len(h.Log) < 2 || h.Log[0].ExitCode != 1 || h.Log[0].Output != "not ok\n" || !h.Log[0].End.After(h.Log[0].Start) {
		t.Errorf("sick: %+v, want a failing streak of at least 2 and results of exit 1, output \"not ok\\n\"", h)
	}
	if s := b.psStatus("sick"); !strings.HasPrefix(s, "Up ") || !strings.HasSuffix(s, " (unhealthy)") {
		t.Errorf("ps STATUS of sick: %q, want Up … (unhealthy)", s)
	}

	// The flags' check, passing.
	h = b.waitHealth("fine", 20*time.Second, "healthy", func(h *healthView) bool { return h.Status == "healthy" })
	if h.FailingStreak != 0 || h.Log[len(h.Log)-1].ExitCode != 0 || h.Log[len(h.Log)-1].Output != "fine\n" {
		t.Errorf("fine: %+v", h)
	}
	if s := b.psStatus("fine"); !strings.HasSuffix(s, " (healthy)") {
		t.Errorf("ps STATUS of fine: %q, want Up … (healthy)", s)
	}
	cfg := b.mustRun("inspect", "--format", "{{json .Config.Healthcheck}}", "fine").stdout
	if want := `{"Test":["CMD-SHELL","echo fine"],"Interval":1000000000}` + "\n"; cfg != want {
		t.Errorf(".Config.Healthcheck of fine: %q, want %q", cfg, want)
	}
	if out := b.mustRun("ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout; out != "fine\n" {
		t.Errorf("ps --filter health=healthy: %q, want fine", out)
	}

	// Failures within the start period do not count: still starting.
	h = b.waitHealth("slow-start", 20*time.Second, "checked twice", func(h *healthView) bool { return len(h.Log) >= 2 })
	if h.Status != "starting" || h.FailingStreak != 0 || h.Log[0].ExitCode != 3 {
		t.Errorf("slow-start: %+v, want starting with no failing streak", h)
	}
	if s := b.psStatus("slow-start"); !strings.HasSuffix(s, " (health: starting)") {
		t.Errorf("ps STATUS of slow-start: %q, want Up … (health: starting)", s)
	}

	// A check that outlives its timeout is killed and fails.
	h = b.waitHealth("hung", 20*time.Second, "unhealthy", func(h *healthView) bool { return h.Status == "unhealthy" })
	if r := h.Log[0]; r.ExitCode != -1 || r.Output != "Health check exceeded timeout (300ms)" || r.End.Sub(r.Start) > 10*time.Second {
		t.Errorf("hung: first result %+v, want exit -1 after the timeout", r)
	}
	b.waitHealth("hung", 10*time.Second, "timed out thrice", func(h *healthView) bool { return h.FailingStreak >= 3 })
	if ps := b.mustRun("exec", "hung", "ps", "-o", "args").stdout; strings.Count(ps, "sleep 60") > 1 {
		t.Errorf("checks killed at their timeout live on in hung:\n%s", ps)
	}

	// --no-healthcheck: no Health, and NONE in the config.
	if h := b.health("unchecked"); h != nil {
		t.Errorf("--no-healthcheck: .State.Health %+v, want none", h)
	}
	if cfg := b.mustRun("inspect", "--format", "{{json .Config.Healthcheck.Test}}", "unchecked").stdout; cfg != `["NONE"]`+"\n" {
		t.Errorf("--no-healthcheck: .Config.Healthcheck.Test %q", cfg)
	}
	if s := b.psStatus("unchecked"); strings.Contains(s, "(") {
		t.Errorf("ps STATUS of unchecked: %q, want no health", s)
	}

	// No berth runs between two inspects: the checks went on meanwhile.
	before := lastEnd(b.health("fine"))
	b.waitHealth("fine", 10*time.Second, "checked again", func(h *healthView) bool { return lastEnd(h).After(before) })

	// And across a restart of containerd: its monitor's reconcile takes
	// the running containers' checks up again, from their status.
	b.mustRun("system", "stop")
	before = lastEnd(b.health("fine")) // starts containerd again
	h = b.waitHealth("fine", 15*time.Second, "checked after containerd's restart", func(h *healthView) bool { return lastEnd(h).After(before) })
	if h.Status != "healthy" {
		t.Errorf("fine after containerd's restart: %+v", h)
	}

	// Stopped: unhealthy, as docker shows it, and no more checks.
	b.mustRun("rm", "-f", "sick", "slow-start", "hung")
	b.mustRun("stop", "-t", "0", "fine")
	stopped := b.health("fine")
	if stopped.Status != "unhealthy" {
		t.Errorf("fine, stopped: %+v, want unhealthy", stopped)
	}
	if s := b.psStatus("fine"); !strings.HasPrefix(s, "Exited ") {
		t.Errorf("ps STATUS of fine, stopped: %q", s)
	}
	time.Sleep(1500 * time.Millisecond) // more than an interval
	if h := b.health("fine"); !lastEnd(h).Equal(lastEnd(stopped)) {
		t.Errorf("fine was checked after it stopped: %+v", h)
	}
	fifos := filepath.Join(dir, "st", "io.containerd.monitor.container.v1.berth-restart", "health")
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := os.ReadDir(fifos)
		if err != nil {
			t.Fatalf("the checks' fifo directory: %v", err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fifos left after the containers stopped: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Started again: starting, then checked again (the log goes on).
	b.mustRun("start", "fine")
	if s := b.psStatus("fine"); !strings.HasSuffix(s, " (health: starting)") && !strings.HasSuffix(s, " (healthy)") {
		t.Errorf("ps STATUS of fine, started again: %q", s)
	}
	h = b.waitHealth("fine", 15*time.Second, "healthy again", func(h *healthView) bool {
		return h.Status == "healthy" && lastEnd(h).After(lastEnd(stopped))
	})
	if h.FailingStreak != 0 {
		t.Errorf("fine, started again: %+v", h)
	}

	// Paused: no checks, unhealthy (docker's word for a container whose
	// checks stopped); resumed: checked again.
	b.mustRun("pause", "fine")
	if h := b.health("fine"); h.Status != "unhealthy" {
		t.Errorf("fine, paused: %+v, want unhealthy", h)
	}
	if s := b.psStatus("fine"); !strings.HasSuffix(s, " (Paused)") {
		t.Errorf("ps STATUS of fine, paused: %q", s)
	}
	paused := b.health("fine")
	b.mustRun("unpause", "fine")
	b.waitHealth("fine", 15*time.Second, "healthy after unpause", func(h *healthView) bool {
		return h.Status == "healthy" && lastEnd(h).After(lastEnd(paused))
	})
}
