package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/logs/jsonfile"
	"github.com/berthrt/berth/shim/reaper"
)

// Exit is how a process ended.
type Exit = reaper.Exit

// Process is what the task service needs of an init or an exec'd process.
type Process interface {
	ID() string
	Pid() int
	Status() Status
	Stdio() Stdio
	// ExitStatus is the exit code and time; zero until the process exits.
	ExitStatus() (int, time.Time)
	// Wait returns once the process has exited (SetExited) or ctx ends.
	Wait(ctx context.Context) error
	// SetExited records the exit the reaper reported. It returns false
	// when the process was deleted already and nobody waits for it.
	SetExited(e Exit) bool
	Start(ctx context.Context) error
	Kill(ctx context.Context, sig uint32, all bool) error
	Delete(ctx context.Context) error
	Resize(width, height uint32) error
	CloseStdin() error
}

// procIO is a process's stdio: pipes or a terminal.
type procIO interface {
	CloseStdin() error
	Wait(ctx context.Context) error
	Close() error
}

// ioDrainTimeout bounds how long Delete waits for output still being
// copied (a process in the container that keeps a pipe open).
const ioDrainTimeout = 10 * time.Second

// exitRecord is a process's exit, kept for Wait and State until delete.
type exitRecord struct {
	done chan struct{}
	exit Exit
}

func newExitRecord() exitRecord { return exitRecord{done: make(chan struct{})} }

// set records e; the caller holds the process's lock.
func (r *exitRecord) set(e Exit) {
	select {
	case <-r.done:
		return
	default:
	}
	r.exit = e
	close(r.done)
}

func (r *exitRecord) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startIO makes a process's stdio: a console socket for a terminal
// (libcontainer makes the pty in the container), else pipes.
func startIO(ctx context.Context, id, ns string, s Stdio, uid, gid int, r Reaper, logw *jsonfile.Writer) (*pipeIO, *consoleSocket, error) {
	if s.Terminal {
		sock, err := newConsoleSocket()
		return nil, sock, err
	}
	pio, err := newPipeIO(ctx, id, ns, s, uid, gid, r, logw)
	return pio, nil, err
}

// finishIO is the second half of startIO, once libcontainer has started
// the process: take the pty and start copying, or drop the pipe ends.
func finishIO(ctx context.Context, pio *pipeIO, sock *consoleSocket, s Stdio, logw *jsonfile.Writer) (procIO, *console, error) {
	if sock == nil {
		pio.Started()
		return pio, nil, nil
	}
	master, err := sock.receive()
	if err != nil {
		return nil, nil, err
	}
	c, err := newConsole(ctx, master, s, logw)
	if err != nil {
		return nil, nil, err
	}
	return c, c, nil
}

// drainAndClose waits (bounded) for the output copies, then closes the
// process's stdio.
func drainAndClose(ctx context.Context, id string, pio procIO) {
	if pio == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, ioDrainTimeout)
	defer cancel()
	if err := pio.Wait(wctx); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("output of the process was not all copied out")
	}
	pio.Close()
}

// writePidFile records pid in the bundle as containerd's runc shim does
// (init.pid, <exec-id>.pid): tools that look for a task's processes
// there find them.
func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// runtimeErr turns libcontainer's sentinels into errdefs ones, keeping
// the original in the chain.
func runtimeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, libcontainer.ErrNotExist), errors.Is(err, libcontainer.ErrNotRunning):
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	case errors.Is(err, libcontainer.ErrExist):
		return fmt.Errorf("%w: %w", errdefs.ErrAlreadyExists, err)
	case errors.Is(err, libcontainer.ErrBadID):
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}
	return err
}

// warnLog passes libcontainer's warnings (a failing poststop hook, a
// kill after a failed poststart one) to the shim's log.
type warnLog struct{ ctx context.Context }

func (w warnLog) Write(p []byte) (int, error) {
	log.G(w.ctx).Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}

// lifecycle is what Init and Exec share: the mutex with the state
// (operations hold it for their whole length, so two RPCs on one process
// never interleave) and the exit record.
type lifecycle struct {
	mu    sync.Mutex
	state state
	exit  exitRecord
}

func newLifecycle(initial state) lifecycle {
	return lifecycle{state: initial, exit: newExitRecord()}
}

// statusLocked reads the status; the caller holds mu.
func (l *lifecycle) statusLocked() Status { return l.state.Status() }

func (l *lifecycle) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statusLocked()
}

func (l *lifecycle) ExitStatus() (int, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exit.exit.Status, l.exit.exit.At
}

func (l *lifecycle) Wait(ctx context.Context) error { return l.exit.wait(ctx) }

// SetExited records the exit, once: a process that is already stopped
// (or deleted) refuses the move and reports false.
func (l *lifecycle) SetExited(x Exit) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	next, err := l.state.transition(Stopped)
	if err != nil {
		return false
	}
	l.state = next
	l.exit.set(x)
	return true
}
