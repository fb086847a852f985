// Package task is the shim's ttrpc task service (containerd's task API
// v3). It drives libcontainer in-process through shim/process, owns every
// exit through shim/reaper, and publishes the task events in order.
//
// Errors are errdefs sentinels wrapped with %w down to here; they become
// ttrpc codes only at the edge, in the methods of this file.
package task

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"

	"github.com/berthrt/berth/shim/bootstrap"
	"github.com/berthrt/berth/shim/idle"
	"github.com/berthrt/berth/shim/options"
	"github.com/berthrt/berth/shim/pack"
	"github.com/berthrt/berth/shim/process"
	"github.com/berthrt/berth/shim/reaper"
	"github.com/berthrt/berth/shim/record"
)

var (
	_ shim.TTRPCService             = (*service)(nil)
	_ shim.TTRPCServerUnaryOptioner = (*service)(nil)
)

// service is the task service of one shim process, for every container
// of its group.
type service struct {
	ctx      context.Context
	reaper   exitReaper
	events   *eventQueue
	shutdown shutdown.Service
	// afterFunc runs f after d, as time.AfterFunc (tests use a clock of
	// their own).
	afterFunc func(d time.Duration, f func())

	// idle trims the process's memory when no request is in flight.
	idle *idle.Trimmer
	// packed says this shim serves a slot of shared shims (shim/pack):
	// packs and slot are where its containers are counted.
	packed bool
	packs  slots
	slot   int

	mu         sync.Mutex
	containers map[string]*container
	// linger is how long a shared shim left with no container waits for
	// the next one (the latest container's ShimLinger); lingerGen counts
	// the shutdowns and creates, so that a wait outdated by either does
	// not end the shim.
	linger    time.Duration
	lingerGen uint64
}

// exitReaper is what the service needs of the shim's reaper
// (shim/reaper): the one owner of exit statuses.
type exitReaper interface {
	// Hold keeps untracked children unreaped until release is called.
	Hold() (release func())
	Track(pid int, onExit func(reaper.Exit))
	Untrack(pid int)
}

// slots is what a shared shim needs of its namespace's packing state
// (shim/pack).
type slots interface {
	Release(slot int, id string, alive func(group string) bool) error
	Vacate(slot int) (bool, error)
}

// trimAfter is how long the shim waits without requests before it gives
// memory back (shim/idle): long enough that the requests of one create,
// start or exec arrive within it, short against a container's life.
const trimAfter = 500 * time.Millisecond

// vacateRetry is how often a shared shim left with no container checks
// whether the one it stayed for still comes.
const vacateRetry = 10 * time.Second

// UnaryServerInterceptor makes pkg/shim tell the trimmer about every
// request (Wait blocks for as long as the process runs: not work), and
// turns a panic while serving a request into that request's failure
// (recoverPanics).
func (s *service) UnaryServerInterceptor() ttrpc.UnaryServerInterceptor {
	return chainInterceptors(s.idle.Interceptor(), recoverPanics)
}

// New makes the task service. The shim's reaper is started here: the
// shim runs with containerd's own reaper off (shim.Config.NoReaper).
func New(ctx context.Context, publisher shim.Publisher, sd shutdown.Service) (taskAPI.TTRPCTaskService, error) {
	s := &service{
		ctx:        ctx,
		reaper:     reaper.New(),
		events:     newEventQueue(),
		shutdown:   sd,
		containers: map[string]*container{},
		idle:       idle.New(trimAfter, "/containerd.task.v3.Task/Wait"),
		afterFunc:  func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}
	s.packs, s.slot, s.packed = pack.FromEnv()
	process.WarmSpawn()
	go s.events.forward(ctx, publisher)
	sd.RegisterCallback(func(context.Context) error {
		s.events.close()
		<-s.events.done
		return nil
	})
	// The sockets go with the shim. containerd's shim library removes
	// the one named in the first container's bundle, if that is still
	// there; a shim serving a group outlives that bundle.
	for _, env := range []string{bootstrap.EnvSocket, bootstrap.EnvDebugSocket} {
		if address := os.Getenv(env); address != "" {
			sd.RegisterCallback(func(context.Context) error { return shim.RemoveSocket(address) })
		}
	}
	return s, nil
}

func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

func (s *service) send(e any) { s.events.push(e) }

