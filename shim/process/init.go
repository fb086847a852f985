package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/logs/jsonfile"
)

// CreateConfig is what Create needs to make a container.
type CreateConfig struct {
	ID, Bundle, Namespace string
	// Root is libcontainer's state root for this shim's namespace.
	Root string
	// Runtime is the berth-runtime binary the container's processes start
	// from (FindRuntime).
	Runtime string
	Rootfs  []mount.Mount
	Stdio   Stdio
	// NoPivot, IoUID and IoGID come from the runtime options (runc's
	// Options); IoUID/IoGID -1 leave the pipes root's.
	NoPivot      bool
	IoUID, IoGID int
}

// Init is a container's init process, and the handle on the container.
type Init struct {
	lifecycle
	id, bundle, rootfs, ns string
	// root is libcontainer's state root of the container.
	root         string
	stdio        Stdio
	ioUID, ioGID int
	runtime      string // FindRuntime's, for exec too
	reaper       Reaper
	container    *libcontainer.Container
	pid          int
	io           procIO
	console      *console
	// log is the container's json-file log, when its spec asks for one.
	log *jsonfile.Writer
}

// Create mounts the rootfs, makes the container with libcontainer and
// leaves its init waiting for Start. The caller holds the reaper (the
// init is not tracked yet) and tracks Pid once it has published the
// create. On failure nothing is left: no mount, no container, no pipes.
func Create(ctx context.Context, cfg CreateConfig, r Reaper) (_ *Init, err error) {
	p := &Init{
		lifecycle: newLifecycle(initCreated{}), id: cfg.ID, bundle: cfg.Bundle, ns: cfg.Namespace, root: cfg.Root,
		stdio: cfg.Stdio, ioUID: cfg.IoUID, ioGID: cfg.IoGID, runtime: cfg.Runtime, reaper: r,
	}
	if len(cfg.Rootfs) > 0 {
		p.rootfs = filepath.Join(cfg.Bundle, "rootfs")
		if err := os.Mkdir(p.rootfs, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create rootfs dir: %w", err)
		}
		if err := mount.All(cfg.Rootfs, p.rootfs); err != nil {
			mount.UnmountMounts(cfg.Rootfs, p.rootfs, 0)
			return nil, fmt.Errorf("mount rootfs of %s: %w", cfg.ID, err)
		}
		defer func() {
			if err != nil {
				if uerr := mount.UnmountRecursive(p.rootfs, 0); uerr != nil {
					log.G(ctx).WithError(uerr).Warn("unmount rootfs after a failed create")
				}
			}
		}()
	}
	if p.log, err = openLog(cfg.Bundle); err != nil {
		return nil, err
	}
	if p.log != nil {
		defer func() {
			if err != nil {
				p.log.Close()
			}
		}()
	}
	pio, sock, err := startIO(ctx, cfg.ID, cfg.Namespace, cfg.Stdio, cfg.IoUID, cfg.IoGID, r, p.log)
	if err != nil {
		return nil, err
	}
	if sock != nil {
		defer sock.Close()
	}
	opts := libcontainer.CreateOpts{Root: cfg.Root, InitPath: cfg.Runtime, ID: cfg.ID, Bundle: cfg.Bundle, NoPivot: cfg.NoPivot}
	if sock != nil {
		opts.ConsoleSocket = sock.Path()
		// The process's own stdio is unused (the pty replaces it); it
		// must not be the shim's.
		if opts.Stdin, opts.Stdout, opts.Stderr, err = nullStdio(); err != nil {
			return nil, err
		}
		defer closeAll(opts.Stdin, opts.Stdout, opts.Stderr)
	} else {
		opts.Stdin, opts.Stdout, opts.Stderr = pio.Files()
	}
	c, err := libcontainer.Create(ctx, opts)
	if err != nil {
		if pio != nil {
			pio.closeProc()
			pio.Close()
		}
		return nil, runtimeErr(err)
	}
	defer func() {
		if err != nil {
			c.Delete(context.WithoutCancel(ctx), true, warnLog{ctx})
		}
	}()
	if p.io, p.console, err = finishIO(ctx, pio, sock, cfg.Stdio, p.log); err != nil {
		if pio != nil {
			pio.Close()
		}
		return nil, err
	}
	// A handle of our own: the one Create returns would reap init itself
	// (exec.Cmd.Wait) on a forced delete, and the shim's reaper owns that.
	p.container = c.Unowned()
	p.pid = p.container.InitPid()
	if err := writePidFile(filepath.Join(cfg.Bundle, "init.pid"), p.pid); err != nil {
		log.G(ctx).WithError(err).Warn("record init pid")
	}
	if err := recordStdio(cfg.Bundle, "", cfg.Stdio); err != nil {
		log.G(ctx).WithError(err).Warn("record init stdio")
	}
	return p, nil
}

