package task

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/shim/process"
)

// container is one task: its init and the processes exec'd into it, and
// what orders their exits. The rules (containerd's, from #9828/#10651):
// the init's TaskExit is the container's last; once the init has exited
// no exec starts; every exit is published once.
type container struct {
	id     string
	bundle string
	init   *process.Init
	// exits is the init as the ordering of exits sees it: init itself,
	// but for tests.
	exits initExits
	// killAllOnExit is set when the container shares a pid namespace:
	// its init's exit does not take the other processes down with it.
	killAllOnExit bool

	mu       sync.Mutex
	execs    map[string]*process.Exec
	reserved map[string]bool // exec ids being added
	// runningExecs counts execs started and not yet published as exited.
	runningExecs int
	initExited   bool
	// pendingInit is the init's exit, held back while execs still run.
	pendingInit *process.Exit

	oomStop func() // ends the OOM watch once its events are queued
}

// initExits is what the ordering of exits needs of a container's init.
type initExits interface {
	// SetExited records the init's exit; false when nobody waits for it
	// any more (deleted).
	SetExited(e process.Exit) bool
	// KillAll kills what is left in the container once the init exited.
	KillAll() error
}

// execProcess is what starting an exec'd process and ordering its exit
// need of it (process.Exec).
type execProcess interface {
	ID() string
	Pid() int
	Start(ctx context.Context) error
	SetExited(e process.Exit) bool
}

func newContainer(id, bundle string, p *process.Init) *container {
	c := newContainerOf(id, bundle, p)
	c.init = p
	// From the state, not the spec: reading config.json again costs a
	// whole decode on every create.
	c.killAllOnExit = p.Container().State().SharedPidNS
	return c
}

// newContainerOf is a container whose init's exits go through exits.
func newContainerOf(id, bundle string, exits initExits) *container {
	return &container{
		id: id, bundle: bundle, exits: exits, execs: map[string]*process.Exec{}, reserved: map[string]bool{},
		oomStop: func() {},
	}
}

// process returns the init for "" or the exec with that id.
func (c *container) process(execID string) (process.Process, error) {
	if execID == "" {
		return c.init, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.execs[execID]
	if !ok {
		return nil, fmt.Errorf("%w: exec %s in %s", errdefs.ErrNotFound, execID, c.id)
	}
	return e, nil
}

// reserve claims an exec id, so that two Exec calls cannot add the same.
func (c *container) reserve(execID string) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.execs[execID]; ok || c.reserved[execID] {
		return nil, fmt.Errorf("%w: exec %s in %s", errdefs.ErrAlreadyExists, execID, c.id)
	}
	c.reserved[execID] = true
	return func() {
		c.mu.Lock()
		delete(c.reserved, execID)
		c.mu.Unlock()
	}, nil
}

func (c *container) addExec(e *process.Exec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, e.ID())
	c.execs[e.ID()] = e
}

func (c *container) removeExec(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.execs, id)
}

func (c *container) execProcesses() []*process.Exec {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*process.Exec, 0, len(c.execs))
	for _, e := range c.execs {
		out = append(out, e)
	}
	return out
}

// beginExec counts an exec about to start; it fails once the init has
// exited, since the exec would outlive the container's last exit.
func (c *container) beginExec() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.initExited {
		return fmt.Errorf("%w: container %s init process is not running", errdefs.ErrFailedPrecondition, c.id)
	}
	c.runningExecs++
	return nil
}

// endExec uncounts an exec that exited (or never started). It returns the
// init's held-back exit when this was the last exec.
func (c *container) endExec() *process.Exit {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runningExecs--
	if c.runningExecs > 0 || c.pendingInit == nil {
		return nil
	}
	e := c.pendingInit
	c.pendingInit = nil
	return e
}

// initExit records that the init was reaped. It returns true if the exit
// can be published now, false if it waits for the running execs.
func (c *container) initExit(e process.Exit) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initExited = true
	if c.runningExecs > 0 {
		c.pendingInit = &e
		return false
	}
	return true
}

// watchOOM queues a TaskOOM for each OOM of the container's cgroup. A
// host without the memory controller has no OOM events; that is logged.
func (c *container) watchOOM(ctx context.Context, publish func(any), event func() any) {
	cg, err := c.init.Container().Cgroup()
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", c.id).Warn("no OOM events: cannot load the cgroup")
		return
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := cg.NotifyOOM(wctx)
	if err != nil {
		cancel()
		level := log.G(ctx).WithError(err).WithField("id", c.id)
		if errors.Is(err, cgroups.ErrControllerMissing) {
			level.Info("no OOM events")
		} else {
			level.Warn("no OOM events")
		}
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			publish(event())
		}
	}()
	var once sync.Once
	c.oomStop = func() {
		once.Do(func() {
			// Cancelling makes the watch read what the kernel already
			// signalled: an OOM kill that ended the init is queued before
			// the init's TaskExit.
			cancel()
			<-done
		})
	}
}
