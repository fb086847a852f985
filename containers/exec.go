package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions are `docker exec`'s flags.
type ExecOptions struct {
	Cmd     []string
	Env     []string
	Workdir string
	User    string
	Tty     bool
	// ConsoleSize is the terminal's size (height, width) at start.
	ConsoleSize [2]uint
	// Detach starts the process without stdio and returns at once.
	Detach bool
}

// Process is a started exec process.
type Process struct {
	process containerd.Process
	exitC   <-chan containerd.ExitStatus
	id      string
}

// Exec starts a process in running container c as `docker exec` does:
// the container's process settings with the command, environment
// (appended), working directory and user given; attached to streams, or
// with none when opts.Detach.
func Exec(ctx context.Context, client *containerd.Client, c containerd.Container, opts ExecOptions, streams *Streams) (*Process, error) {
	if len(opts.Cmd) == 0 {
		return nil, fmt.Errorf("exec: no command given: %w", errdefs.ErrInvalidArgument)
	}
	task, running, err := runningTask(ctx, c)
	if err != nil {
		return nil, err
	}
	if !running {
		return nil, fmt.Errorf("container %s is not running: %w", c.ID(), ErrNotRunning)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: read its spec: %w", c.ID(), err)
	}
	pspec := *spec.Process
	spec.Process = &pspec
	pspec.Args, pspec.Terminal = opts.Cmd, opts.Tty
	pspec.Env = append(append([]string{}, pspec.Env...), opts.Env...)
	if opts.Tty {
		pspec.Env = append(pspec.Env, "TERM=xterm")
		pspec.ConsoleSize = nil
		if opts.ConsoleSize[0] > 0 && opts.ConsoleSize[1] > 0 {
			pspec.ConsoleSize = &specs.Box{Height: opts.ConsoleSize[0], Width: opts.ConsoleSize[1]}
		}
	}
	if opts.Workdir != "" {
		if !filepath.IsAbs(opts.Workdir) {
			return nil, fmt.Errorf("exec -w %q: the working directory must be absolute: %w", opts.Workdir, errdefs.ErrInvalidArgument)
		}
		pspec.Cwd = opts.Workdir
	}
	if opts.User != "" {
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID(), err)
		}
		if err := oci.ApplyOpts(ctx, client, &info, spec, withUser(opts.User), withUserGroups); err != nil {
			return nil, fmt.Errorf("exec -u %s: %w", opts.User, err)
		}
	}
	creator := cio.NullIO
	if !opts.Detach && streams != nil {
		sopts := []cio.Opt{cio.WithStreams(streams.Stdin, streams.Stdout, streams.Stderr)}
		if opts.Tty {
			sopts = append(sopts, cio.WithTerminal)
		}
		creator = cio.NewCreator(sopts...)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("exec ID: %w", err)
	}
	id := "exec-" + hex.EncodeToString(b)
	process, err := task.Exec(ctx, id, &pspec, creator)
	if err != nil {
		return nil, taskError(c.ID(), err)
	}
	p := &Process{process: process, id: id}
	if p.exitC, err = process.Wait(ctx); err != nil {
		process.Delete(ctx)
		return nil, fmt.Errorf("exec in %s: %w", c.ID(), err)
	}
	if err := process.Start(ctx); err != nil {
		process.Delete(context.WithoutCancel(ctx))
		return nil, taskError(c.ID(), err)
	}
	return p, nil
}

// Resize sets the exec process's terminal size.
func (p *Process) Resize(ctx context.Context, width, height uint32) error {
	return p.process.Resize(ctx, width, height)
}

// Wait waits for the process to exit, flushes its output, removes it and
// gives its exit code.
func (p *Process) Wait(ctx context.Context) (int, error) {
	var st containerd.ExitStatus
	select {
	case st = <-p.exitC:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	ctx = context.WithoutCancel(ctx)
	p.process.CloseIO(ctx, containerd.WithStdinCloser)
	if io := p.process.IO(); io != nil {
		io.Wait()
	}
	if _, err := p.process.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return int(st.ExitCode()), fmt.Errorf("remove exec process %s: %w", p.id, err)
	}
	return int(st.ExitCode()), st.Error()
}

// Kill sends sig to the exec process.
func (p *Process) Kill(ctx context.Context, sig syscall.Signal) error {
	return p.process.Kill(ctx, sig)
}
