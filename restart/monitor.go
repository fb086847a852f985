package restart

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"

	"github.com/berthrt/berth/health"
)

// The task events the monitor acts on.
const (
	topicStart = "/tasks/start"
	topicExit  = "/tasks/exit"
	topicOOM   = "/tasks/oom"
	// A paused task's health checks stop; they go on when it resumes.
	topicPaused  = "/tasks/paused"
	topicResumed = "/tasks/resumed"
)

// Monitor applies the restart policies of Berth's containers inside
// containerd: it records each task's start, OOM kill and exit in the
// container's labels, restarts it as its policy says, with docker's
// backoff, and removes an auto-remove container when it exits. At start
// it reconciles once: containers that exited while containerd was down
// are treated as docker's daemon treats them at its start.
//
// Events of one container are handled in order, by one goroutine at a
// time; different containers are handled concurrently. The monitor never
// undoes what a user did meanwhile: a task someone else started or
// deleted, a container someone removed, or the stopped-by-user label
// each ends a pending restart.
//
// With health checks (WithHealth), the monitor also starts a container's
// prober when its task starts, resumes or is found running at
// containerd's start, and stops it when the task pauses or exits: the
// events that drive the probers are the ones it already handles, in the
// same order.
type Monitor struct {
	client *containerd.Client
	health *health.Probers

	mu      sync.Mutex
	workers map[containerKey]*worker
	running sync.WaitGroup
}

type containerKey struct{ namespace, id string }

// worker is one container's queue of events, and what the monitor keeps
// of it between events.
type worker struct {
	key    containerKey
	queue  []event // guarded by Monitor.mu
	active bool    // a goroutine drains queue; guarded by Monitor.mu
	wake   chan struct{}

	// Owned by the draining goroutine.
	backoff      Backoff
	restartedPid uint32    // the task the monitor last started
	startedAt    time.Time // the last start seen
	lastExit     exitID    // the last exit handled
}

type exitID struct {
	pid uint32
	at  time.Time
}

// event is a task event of one container, or the reconcile at start.
type event struct {
	topic string // topicStart, topicExit, topicOOM, topicPaused, topicResumed or "" for reconcile
	pid   uint32
	code  int
	at    time.Time
	// vanished: an exit the reconcile at start inferred for a task that
	// was running and is gone (containerd deleted it as it started).
	vanished bool
}

// NewMonitor is a monitor that acts through client (in containerd, a
// client over its in-memory services).
func NewMonitor(client *containerd.Client) *Monitor {
	return &Monitor{client: client, workers: map[containerKey]*worker{}}
}

// WithHealth has m run the health checks of the containers with probers.
func (m *Monitor) WithHealth(probers *health.Probers) *Monitor {
	m.health = probers
	return m
}

// Run subscribes to task events, waits until containerd serves at
// ttrpcAddress (when given: the tasks it starts publish their events
// there), reconciles every Berth container once, then handles events until
// ctx ends.
func (m *Monitor) Run(ctx context.Context, ttrpcAddress string) error {
	defer m.health.Wait()
	defer m.running.Wait()
	// Whatever ends Run ends the workers and probers it started.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var filters []string
	for _, topic := range []string{topicStart, topicExit, topicOOM, topicPaused, topicResumed} {
		filters = append(filters, fmt.Sprintf("topic==%q", topic))
	}
	envelopes, errs := m.client.EventService().Subscribe(ctx, filters...)
	if ttrpcAddress != "" {
		wctx, cancel := context.WithTimeout(ctx, serveTimeout)
		err := waitServing(wctx, ttrpcAddress)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.G(ctx).WithError(err).Warnf("berth restart monitor: containerd does not serve at %s after %v; reconciling anyway", ttrpcAddress, serveTimeout)
		}
	}
	if err := m.reconcileAll(ctx); err != nil {
		log.G(ctx).WithError(err).Error("berth restart monitor: reconcile at start")
	}
	for {
		select {
		case env := <-envelopes:
			m.dispatchEnvelope(ctx, env)
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("berth restart monitor: task events: %w", err)
		case <-ctx.Done():
			return nil
		}
	}
}

