package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthrt/berth/logs/jsonfile"
	"github.com/berthrt/berth/restart"
)

// ErrNoLog is docker's answer for a container whose log berth cannot read
// (created with --log-driver none: no json-file log annotation).
var ErrNoLog = errors.New("configured logging driver does not support reading")

// endPollInterval is how often a follower looks at the task itself when
// containerd's event stream failed (containerd restarted).
const endPollInterval = time.Second

// Config is the json-file log of a container, from its spec's
// annotations; ErrNoLog when it has none.
func Config(ctx context.Context, ctr containerd.Container) (jsonfile.Config, error) {
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return jsonfile.Config{}, fmt.Errorf("read the spec of container %s: %w", ctr.ID(), err)
	}
	cfg, ok, err := jsonfile.ConfigFromAnnotations(spec.Annotations)
	if err != nil {
		return jsonfile.Config{}, fmt.Errorf("container %s: %w", ctr.ID(), err)
	}
	if !ok {
		return jsonfile.Config{}, ErrNoLog
	}
	return cfg, nil
}

// ContainerLogs writes a container's log as `docker logs` does. With
// opts.Follow (and no opts.Ended of the caller's) it follows until the
// container's task has exited and will not come back: a restart by the
// container's policy is followed into.
func ContainerLogs(ctx context.Context, client *containerd.Client, ctr containerd.Container, opts Options, stdout, stderr io.Writer) error {
	cfg, err := Config(ctx, ctr)
	if err != nil {
		return err
	}
	if opts.Follow && opts.Ended == nil {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		opts.Ended = WatchEnd(wctx, client, ctr.ID())
	}
	return Read(ctx, cfg, opts, stdout, stderr)
}

// WatchEnd returns a channel that is closed once container id's task has
// exited and will not come back (already so: at once), or ctx ends. It
// learns of changes from containerd's events for the container (task
// exits, starts, deletes; label updates such as berth stop's
// stopped-by-user; the container's removal) and decides with its
// restart labels (willRestart).
func WatchEnd(ctx context.Context, client *containerd.Client, id string) <-chan struct{} {
	ended := make(chan struct{})
	// Subscribed before the first look, so that no change falls between.
	events, errs := client.Subscribe(ctx,
		fmt.Sprintf(`topic~="^/tasks/",event.container_id==%q`, id),
		fmt.Sprintf(`topic~="^/containers/",event.id==%q`, id))
	go func() {
		defer close(ended)
		for live(ctx, client, id) {
			select {
			case <-ctx.Done():
				return
			case <-events:
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				log.G(ctx).WithError(err).Debug("containerd events failed; looking at the task every second")
				events, errs = nil, nil
			case <-pollWhen(events == nil):
			}
		}
	}()
	return ended
}

// pollWhen is a timer's channel while on, else nil (never ready).
func pollWhen(on bool) <-chan time.Time {
	if !on {
		return nil
	}
	return time.After(endPollInterval)
}

// live reports whether the container's task runs (or was created, or is
// paused), or has exited and will be restarted. Only a definite answer
// ends the follow: an error other than "not found" (containerd restarts)
// counts as live, and the next event or poll asks again.
func live(ctx context.Context, client *containerd.Client, id string) bool {
	ctr, err := client.LoadContainer(ctx, id)
	if err != nil {
		return !errdefs.IsNotFound(err) // removed: ended
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return !errdefs.IsNotFound(err)
	}
	// No task (between the monitor's delete of the exited one and its
	// new one, or never started again), or one that has stopped.
	code := -1
	if task, err := ctr.Task(ctx, nil); err == nil {
		st, err := task.Status(ctx)
		switch {
		case err == nil && st.Status != containerd.Stopped:
			return true
		case err == nil:
			code = int(st.ExitStatus)
		case !errdefs.IsNotFound(err):
			return true
		}
	} else if !errdefs.IsNotFound(err) {
		return true
	}
	if code < 0 {
		if c, err := strconv.Atoi(labels[restart.LabelExitCode]); err == nil {
			code = c
		}
	}
	return willRestart(labels, code)
}

// willRestart says whether the restart monitor brings back a container
// whose task exited with code (-1: not known, a failure) by its labels:
// the monitor's own rules (restart.ShouldRestart).
func willRestart(labels map[string]string, code int) bool {
	policy, err := restart.PolicyOf(labels)
	if err != nil {
		return false // the monitor does not restart it either
	}
	return restart.ShouldRestart(policy, restart.Exit{ExitCode: code, StoppedByUser: restart.StoppedByUser(labels), RestartCount: restart.CountOf(labels)})
}