func (s *service) get(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, fmt.Errorf("%w: container %s not created", errdefs.ErrNotFound, id)
	}
	return c, nil
}

func (s *service) getProcess(id, execID string) (*container, process.Process, error) {
	c, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.process(execID)
	return c, p, err
}

// Create makes the container and leaves its init waiting for Start.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	c, err := s.create(ctx, r)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &taskAPI.CreateTaskResponse{Pid: uint32(c.init.Pid())}, nil
}

func (s *service) create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*container, error) {
	if r.Checkpoint != "" || r.ParentCheckpoint != "" {
		return nil, fmt.Errorf("%w: restoring a checkpoint", errdefs.ErrNotImplemented)
	}
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	_, exists := s.containers[r.ID]
	s.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("%w: container %s", errdefs.ErrAlreadyExists, r.ID)
	}
	opts, err := options.Decode(r.Options.GetTypeUrl(), r.Options.GetValue())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}
	if len(opts.Ignored) > 0 {
		log.G(ctx).WithField("id", r.ID).Infof("runtime options that do not apply to berth, ignored: %v", opts.Ignored)
	}
	if err := options.Write(r.Bundle, opts); err != nil {
		return nil, err
	}
	runtimeBin, err := process.RuntimeFor(ctx, opts.RuntimeBinary, opts.BinaryName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrFailedPrecondition, err)
	}
	cfg := process.CreateConfig{
		ID: r.ID, Bundle: r.Bundle, Namespace: ns, Root: opts.StateRoot(ns), Runtime: runtimeBin,
		Rootfs: mount.FromProto(r.Rootfs), NoPivot: opts.NoPivotRoot,
		IoUID: int(opts.IoUID), IoGID: int(opts.IoGID),
		Stdio: process.Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
	}
	// Held until the init is tracked: until then its exit is nobody's.
	release := s.reaper.Hold()
	defer release()
	p, err := process.Create(ctx, cfg, s.reaper)
	if err != nil {
		return nil, err
	}
	c := newContainer(r.ID, r.Bundle, p)
	s.mu.Lock()
	s.containers[r.ID] = c
	s.linger = opts.Linger()
	s.lingerGen++
	s.mu.Unlock()
	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs, Checkpoint: r.Checkpoint, Pid: uint32(p.Pid()),
		IO: &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
	})
	// Watched from creation on: a process can run out of memory at once.
	c.watchOOM(s.ctx, s.send, func() any { return &eventstypes.TaskOOM{ContainerID: r.ID} })
	s.reaper.Track(p.Pid(), func(e reaper.Exit) { s.onInitExit(c, e) })
	return c, nil
}

// Start runs the init's program, or starts an exec'd process.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if e, ok := p.(*process.Exec); ok {
		err = s.startExec(ctx, c, e)
	} else {
		err = s.startInit(ctx, c)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &taskAPI.StartResponse{Pid: uint32(p.Pid())}, nil
}

// startInit untracks the init while it starts, so that a program that
// exits at once has its TaskExit published after its TaskStart.
func (s *service) startInit(ctx context.Context, c *container) error {
	pid := c.init.Pid()
	release := s.reaper.Hold()
	defer release()
	s.reaper.Untrack(pid)
	defer s.reaper.Track(pid, func(e reaper.Exit) { s.onInitExit(c, e) })
	if err := c.init.Start(ctx); err != nil {
		return err
	}
	s.send(&eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(pid)})
	return nil
}

func (s *service) startExec(ctx context.Context, c *container, e execProcess) error {
	if err := c.beginExec(); err != nil {
		return err
	}
	release := s.reaper.Hold()
	defer release()
	// Settled even when Start panics (recoverPanics fails the request and
	// the shim carries on): an exec that beginExec counted and nothing
	// settled would hold the init's exit back for good.
	err := errExecStartPanicked
	defer func() { s.settleExecStart(c, e, err) }()
	err = e.Start(ctx)
	return err
}

// errExecStartPanicked stands for the result of a Start that panicked.
var errExecStartPanicked = errors.New("exec start panicked")

