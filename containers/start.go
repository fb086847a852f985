package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/restart"
)

// Streams are the caller's ends of an attached container's stdio.
type Streams struct {
	// Stdin is nil unless the container's stdin is attached (-i).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal says the container has a tty (-t): its output comes on
	// Stdout alone.
	Terminal bool
}

// Task is a started container, for waiting on it, signalling it and
// resizing its terminal.
type Task struct {
	ID        string
	container containerd.Container
	task      containerd.Task
	exitC     <-chan containerd.ExitStatus
	attached  bool
	keepTask  bool // a restart policy's monitor owns the exited task
	removed   bool // removed by the caller once it exits: no exit record
	oom       *oomWatch
}

// ErrAlreadyRunning is wrapped by Start's error for a running container.
var ErrAlreadyRunning = errors.New("container is already running")

// StartOptions say how to start a container.
type StartOptions struct {
	// Streams attach the container; nil starts it detached: no stdio of
	// its own (the shim's json-file log still gets its output), but for
	// a container made with -i, a stdin fifo the shim holds open (so that
	// `sh` waits, as under docker).
	Streams *Streams
	// DataRoot holds that stdin fifo, in the container's directory.
	DataRoot string
	// RemoveAfter says the caller removes the container once Wait
	// returns (run --rm): its exit is not recorded, to be deleted at once,
	// and its networks are left to Remove.
	RemoveAfter bool
}

