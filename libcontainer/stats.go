package libcontainer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/events"
)

// Stats reads the container's resource usage from its cgroup. It works for
// a stopped container too as long as the cgroup is there (until delete),
// which gives its final counters.
func (c *Container) Stats() (*events.Stats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.state.ID, err)
	}
	s, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.state.ID, err)
	}
	return s, nil
}

// Events streams what `events` prints: the container's stats every
// interval and an "oom" event each time its cgroup runs out of memory.
// The channel is closed when the container stops, once the OOMs it hit are
// delivered (an OOM kill is often what stopped it), or when ctx ends.
// Failures to read the stats go to warn and the stream goes on, as with
// runc. A container without a memory controller gets no OOM events; warn
// says so.
func (c *Container) Events(ctx context.Context, interval time.Duration, warn io.Writer) (<-chan events.Event, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("events of %s: the interval must be positive, not %v", c.state.ID, interval)
	}
	if c.Status() == Stopped {
		return nil, fmt.Errorf("events of %s: %w", c.state.ID, ErrNotRunning)
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", c.state.ID, err)
	}
	exited, err := c.exitNotify(ctx)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", c.state.ID, err)
	}
	// The OOM watch has its own context: it must outlive the container's
	// exit long enough to hand over the OOMs that caused it.
	oomCtx, stopOOM := context.WithCancel(context.Background())
	oom, err := cg.NotifyOOM(oomCtx)
	if errors.Is(err, cgroups.ErrControllerMissing) {
		fmt.Fprintf(warn, "warning: no OOM events for %s: %v\n", c.state.ID, err)
	} else if err != nil {
		stopOOM()
		return nil, fmt.Errorf("events of %s: %w", c.state.ID, err)
	}
	out := make(chan events.Event)
	go c.pumpEvents(ctx, interval, warn, cg, exited, oom, stopOOM, out)
	return out, nil
}

// pumpEvents is the loop behind Events.
func (c *Container) pumpEvents(ctx context.Context, interval time.Duration, warn io.Writer, cg cgroups.Manager,
	exited <-chan struct{}, oom <-chan struct{}, stopOOM func(), out chan<- events.Event) {
	defer close(out)
	id := c.state.ID
	send := func(e events.Event) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// finish ends the OOM watch and passes on what it still had.
	finish := func() {
		stopOOM()
		if oom == nil {
			return
		}
		for range oom {
			if !send(events.Event{Type: events.TypeOOM, ID: id}) {
				break
			}
		}
		for range oom { // the watch must be drained to end
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s, err := cg.Stats()
			if err != nil {
				fmt.Fprintf(warn, "warning: %s: %v\n", id, err)
				continue
			}
			if !send(events.Event{Type: events.TypeStats, ID: id, Data: s}) {
				finish()
				return
			}
		case _, ok := <-oom:
			if !ok {
				oom = nil // the cgroup is gone or empty: no more OOMs
				continue
			}
			if !send(events.Event{Type: events.TypeOOM, ID: id}) {
				finish()
				return
			}
		case <-exited:
			finish()
			return
		case <-ctx.Done():
			finish()
			return
		}
	}
}

// exitNotify returns a channel closed when the container's init exits (or
// ctx ends). A pidfd makes it an event rather than polling of /proc, and
// pins the process: the start time check after opening it makes sure the
// pidfd is the init's and not a later process's with the same pid.
func (c *Container) exitNotify(ctx context.Context) (<-chan struct{}, error) {
	done := make(chan struct{})
	fd, err := pidfdOpen(c.state.InitPid)
	if err != nil || !c.state.alive() {
		if err == nil {
			unix.Close(fd)
		}
		close(done) // already gone
		return done, nil
	}
	go func() {
		defer close(done)
		defer unix.Close(fd)
		pollReadable(ctx, fd)
	}()
	return done, nil
}

// pollReadable blocks until fd polls readable (a pidfd: the process has
// exited) or ctx ends. An eventfd written on cancellation wakes the poll.
func pollReadable(ctx context.Context, fd int) {
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		// No eventfd: fall back to waking up now and then.
		for ctx.Err() == nil {
			if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 200); n > 0 {
				return
			}
		}
		return
	}
	defer unix.Close(stop)
	finished, waiter := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(waiter)
		select {
		case <-ctx.Done():
			unix.Write(stop, binary.NativeEndian.AppendUint64(nil, 1))
		case <-finished:
		}
	}()
	// Runs before the Close above: the waiter must be done with stop.
	defer func() { close(finished); <-waiter }()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return
		}
	}
}
