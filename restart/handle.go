package restart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/health"
)

// handle applies one event to w's container.
func (m *Monitor) handle(ctx context.Context, w *worker, ev event) {
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("container", w.key.id))
	c, labels, err := m.load(ctx, w)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: load container")
		}
		return
	}
	if !IsBerthContainer(labels) {
		m.forget(w)
		return
	}
	switch ev.topic {
	case topicStart:
		m.started(ctx, w, c, labels, ev)
	case topicOOM:
		setLabels(ctx, c, map[string]string{LabelOOMKilled: "true"})
	case topicExit:
		m.health.Stop(m.healthKey(w))
		m.exited(ctx, w, c, labels, ev)
	case topicPaused:
		m.health.Stop(m.healthKey(w))
	case topicResumed:
		m.resumed(ctx, w, c, labels)
	default:
		m.reconcile(ctx, w, c, labels)
	}
}

// load is w's container and its labels; the monitor forgets a container
// that is gone.
func (m *Monitor) load(ctx context.Context, w *worker) (containerd.Container, map[string]string, error) {
	c, err := m.client.LoadContainer(ctx, w.key.id)
	if err == nil {
		// The record LoadContainer just read: no second read for labels.
		var info containers.Container
		if info, err = c.Info(ctx, containerd.WithoutRefreshedMetadata); err == nil {
			return c, info.Labels, nil
		}
	}
	if errdefs.IsNotFound(err) {
		m.forget(w)
	}
	return nil, nil, err
}

// started records a task start. A start the monitor did not make is the
// user's: docker's backoff starts again from its first delay. The start
// of a task whose exit was handled already changes nothing.
func (m *Monitor) started(ctx context.Context, w *worker, c containerd.Container, labels map[string]string, ev event) {
	if ev.pid == w.lastExit.pid || ev.at.Equal(w.startedAt) {
		return // reported late or again (a shim retries what it publishes)
	}
	w.startedAt = ev.at
	m.health.Start(ctx, m.healthKey(w), ev.pid, ev.at, health.Fresh)
	if ev.pid != w.restartedPid {
		w.backoff = Backoff{}
		if recordedByUser(labels, ev.at) {
			return // no second write of what berth's start wrote
		}
	}
	setLabels(ctx, c, map[string]string{LabelStartedAt: formatTime(ev.at), LabelExitCode: "", LabelOOMKilled: ""})
}

// resumed starts the health checks of a task that was paused again.
func (m *Monitor) resumed(ctx context.Context, w *worker, c containerd.Container, labels map[string]string) {
	task, err := c.Task(ctx, nil)
	if err != nil {
		return // gone since: its exit stops the checks
	}
	m.health.Start(ctx, m.healthKey(w), task.Pid(), m.startTime(w, labels), health.Resumed)
}

// startTime is when w's running task started: as the monitor saw it, else
// as berth recorded it.
func (m *Monitor) startTime(w *worker, labels map[string]string) time.Time {
	if !w.startedAt.IsZero() {
		return w.startedAt
	}
	return ParseTime(labels[LabelStartedAt])
}

// healthKey is w's container for the probers.
func (m *Monitor) healthKey(w *worker) health.Key {
	return health.Key{Namespace: w.key.namespace, ID: w.key.id}
}

// userStartSlack is how long before its start event berth's record of a
// start may be: berth writes it before it starts the task.
const userStartSlack = 30 * time.Second

// recordedByUser says whether labels already record the start at: berth's
// start wrote its time (shortly before) and cleared the last exit, in one
// update, as containers.Start does.
func recordedByUser(labels map[string]string, at time.Time) bool {
	started := ParseTime(labels[LabelStartedAt])
	_, code := labels[LabelExitCode]
	_, oom := labels[LabelOOMKilled]
	return !code && !oom && !started.IsZero() && !started.After(at) && at.Sub(started) < userStartSlack
}

// exited records the exit of the container's task and applies the
// container's policy to it.
func (m *Monitor) exited(ctx context.Context, w *worker, c containerd.Container, labels map[string]string, ev event) {
	log.G(ctx).WithField("pid", ev.pid).WithField("status", ev.code).Debug("berth restart monitor: exit")
	this := exitID{ev.pid, ev.at}
	if this == w.lastExit {
		return // delivered twice (the reconcile at start and a late event)
	}
	task, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
		task = nil // deleted: by containerd when vanished, else by someone else
	case err != nil:
		log.G(ctx).WithError(err).Warn("berth restart monitor: load task")
		return
	case task.Pid() != ev.pid:
		return // an exit of an earlier task: this one was started since
	}
	w.lastExit = this
	// A stopped container holds no veth and no address, also when no
	// berth is running to see it stop.
	if err := cni.DownIfStopped(ctx, c); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).Warn("berth restart monitor: take down the container's network")
	}
	setLabels(ctx, c, map[string]string{LabelExitCode: strconv.Itoa(ev.code), LabelFinishedAt: formatTime(ev.at)})
	if labels[LabelAutoRemove] == "true" {
		m.remove(ctx, w, c, task, labels)
		return
	}
	policy, err := PolicyOf(labels)
	if err != nil {
		log.G(ctx).WithError(err).Warn("berth restart monitor: not restarting")
		return
	}
	if (task == nil && !ev.vanished) || !ShouldRestart(policy, Exit{ExitCode: ev.code, StoppedByUser: StoppedByUser(labels), RestartCount: CountOf(labels)}) {
		return
	}
	startedAt := w.startedAt
	if startedAt.IsZero() {
		startedAt = ParseTime(labels[LabelStartedAt])
	}
	delay := w.backoff.Next(ranFor(startedAt, ev.at))
	if ev.vanished {
		// Found at containerd's start: restarted at once, as docker's
		// daemon does, before the shim's late report of that exit.
		delay = 0
	}
	if !m.wait(ctx, w, delay) {
		return
	}
	m.restartAfterExit(ctx, w, ev)
}

