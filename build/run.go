package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/containers"
)

// tailLines is how many of a failing RUN's last output lines its error
// shows.
const tailLines = 10

// RunError is a RUN step that exited non-zero.
type RunError struct {
	Command  []string
	ExitCode uint32
	Tail     string // the last output lines
}

func (e *RunError) Error() string {
	msg := fmt.Sprintf("RUN %s: exit code %d", strings.Join(e.Command, " "), e.ExitCode)
	if e.Tail != "" {
		msg += "; its last output:\n" + e.Tail
	}
	return msg
}

// stepNetwork is the RUN steps' network, from the options.
func (b *builder) stepNetwork() containers.StepNetwork {
	return containers.StepNetwork{Mode: b.opts.Network, Networks: b.opts.Networks, NetNSDir: b.opts.NetNSDir, DataRoot: b.opts.DataRoot}
}

// runArgs is a RUN's argv: exec form as written, shell form through SHELL.
func runArgs(st *state, c *instructions.ShellDependantCmdLine) []string {
	return commandLine(st, c)
}

// run runs a RUN step as a container on berth's runtime over a snapshot
// of st, with the image's env, user and workdir and the ARGs in scope;
// its changes become st's next layer.
func (b *builder) run(ctx context.Context, st *state, c *instructions.RunCommand) error {
	if len(c.Files) > 0 {
		return fmt.Errorf("RUN with a heredoc is not supported yet: %w", errdefs.ErrNotImplemented)
	}
	if len(c.FlagsUsed) > 0 {
		// --mount, --network and --security would change what the step
		// does: refused rather than ignored.
		return fmt.Errorf("RUN --%s is not supported yet: %w", strings.Join(c.FlagsUsed, ", --"), errdefs.ErrNotImplemented)
	}
	args := runArgs(st, &c.ShellDependantCmdLine)
	return b.withLayer(ctx, st, func(key string) error {
		return b.runContainer(ctx, st, key, args)
	})
}

// runContainer runs args in a container on the snapshot key and waits
// for it; the container and its task are gone when it returns.
func (b *builder) runContainer(ctx context.Context, st *state, key string, args []string) (err error) {
	cfg := st.img.Config
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	specOpts := []oci.SpecOpts{oci.WithProcessArgs(args...), oci.WithEnv(st.env()), oci.WithProcessCwd(cwd)}
	if cfg.User != "" {
		specOpts = append(specOpts, oci.WithUser(cfg.User))
	}
	id := "berth-build-" + randomHex()
	// The network is released last: after the task (whose exit may take
	// it down first, in containerd's restart monitor) and the container.
	net, err := b.stepNetwork().Prepare(ctx, b.client, id)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := net.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			err = rerr
		}
	}()
	specOpts = append(specOpts, net.SpecOpts...)
	newOpts := append([]containerd.NewContainerOpts{
		containerd.WithSnapshotter(b.snapshotter), containerd.WithSnapshot(key),
		containerd.WithNewSpec(containers.StepSpecOpts(specOpts...)...),
	}, net.ContainerOpts...)
	if b.opts.Runtime != "" {
		newOpts = append(newOpts, containerd.WithRuntime(b.opts.Runtime, b.opts.RuntimeOptions))
	}
	container, err := b.client.NewContainer(ctx, id, newOpts...)
	if err != nil {
		return fmt.Errorf("create the RUN container: %w", err)
	}
	defer container.Delete(context.WithoutCancel(ctx))
	info, err := container.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return fmt.Errorf("read the RUN container: %w", err)
	}

	tail := &tailWriter{max: tailLines}
	var out io.Writer = tail
	if !b.opts.Quiet {
		out = io.MultiWriter(b.out, tail)
	}
	// On a network, the step's namespace is made and attached first.
	task, err := cni.NewTask(ctx, info, func() (containerd.Task, error) {
		return container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, out)))
	})
	if err != nil {
		return fmt.Errorf("start the RUN container: %w", err)
	}
	defer func() {
		if _, derr := task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill); derr != nil && err == nil && !errdefs.IsNotFound(derr) {
			err = fmt.Errorf("delete the RUN task: %w", derr)
		}
	}()
	exit, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait for the RUN container: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		return fmt.Errorf("start the RUN container: %w", err)
	}
	var status containerd.ExitStatus
	select {
	case status = <-exit:
	case <-ctx.Done():
		_ = task.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		<-exit
		return ctx.Err()
	}
	task.CloseIO(ctx, containerd.WithStdinCloser)
	if status.Error() != nil {
		return fmt.Errorf("RUN container: %w", status.Error())
	}
	if code := status.ExitCode(); code != 0 {
		// The output copies end when the task is deleted; wait for them so
		// the tail is whole.
		if _, derr := task.Delete(context.WithoutCancel(ctx)); derr == nil {
			task.IO().Wait()
		}
		return &RunError{Command: args, ExitCode: code, Tail: tail.String()}
	}
	return nil
}

// tailWriter keeps the last max lines written to it.
type tailWriter struct {
	mu    sync.Mutex
	max   int
	lines [][]byte
	part  []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := append(t.part, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, append([]byte(nil), data[:i]...))
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
		data = data[i+1:]
	}
	t.part = append([]byte(nil), data...)
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([][]byte(nil), t.lines...)
	if len(t.part) > 0 {
		lines = append(lines, t.part)
	}
	if len(lines) > t.max {
		lines = lines[len(lines)-t.max:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