// settleExecStart accounts for an exec's start: one that never started
// gets no exit, one that did is tracked until it exits.
func (s *service) settleExecStart(c *container, e execProcess, err error) {
	if e.Pid() == 0 {
		if pending := c.endExec(); pending != nil {
			s.publishInitExit(c, *pending)
		}
		return
	}
	if err == nil {
		s.send(&eventstypes.TaskExecStarted{ContainerID: c.id, ExecID: e.ID(), Pid: uint32(e.Pid())})
	}
	s.reaper.Track(e.Pid(), func(x reaper.Exit) { s.onExecExit(c, e, x) })
}

// onInitExit runs on the reaper's goroutine when a container's init is
// reaped.
func (s *service) onInitExit(c *container, e reaper.Exit) {
	if c.killAllOnExit {
		// Without a pid namespace of its own, the init's children live
		// on; they die with the container, as with runc.
		if err := c.exits.KillAll(); err != nil {
			log.G(s.ctx).WithError(err).WithField("id", c.id).Warn("kill the processes left after init exited")
		}
	}
	if c.initExit(e) {
		s.publishInitExit(c, e)
	}
}

func (s *service) onExecExit(c *container, e execProcess, x reaper.Exit) {
	if e.SetExited(x) {
		s.send(&eventstypes.TaskExit{
			ContainerID: c.id, ID: e.ID(), Pid: uint32(x.Pid), ExitStatus: uint32(x.Status), ExitedAt: protobuf.ToTimestamp(x.At),
		})
	}
	if pending := c.endExec(); pending != nil {
		s.publishInitExit(c, *pending)
	}
}

// publishInitExit records the init's exit (Wait returns, State says
// stopped), keeps it in the bundle for `shim delete`, and publishes it
// after any OOM that caused it and after the output reached the
// container's log (bounded), so that `logs -f`, which ends on the exit,
// misses no line.
func (s *service) publishInitExit(c *container, e reaper.Exit) {
	c.oomStop()
	if c.init != nil {
		if err := c.init.WaitLogged(s.ctx); err != nil {
			log.G(s.ctx).WithError(err).WithField("id", c.id).Warn("the exit is published before all output reached the container's log")
		}
	}
	if !c.exits.SetExited(e) {
		return
	}
	if err := record.WriteExit(c.bundle, e); err != nil {
		log.G(s.ctx).WithError(err).WithField("id", c.id).Warn("record the exit status in the bundle")
	}
	s.send(&eventstypes.TaskExit{
		ContainerID: c.id, ID: c.id, Pid: uint32(e.Pid), ExitStatus: uint32(e.Status), ExitedAt: protobuf.ToTimestamp(e.At),
	})
}

// Delete removes an exited (or never started) process; for the init, the
// whole container.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	// A delete runs poststop hooks: children the reaper must leave alone.
	release := s.reaper.Hold()
	err = p.Delete(ctx)
	release()
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	status, at := p.ExitStatus()
	if r.ExecID != "" {
		c.removeExec(r.ExecID)
	} else {
		c.oomStop()
		s.mu.Lock()
		delete(s.containers, r.ID)
		s.mu.Unlock()
		released := true
		if s.packed {
			// Before containerd asks the shim to shut down, which it
			// does next: the shim may go only if no container is left.
			if err := s.packs.Release(s.slot, r.ID, func(string) bool { return true }); err != nil {
				log.G(ctx).WithError(err).WithField("id", r.ID).Warn("leave the shared shim")
				released = false
			}
		}
		if released {
			if err := record.MarkDeleted(c.bundle); err != nil {
				log.G(ctx).WithError(err).WithField("id", r.ID).Warn("shim delete will clean up again")
			}
		}
		s.send(&eventstypes.TaskDelete{
			ContainerID: c.id, ID: c.id, Pid: uint32(p.Pid()), ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at),
		})
	}
	return &taskAPI.DeleteResponse{Pid: uint32(p.Pid()), ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)}, nil
}

// Exec records a process to run in the container; Start runs it.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	if execHook != nil {
		execHook(execHookRequest{ID: r.ID, ExecID: r.ExecID})
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	release, err := c.reserve(r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	spec, err := execSpec(r.Spec)
	if err != nil {
		release()
		return nil, errgrpc.ToGRPC(err)
	}
	e, err := c.init.NewExec(r.ExecID, spec, process.Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal})
	if err != nil {
		release()
		return nil, errgrpc.ToGRPC(err)
	}
	c.addExec(e)
	s.send(&eventstypes.TaskExecAdded{ContainerID: c.id, ExecID: r.ExecID})
	return &ptypes.Empty{}, nil
}

