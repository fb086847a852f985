package restart

import (
	"context"
	"fmt"
	"strconv"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/health"
)

// reconcileAll queues the reconcile of every Berth container of every
// namespace, behind any event of that container already queued.
func (m *Monitor) reconcileAll(ctx context.Context) error {
	names, err := m.client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range names {
		nctx := namespaces.WithNamespace(ctx, ns)
		list, err := m.client.ContainerService().List(nctx)
		if err != nil {
			return fmt.Errorf("list the containers of namespace %s: %w", ns, err)
		}
		for _, c := range list {
			if IsBerthContainer(c.Labels) {
				m.dispatch(ctx, containerKey{ns, c.ID}, event{})
			}
		}
	}
	return nil
}

// reconcile brings a container that is not running to where docker's
// daemon brings it at its start: an exit containerd reported while no one
// listened is recorded (and an auto-remove container removed);
// containers whose policy says so start again (ShouldStartWithDaemon), the
// user's stop and the restart count forgotten, as docker's start at
// daemon start does; an on-failure container whose unrecorded exit calls
// for it is restarted as after any exit.
func (m *Monitor) reconcile(ctx context.Context, w *worker, c containerd.Container, labels map[string]string) {
	task, err := c.Task(ctx, nil)
	if err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).Warn("berth restart monitor: reconcile: load task")
		return
	}
	var unrecorded *event
	if task == nil && wasRunning(labels) {
		// containerd deletes, as it starts, the tasks whose processes
		// exited, and their exits reach the monitor late or never: as
		// docker does for an exit it cannot learn, 255, now.
		unrecorded = &event{topic: topicExit, code: 255, at: time.Now(), vanished: true}
	}
	if task != nil {
		status, err := task.Status(ctx)
		if err != nil {
			log.G(ctx).WithError(err).Warn("berth restart monitor: reconcile: task status")
			return
		}
		if status.Status == containerd.Running {
			// Running since before containerd started: its checks go on.
			m.health.Start(ctx, m.healthKey(w), task.Pid(), m.startTime(w, labels), health.Continue)
		}
		if status.Status != containerd.Stopped {
			return // running, paused or created: nothing more to do
		}
		exit := event{topic: topicExit, pid: task.Pid(), code: int(status.ExitStatus), at: status.ExitTime}
		if labels[LabelFinishedAt] != formatTime(exit.at) {
			unrecorded = &exit
		}
	}
	// Networks whose task ended while containerd was down (or whose
	// exit was missed) go now; a restart below brings them up again.
	if err := cni.DownIfStopped(ctx, c); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).Warn("berth restart monitor: reconcile: take down the container's network")
	}
	policy, err := PolicyOf(labels)
	ranBefore := task != nil || labels[LabelStartedAt] != ""
	if err != nil || !ranBefore || !ShouldStartWithDaemon(policy, StoppedByUser(labels)) || labels[LabelAutoRemove] == "true" {
		if unrecorded != nil {
			m.exited(ctx, w, c, labels, *unrecorded) // docker's rules for an exit
		}
		return
	}
	if unrecorded != nil {
		setLabels(ctx, c, map[string]string{LabelExitCode: strconv.Itoa(unrecorded.code), LabelFinishedAt: formatTime(unrecorded.at)})
	}
	if task != nil {
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: reconcile: delete the exited task")
			return
		}
	}
	if !setLabels(ctx, c, map[string]string{LabelStoppedByUser: "", LabelCount: ""}) {
		return
	}
	w.backoff = Backoff{}
	m.startTask(ctx, w, c)
}

// wasRunning says whether labels show a task started and no exit since.
func wasRunning(labels map[string]string) bool {
	started := ParseTime(labels[LabelStartedAt])
	return !started.IsZero() && !ParseTime(labels[LabelFinishedAt]).After(started)
}