// restartAfterExit restarts the container whose task exited with ev,
// unless someone acted meanwhile: removed it, stopped it, started or
// deleted its task.
func (m *Monitor) restartAfterExit(ctx context.Context, w *worker, ev event) {
	c, labels, err := m.load(ctx, w)
	if err != nil {
		return
	}
	policy, err := PolicyOf(labels)
	count := CountOf(labels)
	if err != nil || !ShouldRestart(policy, Exit{ExitCode: ev.code, StoppedByUser: StoppedByUser(labels), RestartCount: count}) {
		return
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) && ev.vanished {
		task = nil // containerd deleted it as it started
	} else if err != nil || !m.deleteExited(ctx, task, ev.pid) {
		return
	}
	// Counted before the start, so that the rules see the count when the
	// new task exits at once; the last exit's code goes with it, so that
	// no one sees it beside the new task's state.
	if !setLabels(ctx, c, map[string]string{LabelCount: strconv.Itoa(count + 1), LabelExitCode: "", LabelOOMKilled: ""}) {
		return
	}
	m.startTask(ctx, w, c)
}

// deleteExited deletes task if it is still the exited one (pid); false
// when it is not, or could not be deleted.
func (m *Monitor) deleteExited(ctx context.Context, task containerd.Task, pid uint32) bool {
	if task.Pid() != pid {
		return false
	}
	if status, err := task.Status(ctx); err != nil || status.Status != containerd.Stopped {
		return false
	}
	if _, err := task.Delete(ctx); err != nil {
		if !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: delete the exited task")
		}
		return false
	}
	return true
}

// startTask starts a new task of c with no stdio (the shim writes the
// container's log). Another task made meanwhile is someone else's start.
// As docker does, a failed start leaves the container stopped.
func (m *Monitor) startTask(ctx context.Context, w *worker, c containerd.Container) {
	task, err := newTask(ctx, c)
	if err != nil {
		if !errdefs.IsAlreadyExists(err) {
			log.G(ctx).WithError(err).Error("berth restart monitor: create the task")
		}
		return
	}
	w.restartedPid = task.Pid()
	if err := task.Start(ctx); err != nil {
		log.G(ctx).WithError(err).Error("berth restart monitor: start the task")
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: delete the task that did not start")
		}
		if err := cni.DownIfStopped(ctx, c); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: take down the network of the task that did not start")
		}
		return
	}
	log.G(ctx).WithField("pid", task.Pid()).Info("berth restart monitor: restarted")
}

// remove removes an auto-remove container that exited: its task, its
// snapshot, the container, and its directory of berth's data (where its
// log is), then its anonymous volumes. Someone else's removal is no error.
func (m *Monitor) remove(ctx context.Context, w *worker, c containerd.Container, task containerd.Task, labels map[string]string) {
	if task != nil {
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: auto-remove: delete the task")
			return
		}
	}
	// The directory goes first: once the container is gone, so is all
	// of it.
	spec, specErr := c.Spec(ctx)
	if specErr == nil {
		if dir := containerDataDir(c.ID(), spec.Annotations[annotationLogPath]); dir != "" {
			if err := os.RemoveAll(dir); err != nil {
				log.G(ctx).WithError(err).Warn("berth restart monitor: auto-remove: remove the container's directory")
			}
		}
	}
	err := c.Delete(ctx, containerd.WithSnapshotCleanup)
	if err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).Warn("berth restart monitor: auto-remove: delete the container")
		return
	}
	if specErr == nil {
		removeAnonymousVolumes(ctx, m.client, labels, spec.Mounts)
	}
	m.forget(w)
}

// annotationLogPath is the spec annotation with the container's json-file
// log: <DataRoot>/containers/<id>/<id>-json.log. It is logs/jsonfile's
// AnnotationPath (TestLogAnnotation), spelt out here because that package
// would bring its docker dependency into containerd, which links restart.
const annotationLogPath = "io.berth.log.path"

// containerDataDir is the container's directory of berth's data, from its
// log path; "" unless that path has exactly the layout berth gives it, so
// that no other directory is ever removed.
func containerDataDir(id, logPath string) string {
	dir := filepath.Dir(logPath)
	if !filepath.IsAbs(logPath) || filepath.Clean(logPath) != logPath || filepath.Base(logPath) != id+"-json.log" ||
		filepath.Base(dir) != id || filepath.Base(filepath.Dir(dir)) != "containers" {
		return ""
	}
	return dir
}

// setLabels sets (an empty value: deletes) labels of c; false when that
// failed, which it logs.
func setLabels(ctx context.Context, c containerd.Container, labels map[string]string) bool {
	if _, err := c.SetLabels(ctx, labels); err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			log.G(ctx).WithError(err).Warn("berth restart monitor: set labels")
		}
		return false
	}
	return true
}

// ranFor is how long a task ran, from its start to its exit; 0 when the
// start is unknown.
func ranFor(startedAt, exitedAt time.Time) time.Duration {
	if startedAt.IsZero() {
		return 0
	}
	return exitedAt.Sub(startedAt)
}

// newTask creates c's task with no stdio, bringing its networks up first
// (cni.NewTask), as berth's start does.
func newTask(ctx context.Context, c containerd.Container) (containerd.Task, error) {
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, err
	}
	return cni.NewTask(ctx, info, func() (containerd.Task, error) { return c.NewTask(ctx, cio.NullIO) })
}
