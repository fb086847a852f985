package containers

import (
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/berthrt/berth/restart"
)

// TestState checks a container's state from its task, else from the
// labels of its last run, and ps's STATUS column for it.
func TestState(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	started := now.Add(-3 * time.Second).Format(time.RFC3339Nano)
	finished := now.Add(-5 * time.Second)
	tests := []struct {
		name         string
		labels       map[string]string
		task         *task.Process
		status, line string
		exit, pid    int
	}{
		{"never started", nil, nil, "created", "Created", 0, 0},
		{"running", map[string]string{restart.LabelStartedAt: started}, &task.Process{Status: task.Status_RUNNING, Pid: 42}, "running", "Up 3 seconds", 0, 42},
		{"paused", map[string]string{restart.LabelStartedAt: started}, &task.Process{Status: task.Status_PAUSED, Pid: 42}, "paused", "Up 3 seconds (Paused)", 0, 42},
		{"exited task", map[string]string{restart.LabelStartedAt: started}, &task.Process{Status: task.Status_STOPPED, ExitStatus: 3, ExitedAt: timestamppb.New(finished)},
			"exited", "Exited (3) 5 seconds ago", 3, 0},
		{"task gone, exit in the labels", map[string]string{restart.LabelExitCode: "137", restart.LabelFinishedAt: finished.Format(time.RFC3339Nano)}, nil,
			"exited", "Exited (137) 5 seconds ago", 137, 0},
		{"created task", nil, &task.Process{Status: task.Status_CREATED}, "created", "Created", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stateOf(containers.Container{Labels: tc.labels}, tc.task)
			if s.Status != tc.status || s.ExitCode != tc.exit || s.Pid != tc.pid || s.Running != (tc.pid != 0) {
				t.Errorf("state %+v, want %s exit %d pid %d", s, tc.status, tc.exit, tc.pid)
			}
			if line := statusLine(s, now); line != tc.line {
				t.Errorf("status %q, want %q", line, tc.line)
			}
		})
	}
}

// TestFilters checks ps --filter: values of one key are alternatives,
// keys must all match.
func TestFilters(t *testing.T) {
	web := containers.Container{ID: "abc123", Labels: map[string]string{LabelName: "web-1", "app": "web", "tier": ""}}
	running, exited := State{Status: "running", Running: true}, State{Status: "exited", ExitCode: 2}
	tests := []struct {
		filters []string
		state   State
		keep    bool
	}{
		{nil, running, true},
		{[]string{"status=running"}, running, true},
		{[]string{"status=exited"}, running, false},
		{[]string{"status=exited", "status=running"}, running, true},
		{[]string{"name=web"}, running, true},
		{[]string{"name=^web$"}, running, false},
		{[]string{"id=abc"}, running, true},
		{[]string{"id=bc"}, running, false},
		{[]string{"label=app"}, running, true},
		{[]string{"label=app=web"}, running, true},
		{[]string{"label=app=db"}, running, false},
		{[]string{"label=tier="}, running, true},
		{[]string{"label=app", "label=missing"}, running, false},
		{[]string{"exited=2"}, exited, true},
		{[]string{"exited=0"}, exited, false},
		{[]string{"exited=2"}, running, false},
		{[]string{"name=web", "status=exited"}, running, false},
	}
	for _, tc := range tests {
		f, err := parseFilters(tc.filters)
		if err != nil {
			t.Fatalf("%v: %v", tc.filters, err)
		}
		if got := f.keep(web, tc.state); got != tc.keep {
			t.Errorf("filters %v on a %s container: keep %v, want %v", tc.filters, tc.state.Status, got, tc.keep)
		}
	}
	for _, bad := range []string{"status=sleeping", "colour=red", "name=(", "exited=x", "status"} {
		if _, err := parseFilters([]string{bad}); err == nil || !strings.Contains(err.Error(), "invalid --filter") {
			t.Errorf("--filter %s: %v, want an error naming --filter", bad, err)
		}
	}
}

func TestEllipsis(t *testing.T) {
	for in, want := range map[string]string{"short": "short", "sh -c 'while :; do sleep 1; done'": "sh -c 'while :; do …", "": ""} {
		if got := Ellipsis(in, 20); got != want {
			t.Errorf("Ellipsis(%q) = %q, want %q", in, got, want)
		}
	}
}
