package containers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	tasktypes "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/docker/go-units"

	"github.com/berthrt/berth/health"
	"github.com/berthrt/berth/restart"
)

// State is docker's container State.
type State struct {
	Status     string // created, running, paused, restarting, exited
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
	// Health is the health check's status; nil without a check, as in
	// docker.
	Health *health.Health `json:",omitempty"`
}

// zeroTime is docker's time for "never".
const zeroTime = "0001-01-01T00:00:00Z"

// tasks gives the task of every container that has one, in one call.
func tasks(ctx context.Context, client *containerd.Client) (map[string]*task.Process, error) {
	resp, err := client.TaskService().List(ctx, &tasktypes.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	byID := make(map[string]*task.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		byID[t.ID] = t // the init process: ID is the container's
	}
	return byID, nil
}

// stateOf is a container's state: its task's when it has one, else what
// its labels recorded of its last run.
func stateOf(info containers.Container, t *task.Process) State {
	s := taskState(info, t)
	task := health.NoTask
	switch {
	case s.Paused:
		task = health.Paused
	case s.Running:
		task = health.Running
	}
	s.Health = health.View(info, task, uint32(s.Pid))
	return s
}

// taskState is stateOf less the health check's status.
func taskState(info containers.Container, t *task.Process) State {
	l := info.Labels
	s := State{StartedAt: labelTime(l[restart.LabelStartedAt]), FinishedAt: labelTime(l[restart.LabelFinishedAt]), OOMKilled: l[restart.LabelOOMKilled] == "true"}
	if t == nil {
		if code, err := strconv.Atoi(l[restart.LabelExitCode]); err == nil {
			s.Status, s.ExitCode = "exited", code
		} else {
			s.Status = "created"
		}
		return s
	}
	switch t.Status {
	case task.Status_RUNNING:
		s.Status, s.Running, s.Pid = "running", true, int(t.Pid)
		s.FinishedAt = zeroTime
	case task.Status_PAUSED, task.Status_PAUSING:
		s.Status, s.Running, s.Paused, s.Pid = "paused", true, true, int(t.Pid)
		s.FinishedAt = zeroTime
	case task.Status_STOPPED:
		s.Status, s.ExitCode = "exited", int(t.ExitStatus)
		if t.ExitedAt != nil {
			s.FinishedAt = t.ExitedAt.AsTime().UTC().Format(time.RFC3339Nano)
		}
	default:
		s.Status = "created"
	}
	return s
}

func labelTime(v string) string {
	if v == "" {
		return zeroTime
	}
	return v
}

// statusLine is docker's STATUS column: "Up 3 seconds", "Up 3 seconds
// (Paused)", "Up 3 seconds (healthy)", "Exited (0) 5 seconds ago",
// "Created".
func statusLine(s State, now time.Time) string {
	since := func(ts string) string {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || ts == zeroTime {
			return "Less than a second"
		}
		return units.HumanDuration(now.Sub(t))
	}
	switch s.Status {
	case "running":
		if s.Health != nil {
			return "Up " + since(s.StartedAt) + " (" + s.Health.String() + ")"
		}
		return "Up " + since(s.StartedAt)
	case "paused":
		return "Up " + since(s.StartedAt) + " (Paused)"
	case "exited":
		if s.FinishedAt == zeroTime {
			return fmt.Sprintf("Exited (%d)", s.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, since(s.FinishedAt))
	}
	return "Created"
}