// Start starts the container id as `docker start` does. It clears the
// stopped-by-user mark and the restart count.
func Start(ctx context.Context, client *containerd.Client, id string, opts StartOptions) (*Task, error) {
	streams := opts.Streams
	c, err := client.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	if err := clearOldTask(ctx, c); err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	t := &Task{ID: id, container: c, attached: streams != nil, keepTask: keepsExitedTask(info.Labels), removed: opts.RemoveAfter}
	creator := cio.NullIO
	var stdin *stdinCloser
	if streams == nil && opts.DataRoot != "" {
		var rec stored
		if readStored(info, &rec) == nil && rec.Config.OpenStdin {
			if creator, err = heldStdin(containerDir(opts.DataRoot, id), rec.Config.Tty); err != nil {
				return nil, err
			}
		}
	}
	if streams != nil {
		var opts []cio.Opt
		if streams.Stdin != nil {
			stdin = &stdinCloser{r: streams.Stdin, ready: make(chan struct{})}
			opts = append(opts, cio.WithStreams(stdin, streams.Stdout, streams.Stderr))
		} else {
			opts = append(opts, cio.WithStreams(nil, streams.Stdout, streams.Stderr))
		}
		if streams.Terminal {
			opts = append(opts, cio.WithTerminal)
		}
		creator = cio.NewCreator(opts...)
	}
	if streams != nil {
		// A detached container's OOM kill is the monitor's to record.
		t.oom = watchOOM(ctx, client, id)
	}
	task, err := newTaskWithNetwork(ctx, c, info, creator)
	if err != nil {
		t.oom.stop()
		if stdin != nil {
			close(stdin.ready) // no task: its copy ends at EOF alone
		}
		return nil, err
	}
	t.task = task
	if stdin != nil {
		stdin.task = task
		close(stdin.ready)
	}
	if t.exitC, err = task.Wait(ctx); err != nil {
		t.abort(ctx)
		return nil, fmt.Errorf("wait for container %s: %w", id, err)
	}
	// One update: the start time, the last run's exit forgotten, and
	// restart's reset of a user's start.
	labels := restart.UserStartLabels()
	labels[restart.LabelStartedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	if err := setLabels(ctx, c, labels, restart.LabelOOMKilled, restart.LabelExitCode, restart.LabelFinishedAt); err != nil {
		t.abort(ctx)
		return nil, err
	}
	if err := task.Start(ctx); err != nil {
		t.abort(ctx)
		return nil, taskError(id, err)
	}
	return t, nil
}

// newTaskWithNetwork creates c's task, its networks brought up first
// (cni.NewTask), or, for --net container:X, once X's namespace is there.
func newTaskWithNetwork(ctx context.Context, c containerd.Container, info containers.Container, creator cio.Creator) (containerd.Task, error) {
	if err := checkJoined(ctx, info); err != nil {
		return nil, err
	}
	return cni.NewTask(ctx, info, func() (containerd.Task, error) {
		task, err := c.NewTask(ctx, creator)
		if err != nil {
			return nil, taskError(c.ID(), err)
		}
		return task, nil
	})
}

// checkJoined refuses to start a --net container:X container while X's
// namespace is not there (X not running), with docker's words.
func checkJoined(ctx context.Context, info containers.Container) error {
	if info.Labels[cni.ContainerLabel] != "" {
		return nil // on networks of its own
	}
	var rec stored
	if readStored(info, &rec) != nil || !strings.HasPrefix(rec.HostConfig.NetworkMode, "container:") {
		return nil
	}
	spec, err := typeurl.UnmarshalAny(info.Spec)
	if err != nil {
		return nil
	}
	s, ok := spec.(*specs.Spec)
	if !ok || s.Linux == nil {
		return nil
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path != "" {
			if _, err := os.Stat(ns.Path); err != nil {
				return fmt.Errorf("cannot join network of a non running container: %s: start it first: %w",
					strings.TrimPrefix(rec.HostConfig.NetworkMode, "container:"), errdefs.ErrFailedPrecondition)
			}
		}
	}
	return nil
}

// abort takes down a task that did not start, and its networks.
func (t *Task) abort(ctx context.Context) {
	t.oom.stop()
	ctx = context.WithoutCancel(ctx)
	if _, err := t.task.Delete(ctx, containerd.WithProcessKill); err != nil {
		log.G(ctx).WithError(err).Warnf("delete the task of container %s that did not start", t.ID)
	}
	if err := cni.DownIfStopped(ctx, t.container); err != nil {
		log.G(ctx).WithError(err).Warnf("take down the network of container %s that did not start", t.ID)
	}
}

// clearOldTask deletes the exited task a container may still have, and
// refuses a running one.
func clearOldTask(ctx context.Context, c containerd.Container) error {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	switch st.Status {
	case containerd.Stopped:
		if err := recordExit(ctx, c, st.ExitStatus, st.ExitTime, false); err != nil {
			return err
		}
	case containerd.Created:
	default:
		return fmt.Errorf("container %s: %w", c.ID(), ErrAlreadyRunning)
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: delete its exited task: %w", c.ID(), err)
	}
	return nil
}

// Pid is the container's init as the host sees it.
func (t *Task) Pid() uint32 { return t.task.Pid() }

// Resize sets the container's terminal size.
func (t *Task) Resize(ctx context.Context, width, height uint32) error {
	return t.task.Resize(ctx, width, height)
}

// Kill sends the signal to the container's init.
func (t *Task) Kill(ctx context.Context, sig syscall.Signal) error {
	return t.task.Kill(ctx, sig)
}

// Wait waits until the container exits and returns its exit code. An
// attached container's output is flushed first. Unless a restart policy
// hands the exited task to the monitor, the task goes and its exit is
// recorded in the container's labels.
func (t *Task) Wait(ctx context.Context) (int, error) {
	var st containerd.ExitStatus
	select {
	case st = <-t.exitC:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	ctx = context.WithoutCancel(ctx)
	if t.attached {
		t.task.CloseIO(ctx, containerd.WithStdinCloser)
		if io := t.task.IO(); io != nil {
			io.Wait()
		}
	}
	oom := t.oom.stop()
	if err := st.Error(); err != nil {
		return 0, fmt.Errorf("wait for container %s: %w", t.ID, err)
	}
	if !t.keepTask {
		if _, err := t.task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return int(st.ExitCode()), fmt.Errorf("delete the exited task of container %s: %w", t.ID, err)
		}
		if t.removed {
			// The caller's Remove takes the networks down with the rest.
			return int(st.ExitCode()), nil
		}
		// The restart monitor takes the networks down at the exit too;
		// a containerd without it leaves that to berth.
		if err := cni.DownIfStopped(ctx, t.container); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warnf("take down the network of container %s", t.ID)
		}
		// A --rm container may be gone already: the restart monitor
		// removes it as soon as it exits, as docker's daemon does.
		if err := recordExit(ctx, t.container, st.ExitCode(), st.ExitTime(), oom); err != nil && !errdefs.IsNotFound(err) {
			return int(st.ExitCode()), err
		}
	} else if io := t.task.IO(); io != nil {
		io.Close()
	}
	return int(st.ExitCode()), nil
}