func nullStdio() (in, out, errf *os.File, err error) {
	if in, err = devNull(true); err != nil {
		return nil, nil, nil, err
	}
	if out, err = devNull(false); err != nil {
		in.Close()
		return nil, nil, nil, err
	}
	if errf, err = devNull(false); err != nil {
		in.Close()
		out.Close()
		return nil, nil, nil, err
	}
	return in, out, errf, nil
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

func (p *Init) ID() string     { return p.id }
func (p *Init) Pid() int       { return p.pid }
func (p *Init) Stdio() Stdio   { return p.stdio }
func (p *Init) Bundle() string { return p.bundle }

// Container is the libcontainer handle, for stats, pids, OOM and spec.
func (p *Init) Container() *libcontainer.Container { return p.container }

// Start runs the user's program. The caller untracks the init (and holds
// the reaper) around it, so that an exit cannot be published before the
// start is.
func (p *Init) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next, err := p.state.transition(Running)
	if err != nil {
		return err
	}
	if err := p.container.Start(ctx, warnLog{ctx}); err != nil {
		return runtimeErr(err)
	}
	p.state = next
	return nil
}

// Kill signals init, or with all every process of the container. A
// stopped container takes "all" (what is left of it gets the signal, as
// a client making sure gets from runc) but not a signal to its init.
func (p *Init) Kill(ctx context.Context, sig uint32, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.statusLocked() {
	case Deleted:
		return fmt.Errorf("%w: container %s was deleted", errdefs.ErrNotFound, p.id)
	case Stopped:
		if !all {
			return fmt.Errorf("%w: process already finished", errdefs.ErrNotFound)
		}
	}
	// The runtime state removed behind the shim's back (`berth-runtime
	// delete --force`, which also kills the processes): the container is
	// gone, as runc's shim reports it, even before its init is reaped;
	// the reaper still publishes the exit.
	if _, err := libcontainer.Load(p.root, p.id); errors.Is(err, libcontainer.ErrNotExist) {
		return fmt.Errorf("%w: container %s: its runtime state was removed outside the shim: %w", errdefs.ErrNotFound, p.id, err)
	}
	var err error
	if all {
		err = p.container.KillAll(syscall.Signal(sig))
	} else {
		err = p.container.Kill(syscall.Signal(sig))
	}
	return runtimeErr(err)
}

// KillAll kills every process left in the container: an init without a
// pid namespace of its own leaves its children running when it exits.
func (p *Init) KillAll() error {
	return runtimeErr(p.container.KillAll(syscall.SIGKILL))
}

func (p *Init) Pause(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next, err := p.state.transition(Paused)
	if err != nil {
		return err
	}
	if err := p.container.Pause(); err != nil {
		return runtimeErr(err)
	}
	p.state = next
	return nil
}

func (p *Init) Resume(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.statusLocked() != Paused {
		return fmt.Errorf("%w: container %s is %s, not paused", errdefs.ErrFailedPrecondition, p.id, p.statusLocked())
	}
	next, err := p.state.transition(Running)
	if err != nil {
		return err
	}
	if err := p.container.Resume(); err != nil {
		return runtimeErr(err)
	}
	p.state = next
	return nil
}

// Update applies new resource limits.
func (p *Init) Update(ctx context.Context, res *specs.LinuxResources) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch st := p.statusLocked(); st {
	case Stopped, Deleted:
		return fmt.Errorf("%w: cannot update a %s container", errdefs.ErrFailedPrecondition, st)
	}
	return runtimeErr(p.container.Update(res))
}

// Delete removes the container: its processes (a created one's init is
// killed), cgroup and state, then its stdio and rootfs mounts.
func (p *Init) Delete(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasCreated := p.statusLocked() == Created
	next, err := p.state.transition(Deleted)
	if err != nil {
		return err
	}
	// Never cancelled halfway: a delete that stops early leaks a cgroup
	// or a mount.
	ctx = context.WithoutCancel(ctx)
	if err := p.container.Delete(ctx, true, warnLog{ctx}); err != nil && !errors.Is(err, libcontainer.ErrNotExist) {
		return runtimeErr(err)
	}
	drainAndClose(ctx, p.id, p.io)
	if p.log != nil {
		if err := p.log.Close(); err != nil {
			log.G(ctx).WithError(err).WithField("id", p.id).Warn("close the container's log")
		}
	}
	if p.rootfs != "" {
		if err := mount.UnmountRecursive(p.rootfs, 0); err != nil {
			return fmt.Errorf("unmount rootfs of %s: %w", p.id, err)
		}
	}
	p.state = next
	if wasCreated {
		// It never ran: its waiters learn it was killed.
		p.exit.set(Exit{Pid: p.pid, Status: 128 + int(syscall.SIGKILL), At: time.Now()})
	}
	return nil
}

func (p *Init) Resize(width, height uint32) error {
	if p.console == nil {
		return nil
	}
	return p.console.Resize(width, height)
}

func (p *Init) CloseStdin() error {
	if p.io == nil {
		return nil
	}
	return p.io.CloseStdin()
}

// NewExec records a process to exec into the container; Start runs it.
func (p *Init) NewExec(id string, spec *specs.Process, s Stdio) (*Exec, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch st := p.statusLocked(); st {
	case Stopped, Deleted:
		return nil, fmt.Errorf("%w: cannot exec in a %s container", errdefs.ErrFailedPrecondition, st)
	}
	if spec == nil || len(spec.Args) == 0 {
		return nil, fmt.Errorf("%w: exec %s: no process args", errdefs.ErrInvalidArgument, id)
	}
	// The request's terminal wins over the spec's, as with containerd's
	// runc shim: the stdio (a console socket, or pipes) follows the
	// request, and the process must expect what it gets.
	spec.Terminal = s.Terminal
	return &Exec{lifecycle: newLifecycle(execCreated{}), id: id, parent: p, spec: spec, stdio: s}, nil
}