// serveTimeout bounds the wait for containerd to serve before the
// reconcile at start.
const serveTimeout = time.Minute

// waitServing waits until something accepts connections at address.
func waitServing(ctx context.Context, address string) error {
	for {
		conn, err := (&net.Dialer{}).DialContext(ctx, "unix", address)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// dispatchEnvelope queues a task event for its container. Exits of exec
// processes (an ID other than the container's) are not the container's.
func (m *Monitor) dispatchEnvelope(ctx context.Context, env *events.Envelope) {
	if env == nil {
		return
	}
	payload, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		log.G(ctx).WithError(err).WithField("topic", env.Topic).Warn("berth restart monitor: unreadable event")
		return
	}
	ev := event{topic: env.Topic, at: env.Timestamp}
	var id string
	switch e := payload.(type) {
	case *eventtypes.TaskStart:
		id, ev.pid = e.ContainerID, e.Pid
	case *eventtypes.TaskOOM:
		id = e.ContainerID
	case *eventtypes.TaskPaused:
		id = e.ContainerID
	case *eventtypes.TaskResumed:
		id = e.ContainerID
	case *eventtypes.TaskExit:
		if e.ID != e.ContainerID {
			return
		}
		id, ev.pid, ev.code = e.ContainerID, e.Pid, int(e.ExitStatus)
		if e.ExitedAt != nil {
			ev.at = e.ExitedAt.AsTime()
		}
	default:
		return
	}
	m.dispatch(ctx, containerKey{env.Namespace, id}, ev)
}

// dispatch queues ev for its container, starting the goroutine that
// drains the container's queue when none runs.
func (m *Monitor) dispatch(ctx context.Context, key containerKey, ev event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workers[key]
	if w == nil {
		w = &worker{key: key, wake: make(chan struct{}, 1)}
		m.workers[key] = w
	}
	w.queue = append(w.queue, ev)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	if !w.active {
		w.active = true
		m.running.Add(1)
		go m.drain(namespaces.WithNamespace(ctx, key.namespace), w)
	}
}

// drain handles w's events in order until its queue is empty.
func (m *Monitor) drain(ctx context.Context, w *worker) {
	defer m.running.Done()
	for {
		ev, ok := m.next(w)
		if !ok {
			return
		}
		m.handle(ctx, w, ev)
	}
}

// next pops w's next event; false (and w inactive) when there is none.
func (m *Monitor) next(w *worker) (event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(w.queue) == 0 {
		w.active = false
		return event{}, false
	}
	ev := w.queue[0]
	w.queue = w.queue[1:]
	return ev, true
}

// forget drops what the monitor keeps of a container that is gone.
func (m *Monitor) forget(w *worker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(w.queue) == 0 && m.workers[w.key] == w {
		delete(m.workers, w.key)
	}
}

// wait waits out a restart delay. Queued OOM events are recorded
// meanwhile, and a second report of the exit waited on dropped; a start
// or another exit of the container's task (someone else acted) or the end
// of ctx cancels the restart: false. A queued reconcile waits.
func (m *Monitor) wait(ctx context.Context, w *worker, delay time.Duration) bool {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		case <-w.wake:
			for {
				ev, ok := m.popHarmless(w)
				if !ok {
					break
				}
				if ev.topic == topicOOM {
					m.handle(ctx, w, ev)
				}
			}
			if m.taskEventQueued(w) {
				return false
			}
		}
	}
}

// popHarmless pops w's next event if it cannot change a pending restart:
// an OOM kill, or the exit being handled reported again.
func (m *Monitor) popHarmless(w *worker) (event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(w.queue) == 0 {
		return event{}, false
	}
	next := w.queue[0]
	again := next.topic == topicExit && (exitID{next.pid, next.at}) == w.lastExit
	if next.topic != topicOOM && !again {
		return event{}, false
	}
	ev := w.queue[0]
	w.queue = w.queue[1:]
	return ev, true
}

// taskEventQueued says whether a start or exit of w's task is queued.
func (m *Monitor) taskEventQueued(w *worker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range w.queue {
		if ev.topic == topicStart || ev.topic == topicExit {
			return true
		}
	}
	return false
}
