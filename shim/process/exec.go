package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/libcontainer"
)

// Exec is a process exec'd into a container.
type Exec struct {
	lifecycle
	id      string
	parent  *Init
	spec    *specs.Process
	stdio   Stdio
	pid     int
	proc    *libcontainer.Process
	io      procIO
	console *console
}

func (e *Exec) ID() string   { return e.id }
func (e *Exec) Stdio() Stdio { return e.stdio }

func (e *Exec) Pid() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pid
}

// Start execs the process into the container. The caller holds the
// reaper and tracks Pid once it has published the start.
func (e *Exec) Start(ctx context.Context) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	next, err := e.state.transition(Running)
	if err != nil {
		return err
	}
	p := e.parent
	pio, sock, err := startIO(ctx, e.id, p.ns, e.stdio, p.ioUID, p.ioGID, p.reaper, nil)
	if err != nil {
		return err
	}
	if sock != nil {
		defer sock.Close()
	}
	opts := libcontainer.ExecOpts{Process: e.spec, InitPath: p.runtime}
	if sock != nil {
		opts.ConsoleSocket = sock.Path()
		if opts.Stdin, opts.Stdout, opts.Stderr, err = nullStdio(); err != nil {
			return err
		}
		defer closeAll(opts.Stdin, opts.Stdout, opts.Stderr)
	} else {
		opts.Stdin, opts.Stdout, opts.Stderr = pio.Files()
	}
	proc, err := p.container.Exec(ctx, opts)
	if err != nil {
		if pio != nil {
			pio.closeProc()
			pio.Close()
		}
		return runtimeErr(err)
	}
	if e.io, e.console, err = finishIO(ctx, pio, sock, e.stdio, nil); err != nil {
		proc.Signal(syscall.SIGKILL)
		if pio != nil {
			pio.Close()
		}
		// It was started: its exit still comes, and the caller tracks it.
		e.proc, e.pid, e.state = proc, proc.Pid(), next
		return err
	}
	e.proc, e.pid, e.state = proc, proc.Pid(), next
	if err := writePidFile(filepath.Join(p.bundle, e.id+".pid"), e.pid); err != nil {
		log.G(ctx).WithError(err).Warn("record exec pid")
	}
	if err := recordStdio(p.bundle, e.id, e.stdio); err != nil {
		log.G(ctx).WithError(err).Warn("record exec stdio")
	}
	return nil
}

// Kill signals the process. all is for the container's init: an exec'd
// process has nothing below it that the task API can name.
func (e *Exec) Kill(ctx context.Context, sig uint32, all bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.statusLocked() {
	case Created:
		return fmt.Errorf("%w: exec %s was not started", errdefs.ErrFailedPrecondition, e.id)
	case Stopped, Deleted:
		return fmt.Errorf("%w: process already finished", errdefs.ErrNotFound)
	}
	// The handle signals through a pidfd: once the process is reaped,
	// no later process with the same pid can get the signal.
	if err := e.proc.Signal(syscall.Signal(sig)); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("%w: process already finished", errdefs.ErrNotFound)
		}
		return fmt.Errorf("signal exec %s: %w", e.id, err)
	}
	return nil
}

// Delete forgets a process that has exited (or never started), once its
// output is copied out.
func (e *Exec) Delete(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	next, err := e.state.transition(Deleted)
	if err != nil {
		return err
	}
	drainAndClose(context.WithoutCancel(ctx), e.id, e.io)
	os.Remove(filepath.Join(e.parent.bundle, e.id+".pid"))
	forgetStdio(e.parent.bundle, e.id)
	e.state = next
	return nil
}

func (e *Exec) Resize(width, height uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.console == nil {
		return nil
	}
	return e.console.Resize(width, height)
}

func (e *Exec) CloseStdin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.io == nil {
		return nil
	}
	return e.io.CloseStdin()
}
