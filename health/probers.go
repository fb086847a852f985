package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
)

// Key names a container: its containerd namespace and ID.
type Key struct{ Namespace, ID string }

// How a prober takes over the stored status when it starts.
type Mode int

const (
	// Fresh: the task has just started; the status starts again
	// (starting, no failures), as at each docker start.
	Fresh Mode = iota
	// Resumed: the task was paused, which stopped its checks; as in
	// docker, it is unhealthy until a check passes.
	Resumed
	// Continue: the task was running before (containerd restarted); the
	// stored status goes on, unless it is of another task.
	Continue
)

// Probers run the health checks of running containers, one prober per
// task, each a goroutine that sleeps the check's interval, runs the check
// as an exec in the task (execCheck) and stores the status it computes.
// The restart monitor starts a container's prober when its task starts,
// resumes, or is found running at containerd's start, and stops it when
// the task pauses or exits.
//
// A prober that was stopped writes nothing more: each write is made under
// its container's slot lock, and only by the slot's current prober, so a
// stopped prober whose check is still ending cannot overwrite the status
// of the task that started next.
type Probers struct {
	client  *containerd.Client
	fifoDir string

	mu      sync.Mutex
	slots   map[Key]*slot
	running sync.WaitGroup
}

// slot is one container's current prober.
type slot struct {
	mu      sync.Mutex // held while that prober writes the status
	current *prober    // nil once stopped
}

type prober struct {
	key       Key
	pid       uint32
	startedAt time.Time
	mode      Mode
	slot      *slot
	cancel    context.CancelFunc
}

// NewProbers are probers that act through client (in containerd, a client
// over its in-memory services) and keep their checks' fifos in fifoDir,
// which is theirs alone: whatever an earlier containerd left there goes.
func NewProbers(client *containerd.Client, fifoDir string) (*Probers, error) {
	if err := os.RemoveAll(fifoDir); err != nil {
		return nil, fmt.Errorf("berth health: clear the checks' fifo directory: %w", err)
	}
	if err := os.MkdirAll(fifoDir, 0o700); err != nil {
		return nil, fmt.Errorf("berth health: make the checks' fifo directory: %w", err)
	}
	return &Probers{client: client, fifoDir: fifoDir, slots: map[Key]*slot{}}, nil
}

// Start starts the prober of task pid (started at startedAt) of container
// key, which checks until Stop, the end of ctx, or the end of the task. A
// prober of that task already running goes on; one of another task is
// stopped. A container without a check that runs gets no prober.
func (ps *Probers) Start(ctx context.Context, key Key, pid uint32, startedAt time.Time, mode Mode) {
	if ps == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if s := ps.slots[key]; s != nil {
		s.mu.Lock()
		same := s.current != nil && s.current.pid == pid
		s.mu.Unlock()
		if same {
			return
		}
		ps.stopLocked(key)
	}
	ctx = namespaces.WithNamespace(ctx, key.Namespace)
	pctx, cancel := context.WithCancel(ctx)
	p := &prober{key: key, pid: pid, startedAt: startedAt, mode: mode, cancel: cancel}
	p.slot = &slot{current: p}
	ps.slots[key] = p.slot
	ps.running.Add(1)
	go func() {
		defer ps.running.Done()
		defer ps.release(p)
		ps.run(pctx, ctx, p)
	}()
}

// Stop stops the container's prober, if any. It does not wait for a check
// under way: that one is killed, deleted and its result dropped in the
// background (a check in a paused task ends only once the task thaws).
func (ps *Probers) Stop(key Key) {
	if ps == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.stopLocked(key)
}

func (ps *Probers) stopLocked(key Key) {
	s := ps.slots[key]
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.current != nil {
		s.current.cancel()
		s.current = nil
	}
	s.mu.Unlock()
	delete(ps.slots, key)
}

// release forgets p once its goroutine ends.
func (ps *Probers) release(p *prober) {
	p.cancel()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.slots[p.key] == p.slot {
		delete(ps.slots, p.key)
	}
}

// Wait waits for every prober to end; the caller has ended the context
// they were started with.
func (ps *Probers) Wait() {
	if ps != nil {
		ps.running.Wait()
	}
}

