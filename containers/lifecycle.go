package containers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/moby/sys/signal"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/restart"
)

// DefaultStopTimeout is docker's grace period between the stop signal and
// SIGKILL, in seconds.
const DefaultStopTimeout = 10

// ErrNotRunning is wrapped by the errors for a container that must be
// running and is not.
var ErrNotRunning = errors.New("container is not running")

// runningTask is a container's task when it is running (or paused).
func runningTask(ctx context.Context, c containerd.Container) (containerd.Task, bool, error) {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("container %s: %w", c.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("container %s: %w", c.ID(), err)
	}
	return task, st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing, nil
}

// StopOptions say how to stop a container.
type StopOptions struct {
	// Timeout is seconds to wait after the stop signal before SIGKILL;
	// nil: the container's --stop-timeout, else DefaultStopTimeout.
	Timeout *int
}

// Stop stops container c as `docker stop` does: it marks it stopped by
// the user (so no restart policy brings it back), sends its stop signal
// (--stop-signal, the image's STOPSIGNAL, else SIGTERM), and SIGKILL after
// the timeout. A container that is not running is left as it is.
func Stop(ctx context.Context, client *containerd.Client, c containerd.Container, opts StopOptions) error {
	task, running, err := runningTask(ctx, c)
	if err != nil || !running {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	timeout := DefaultStopTimeout
	var rec stored
	if readStored(info, &rec) == nil && rec.Config.StopTimeout != nil {
		timeout = *rec.Config.StopTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	sig, err := containerd.GetStopSignal(ctx, c, unix.SIGTERM)
	if err != nil {
		return fmt.Errorf("container %s: its stop signal: %w", c.ID(), err)
	}
	if err := restart.MarkStoppedByUser(ctx, c); err != nil {
		return err
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	if st, _ := task.Status(ctx); st.Status == containerd.Paused {
		// A frozen process would not act on the stop signal until thawed.
		if err := task.Resume(ctx); err != nil {
			return fmt.Errorf("container %s: resume it to stop it: %w", c.ID(), err)
		}
	}
	if timeout >= 0 {
		if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: send %v: %w", c.ID(), sig, err)
		}
		select {
		case st := <-exitC:
			return settleStopped(ctx, c, info, task, st)
		case <-time.After(time.Duration(timeout) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, unix.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: send SIGKILL: %w", c.ID(), err)
	}
	select {
	case st := <-exitC:
		return settleStopped(ctx, c, info, task, st)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settleStopped records the exit of a stopped container and deletes its
// task, unless a restart policy's monitor owns the exited task.
func settleStopped(ctx context.Context, c containerd.Container, info containers.Container, task containerd.Task, st containerd.ExitStatus) error {
	// The monitor takes the networks down at the exit too, but stop
	// returns when the container holds none.
	if err := cni.DownIfStopped(ctx, c); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	if keepsExitedTask(info.Labels) {
		return nil
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: delete its exited task: %w", c.ID(), err)
	}
	return recordExit(ctx, c, st.ExitCode(), st.ExitTime(), false)
}

// keepsExitedTask says whether a container's exited task is left for the
// restart monitor: it has a restart policy, which the monitor applies.
func keepsExitedTask(labels map[string]string) bool {
	p, err := restart.PolicyOf(labels)
	return err != nil || p.Mode != restart.No
}

// Kill sends sig (a name such as KILL or SIGHUP, or a number; empty:
// SIGKILL) to container c's init, marking it stopped by the user first.
func Kill(ctx context.Context, c containerd.Container, sig string) error {
	if sig == "" {
		sig = "KILL"
	}
	s, err := signal.ParseSignal(sig)
	if err != nil {
		return fmt.Errorf("invalid signal %q: %w", sig, errdefs.ErrInvalidArgument)
	}
	task, running, err := runningTask(ctx, c)
	if err != nil {
		return err
	}
	if !running {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", c.ID(), c.ID(), ErrNotRunning)
	}
	if err := restart.MarkStoppedByUser(ctx, c); err != nil {
		return err
	}
	if err := task.Kill(ctx, s); err != nil {
		return fmt.Errorf("container %s: send %v: %w", c.ID(), s, err)
	}
	return nil
}

// Wait blocks until container c stops and gives its exit code: the
// running task's, else the one recorded of its last run; a container that
// never ran is waited for until it has.
func Wait(ctx context.Context, client *containerd.Client, c containerd.Container) (int, error) {
	// Subscribed first, so that an exit between the look and the wait
	// is not missed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exits, errs := client.EventService().Subscribe(ctx, `topic=="/tasks/exit"`)
	task, err := c.Task(ctx, nil)
	if err == nil {
		exitC, err := task.Wait(ctx)
		if err == nil {
			select {
			case st := <-exitC:
				return int(st.ExitCode()), st.Error()
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if !errdefs.IsNotFound(err) {
			return 0, fmt.Errorf("wait for container %s: %w", c.ID(), err)
		}
	} else if !errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("wait for container %s: %w", c.ID(), err)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.ID(), err)
	}
	if code, err := strconv.Atoi(labels[restart.LabelExitCode]); err == nil {
		return code, nil
	}
	for {
		select {
		case e := <-exits:
			v, err := typeurl.UnmarshalAny(e.Event)
			if exit, ok := v.(*eventstypes.TaskExit); err == nil && ok && exit.ContainerID == c.ID() && exit.ID == c.ID() {
				return int(exit.ExitStatus), nil
			}
		case err := <-errs:
			return 0, fmt.Errorf("wait for container %s: %w", c.ID(), err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Pause freezes container c's processes.
func Pause(ctx context.Context, c containerd.Container) error {
	task, running, err := runningTask(ctx, c)
	if err != nil {
		return err
	}
	if !running {
		return fmt.Errorf("container %s is not running: %w", c.ID(), ErrNotRunning)
	}
	if err := task.Pause(ctx); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ID(), err)
	}
	return nil
}

// Unpause thaws container c's processes.
func Unpause(ctx context.Context, c containerd.Container) error {
	task, _, err := runningTask(ctx, c)
	if err != nil {
		return err
	}
	if task == nil {
		return fmt.Errorf("container %s is not paused: %w", c.ID(), ErrNotRunning)
	}
	if st, err := task.Status(ctx); err != nil || st.Status != containerd.Paused {
		return fmt.Errorf("container %s is not paused", c.ID())
	}
	if err := task.Resume(ctx); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ID(), err)
	}
	return nil
}