// recordExit writes a finished run into the container's labels.
func recordExit(ctx context.Context, c containerd.Container, code uint32, at time.Time, oom bool) error {
	set := map[string]string{restart.LabelExitCode: fmt.Sprint(code), restart.LabelFinishedAt: at.UTC().Format(time.RFC3339Nano)}
	var drop []string
	if oom {
		set[restart.LabelOOMKilled] = "true"
	}
	return setLabels(ctx, c, set, drop...)
}

// setLabels sets and removes labels of c in one update.
func setLabels(ctx context.Context, c containerd.Container, set map[string]string, drop ...string) error {
	labels := map[string]string{}
	for k, v := range set {
		labels[k] = v
	}
	for _, k := range drop {
		labels[k] = "" // an empty value removes the label
	}
	if _, err := c.SetLabels(ctx, labels); err != nil {
		return fmt.Errorf("container %s: update its labels: %w", c.ID(), err)
	}
	return nil
}

// stdinCloser passes stdin to the container and, at its end, closes the
// container's stdin (the fifo's end alone does not reach the shim).
type stdinCloser struct {
	r     io.Reader
	task  containerd.Task
	ready chan struct{}
	once  sync.Once
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.once.Do(func() {
			<-s.ready
			if s.task == nil {
				return
			}
			if err := s.task.CloseIO(context.Background(), containerd.WithStdinCloser); err != nil {
				log.L.WithError(err).Debug("close the container's stdin")
			}
		})
	}
	return n, err
}

// oomWatch notes the container's OOM kills while a run is attached.
type oomWatch struct {
	cancel context.CancelFunc
	done   chan bool
}

func watchOOM(ctx context.Context, client *containerd.Client, id string) *oomWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &oomWatch{cancel: cancel, done: make(chan bool, 1)}
	events, errs := client.EventService().Subscribe(ctx, `topic=="/tasks/oom"`)
	go func() {
		killed := false
		defer func() { w.done <- killed }()
		for {
			select {
			case e := <-events:
				v, err := typeurl.UnmarshalAny(e.Event)
				if oom, ok := v.(*eventstypes.TaskOOM); err == nil && ok && oom.ContainerID == id {
					killed = true
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

// stop ends the watch and says whether the container was OOM-killed.
func (w *oomWatch) stop() bool {
	if w == nil {
		return false
	}
	w.cancel()
	return <-w.done
}

// Exit statuses docker gives when a container's command cannot run.
const (
	ExitCannotRun = 126
	ExitNotFound  = 127
)

// ExitError is a container command that could not run; Code is docker's
// status for it.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// taskError words a failed task create or start, and gives docker's 127
// for a command not found and 126 for one that cannot run.
func taskError(id string, err error) error {
	err = fmt.Errorf("failed to create task for container %s: %w", id, err)
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &ExitError{Code: ExitNotFound, Err: err}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "not an executable"), strings.Contains(msg, "exec format error"), strings.Contains(msg, "is a directory"):
		return &ExitError{Code: ExitCannotRun, Err: err}
	}
	return err
}

// heldStdin is a detached task's stdio when it has -i: a stdin fifo in
// dir that no one writes yet, which the shim holds open for the container
// (and for whoever writes to it later), and no output but the log.
func heldStdin(dir string, tty bool) (cio.Creator, error) {
	path := filepath.Join(dir, "stdin")
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("make the container's stdin fifo: %w", err)
	}
	return func(string) (cio.IO, error) {
		return fifoOnly{cio.Config{Stdin: path, Terminal: tty}}, nil
	}, nil
}

// fifoOnly is a task's stdio that berth does not copy: the shim opens the
// fifos it names.
type fifoOnly struct{ config cio.Config }

func (f fifoOnly) Config() cio.Config { return f.config }
func (fifoOnly) Cancel()              {}
func (fifoOnly) Wait()                {}
func (fifoOnly) Close() error         { return nil }