// errStopped: the prober was stopped, or its task is no longer running.
var errStopped = errors.New("prober stopped")

// run is p's loop. ctx ends with Stop; life with the monitor.
func (ps *Probers) run(ctx, life context.Context, p *prober) {
	lg := log.G(ctx).WithField("container", p.key.ID)
	c, err := ps.client.LoadContainer(ctx, p.key.ID)
	if err != nil {
		if !errdefs.IsNotFound(err) && ctx.Err() == nil {
			lg.WithError(err).Warn("berth health: load the container")
		}
		return
	}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return
	}
	check, ok, err := CheckOf(info)
	if err != nil || !ok {
		if err != nil {
			lg.WithError(err).Warn("berth health: no checks")
		}
		return
	}
	spec, err := c.Spec(ctx)
	if err != nil || spec.Process == nil {
		lg.WithError(err).Warn("berth health: no checks: the container's spec has no process")
		return
	}
	process := *spec.Process
	process.Args, process.Terminal, process.ConsoleSize = check.Command(), false, nil

	if _, err := ps.runningTask(ctx, c, p); err != nil {
		return // exited before its first check: nothing to record
	}
	st, stored, err := StateOf(info)
	if err != nil {
		lg.WithError(err).Warn("berth health: the stored status is unreadable; starting again")
	}
	switch {
	case p.mode == Fresh || !stored || st.Pid != p.pid:
		st.Health = Started(st.Health)
	case p.mode == Resumed:
		st.Status = Unhealthy
	}
	st.Pid = p.pid
	if err := ps.write(ctx, p, st); final(err) {
		return
	}
	timer := time.NewTimer(NextDelay(check.Config, st.Status, p.startedAt, time.Now()))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		task, err := ps.runningTask(ctx, c, p)
		if err != nil {
			return
		}
		r, ok := execCheck(ctx, life, task, process, Timeout(check.Config), ps.fifoDir)
		if !ok {
			return
		}
		if _, err := ps.runningTask(ctx, c, p); err != nil {
			return // the task ended during the check: the result is not the container's health
		}
		Record(&st.Health, check.Config, p.startedAt, r)
		if err := ps.write(ctx, p, st); final(err) {
			return
		}
		lg.WithField("exit", r.ExitCode).WithField("status", st.Status).Debug("berth health: checked")
		timer.Reset(NextDelay(check.Config, st.Status, p.startedAt, time.Now()))
	}
}

// final says whether a write's error ends the prober: it was stopped, or
// the container is gone. Another failure (logged) is retried at the next
// check.
func final(err error) bool {
	return errors.Is(err, errStopped) || errdefs.IsNotFound(err)
}

// runningTask is c's task when it is still p's and running; errStopped
// otherwise.
func (ps *Probers) runningTask(ctx context.Context, c containerd.Container, p *prober) (containerd.Task, error) {
	task, err := c.Task(ctx, nil)
	if err != nil {
		if !errdefs.IsNotFound(err) && ctx.Err() == nil {
			log.G(ctx).WithError(err).WithField("container", p.key.ID).Warn("berth health: load the task")
		}
		return nil, errStopped
	}
	if task.Pid() != p.pid {
		return nil, errStopped
	}
	status, err := task.Status(ctx)
	if err != nil || status.Status != containerd.Running {
		return nil, errStopped
	}
	return task, nil
}

// write stores st as the container's status, unless p was stopped. Only
// the status extension is written (a field path): labels and the other
// extensions are other writers'.
func (ps *Probers) write(ctx context.Context, p *prober, st State) error {
	ext, err := typeurl.MarshalAny(&st)
	if err != nil {
		return fmt.Errorf("berth health: encode the status: %w", err)
	}
	p.slot.mu.Lock()
	defer p.slot.mu.Unlock()
	if p.slot.current != p || ctx.Err() != nil {
		return errStopped
	}
	_, err = ps.client.ContainerService().Update(ctx,
		containers.Container{ID: p.key.ID, Extensions: map[string]typeurl.Any{ExtensionState: ext}},
		"extensions."+ExtensionState)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("container", p.key.ID).Warn("berth health: store the status")
		}
		return err
	}
	return nil
}
