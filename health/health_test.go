package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/typeurl/v2"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check Check
		want  string // "" : no check runs
	}{
		{"CMD", Check{Config: Config{Test: []string{"CMD", "test", "-f", "/ok"}}}, "test -f /ok"},
		{"CMD-SHELL", Check{Config: Config{Test: []string{"CMD-SHELL", "test -f /ok || exit 1"}}}, "/bin/sh -c test -f /ok || exit 1"},
		{"CMD-SHELL in the image's SHELL", Check{Config: Config{Test: []string{"CMD-SHELL", "true"}}, Shell: []string{"/bin/bash", "-ec"}}, "/bin/bash -ec true"},
		{"NONE", Check{Config: Config{Test: []string{"NONE"}}}, ""},
		{"inherit, nothing to inherit", Check{}, ""},
		{"CMD without a command", Check{Config: Config{Test: []string{"CMD"}}}, ""},
		{"unknown type", Check{Config: Config{Test: []string{"HTTP", "/"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.check.Command(), " "); got != tc.want {
				t.Errorf("Command = %q, want %q", got, tc.want)
			}
			if tc.check.Enabled() != (tc.want != "") {
				t.Errorf("Enabled = %v", tc.check.Enabled())
			}
		})
	}
}

func TestMerge(t *testing.T) {
	image := &Config{Test: []string{"CMD", "true"}, Interval: time.Minute, Timeout: time.Second, StartPeriod: time.Hour, StartInterval: 2 * time.Second, Retries: 4}
	got := Merge(image, &Config{Interval: time.Second, Retries: 1})
	want := Config{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: time.Second, StartPeriod: time.Hour, StartInterval: 2 * time.Second, Retries: 1}
	if got.Interval != want.Interval || got.Timeout != want.Timeout || got.StartPeriod != want.StartPeriod ||
		got.StartInterval != want.StartInterval || got.Retries != want.Retries || strings.Join(got.Test, " ") != "CMD true" {
		t.Errorf("Merge = %+v, want %+v", got, want)
	}
	if Merge(nil, nil) != nil || Merge(image, nil).Interval != time.Minute || Merge(nil, &Config{Retries: 2}).Retries != 2 {
		t.Error("Merge with a side missing")
	}
	if got := Merge(image, &Config{Test: []string{"NONE"}}); got.Enabled() {
		t.Errorf("--no-healthcheck over an image's check: %+v runs", got)
	}
}

func TestValidate(t *testing.T) {
	for cfg, want := range map[*Config]string{
		nil:                                      "",
		{Interval: time.Millisecond}:             "",
		{Interval: time.Microsecond}:             "Interval in Healthcheck cannot be less than 1ms",
		{StartInterval: time.Nanosecond}:         "StartInterval in Healthcheck cannot be less than 1ms",
		{Retries: -1}:                            "Retries in Healthcheck cannot be negative",
		{Test: []string{"CMD", "x"}, Timeout: 0}: "",
	} {
		err := Validate(cfg)
		if (err == nil) != (want == "") || (err != nil && err.Error() != want) {
			t.Errorf("Validate(%+v) = %v, want %q", cfg, err, want)
		}
	}
}

// TestView checks the Health that ps and inspect show, from the stored
// status and the task.
func TestView(t *testing.T) {
	check := mustAny(t, &Check{Config: Config{Test: []string{"CMD", "true"}}})
	result := Result{ExitCode: 1, Output: "no"}
	stored := mustAny(t, &State{Health: Health{Status: Healthy, FailingStreak: 1, Log: []Result{result}}, Pid: 42})
	for _, tc := range []struct {
		name   string
		ext    map[string]typeurl.Any
		task   TaskState
		pid    uint32
		want   string // Status, "" for no Health
		streak int
		log    int
	}{
		{name: "no check", ext: nil, task: Running, pid: 42},
		{name: "NONE", ext: map[string]typeurl.Any{ExtensionCheck: mustAny(t, &Check{Config: Config{Test: []string{"NONE"}}})}, task: Running, pid: 42},
		{name: "created, never run", ext: map[string]typeurl.Any{ExtensionCheck: check}, task: NoTask},
		{name: "running, before its prober wrote", ext: map[string]typeurl.Any{ExtensionCheck: check}, task: Running, pid: 42, want: Starting},
		{name: "running", ext: map[string]typeurl.Any{ExtensionCheck: check, ExtensionState: stored}, task: Running, pid: 42, want: Healthy, streak: 1, log: 1},
		{name: "restarted: the last task's status", ext: map[string]typeurl.Any{ExtensionCheck: check, ExtensionState: stored}, task: Running, pid: 43, want: Starting, log: 1},
		{name: "paused", ext: map[string]typeurl.Any{ExtensionCheck: check, ExtensionState: stored}, task: Paused, pid: 42, want: Unhealthy, streak: 1, log: 1},
		{name: "exited", ext: map[string]typeurl.Any{ExtensionCheck: check, ExtensionState: stored}, task: NoTask, want: Unhealthy, streak: 1, log: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := View(containers.Container{ID: "c", Extensions: tc.ext}, tc.task, tc.pid)
			if tc.want == "" {
				if h != nil {
					t.Fatalf("View = %+v, want none", h)
				}
				return
			}
			if h == nil || h.Status != tc.want || h.FailingStreak != tc.streak || len(h.Log) != tc.log {
				t.Fatalf("View = %+v, want %s streak %d with %d results", h, tc.want, tc.streak, tc.log)
			}
		})
	}
	if s := (&Health{Status: Starting}).String(); s != "health: starting" {
		t.Errorf("starting reads %q", s)
	}
}

func mustAny(t *testing.T, v any) typeurl.Any {
	t.Helper()
	a, err := typeurl.MarshalAny(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestLimitedBuffer checks docker's cut of a check's output: the first
// 4096 bytes, then "...".
func TestLimitedBuffer(t *testing.T) {
	b := &limitedBuffer{}
	b.Write([]byte("ok\n"))
	if b.String() != "ok\n" {
		t.Errorf("short output %q", b.String())
	}
	b = &limitedBuffer{}
	for range 3 {
		if n, err := b.Write([]byte(strings.Repeat("x", 2000))); n != 2000 || err != nil {
			t.Fatalf("Write = %d, %v: the writer must take everything", n, err)
		}
	}
	if got := b.String(); len(got) != MaxOutputLen+3 || !strings.HasSuffix(got, "x...") {
		t.Errorf("long output: %d bytes ending %q", len(got), got[len(got)-5:])
	}
}

// TestStoppedProberWritesNothing checks the guard that keeps a stopped
// prober, whose last check ends after Stop, from overwriting the status
// of the task that started next: it never reaches containerd.
func TestStoppedProberWritesNothing(t *testing.T) {
	ps := &Probers{slots: map[Key]*slot{}} // no client: a write would panic
	ctx, cancel := context.WithCancel(t.Context())
	p := &prober{key: Key{"ns", "c"}, pid: 7, cancel: cancel}
	p.slot = &slot{current: p}
	ps.slots[p.key] = p.slot
	ps.Stop(p.key)
	if ctx.Err() == nil {
		t.Error("Stop did not end the prober's context")
	}
	if err := ps.write(t.Context(), p, State{Pid: 7}); err != errStopped {
		t.Fatalf("write after Stop = %v, want errStopped", err)
	}
	if len(ps.slots) != 0 {
		t.Errorf("Stop left the slot: %v", ps.slots)
	}
}