// State reports a process's status and exit.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	status, at := p.ExitStatus()
	sio := p.Stdio()
	return &taskAPI.StateResponse{
		ID: p.ID(), Bundle: c.bundle, Pid: uint32(p.Pid()), Status: taskStatus(p.Status()),
		Stdin: sio.Stdin, Stdout: sio.Stdout, Stderr: sio.Stderr, Terminal: sio.Terminal,
		ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at), ExecID: r.ExecID,
	}, nil
}

func taskStatus(st process.Status) task.Status {
	switch st {
	case process.Created:
		return task.Status_CREATED
	case process.Running:
		return task.Status_RUNNING
	case process.Paused:
		return task.Status_PAUSED
	case process.Stopped:
		return task.Status_STOPPED
	}
	return task.Status_UNKNOWN
}

// Wait returns once the process has exited.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if err := p.Wait(ctx); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	status, at := p.ExitStatus()
	return &taskAPI.WaitResponse{ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)}, nil
}

// Kill signals a process; with All, every process of the container.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if err := p.Kill(ctx, r.Signal, r.All); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &ptypes.Empty{}, nil
}

func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	c, err := s.get(r.ID)
	if err == nil {
		err = c.init.Pause(ctx)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.send(&eventstypes.TaskPaused{ContainerID: c.id})
	return &ptypes.Empty{}, nil
}

func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	c, err := s.get(r.ID)
	if err == nil {
		err = c.init.Resume(ctx)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.send(&eventstypes.TaskResumed{ContainerID: c.id})
	return &ptypes.Empty{}, nil
}

func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err == nil {
		err = p.Resize(r.Width, r.Height)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &ptypes.Empty{}, nil
}

// CloseIO closes a process's stdin (the client has no more to send).
func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err == nil && r.Stdin {
		err = p.CloseStdin()
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &ptypes.Empty{}, nil
}

func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, errgrpc.ToGRPC(fmt.Errorf("%w: checkpoint of %s: berth has no checkpoint/restore", errdefs.ErrNotImplemented, r.ID))
}

// Connect tells containerd the shim's and the task's pids.
func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	var pid int
	if c, err := s.get(r.ID); err == nil {
		pid = c.init.Pid()
	}
	return &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid()), TaskPid: uint32(pid)}, nil
}

// Shutdown ends the shim once it serves no container any more. A shared
// shim (shim/pack) first stays ShimLinger for the next container of its
// namespace: containers run one after another (scripts, CI jobs, `ctr run
// --rm` in a loop) then reuse it instead of each starting a shim process.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.mu.Lock()
	n, linger := len(s.containers), s.linger
	s.lingerGen++
	gen := s.lingerGen
	s.mu.Unlock()
	// Now is ignored, as by containerd's runc shim: a shim that still
	// serves containers must not leave them unmanaged.
	if n > 0 {
		return &ptypes.Empty{}, nil
	}
	if s.packed && linger > 0 {
		s.afterFunc(linger, func() { s.leaveUnlessUsed(gen) })
		return &ptypes.Empty{}, nil
	}
	s.leave(ctx)
	return &ptypes.Empty{}, nil
}

// leaveUnlessUsed ends a lingering shim, unless a container was created
// or a shutdown asked for since the wait began (gen).
func (s *service) leaveUnlessUsed(gen uint64) {
	s.mu.Lock()
	used := gen != s.lingerGen || len(s.containers) > 0
	s.mu.Unlock()
	if !used {
		s.leave(s.ctx)
	}
}

// leave ends a shim that serves no container.
func (s *service) leave(ctx context.Context) {
	if s.packed {
		// A container may have been given this shim since its last one
		// was deleted: then the shim stays for it.
		vacated, err := s.packs.Vacate(s.slot)
		if err != nil {
			log.G(ctx).WithError(err).Warn("leave the shared shims; shutting down anyway")
		} else if !vacated {
			// If that container never arrives (containerd gave up on
			// it), `shim delete` releases it: look again later.
			s.afterFunc(vacateRetry, func() { s.Shutdown(s.ctx, &taskAPI.ShutdownRequest{}) })
			return
		}
	}
	s.shutdown.Shutdown()
}
