// Package manager starts and stops the shim process: containerd runs the
// shim binary with "start" (Start: find or spawn the shim serving this
// container's group and return its address) and, after a shim died, with
// "delete" (Stop: clean up what it left). The long-running shim itself is
// pkg/shim serving the task plugin (shim/task).
package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	cgroupsv2 "github.com/containerd/cgroups/v3/cgroup2"
	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/version"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/shim/bootstrap"
	"github.com/berthrt/berth/shim/options"
	"github.com/berthrt/berth/shim/pack"
	"github.com/berthrt/berth/shim/process"
	"github.com/berthrt/berth/shim/record"
	"github.com/berthrt/berth/shim/task"
)

// New returns the shim manager for the runtime called name
// (io.containerd.berth.v2).
func New(name string) shim.Shim { return manager{name: name} }

type manager struct{ name string }

func (m manager) Name() string { return m.name }

// Start returns the address of the shim serving this container's group,
// spawning it if there is none yet. It runs in the bundle directory.
// A container without a group annotation is packed into a shared shim
// (shim/pack).
func (m manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (_ *bootapi.BootstrapResult, retErr error) {
	res := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc"}
	id := params.GetInstanceID()
	address := params.GetContainerdGrpcAddress()
	debug := params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	group, annotated, err := record.GroupOf(".", id)
	if err != nil {
		return nil, err
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}

	var sock *shimSocket
	running := false
	bind := func(g string) error {
		group = g
		s, err := newShimSocket(ctx, socketDir, address, g, false)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			res.Address, running = s.addr, true
			return nil
		}
		sock = s
		return err
	}
	var env []string
	if annotated {
		err = bind(group)
	} else {
		var slot int
		var packs pack.Dir
		if packs, err = packsOf(socketDir, address, ns); err == nil {
			slot, err = packs.Reserve(id, containersPerShim(params), bind)
		}
		if err == nil {
			env = packs.Env(slot)
			defer func() {
				if retErr != nil {
					packs.Release(slot, id, shimAlive(ctx, socketDir, address))
				}
			}()
		}
	}
	if err != nil {
		return nil, err
	}
	var sockets []*shimSocket
	if sock != nil {
		sockets = append(sockets, sock)
	}
	defer func() {
		if retErr != nil {
			for _, s := range sockets {
				s.Close()
			}
		}
	}()
	if err := record.WriteGroup(".", group); err != nil {
		return nil, err
	}
	if running {
		// The group's shim is running: containerd creates the task there.
		return res, nil
	}
	env = append(env, task.EnvSocket+"="+sock.addr)
	if debug {
		dsock, err := newShimSocket(ctx, socketDir, address, group, true)
		if err != nil {
			return nil, err
		}
		sockets = append(sockets, dsock)
		env = append(env, task.EnvDebugSocket+"="+dsock.addr)
	}
	cmd, err := shimCommand(ns, id, address, debug, env)
	if err != nil {
		return nil, err
	}
	for _, s := range sockets {
		cmd.ExtraFiles = append(cmd.ExtraFiles, s.f)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	defer func() {
		if retErr != nil {
			cmd.Process.Kill()
		}
	}()
	// This process exits right after; waiting keeps it tidy meanwhile.
	go cmd.Wait()
	if err := joinShimCgroup(params, cmd.Process.Pid); err != nil {
		return nil, err
	}
	if err := shim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("adjust the shim's OOM score: %w", err)
	}
	res.Address = sock.addr
	return res, nil
}

// packsOf is the shared shims' state of this binary for containerd at
// address, namespace ns. containerd-shim-berth-v2 finds the same state
// (bootstrap.Server resolves to this binary's path).
func packsOf(socketDir, address, ns string) (pack.Dir, error) {
	self, err := os.Executable()
	if err != nil {
		return pack.Dir{}, fmt.Errorf("find the shim binary: %w", err)
	}
	return pack.Open(socketDir, address, ns, self), nil
}

// shimAlive reports whether a shim answers on a group's address.
func shimAlive(ctx context.Context, socketDir, address string) func(group string) bool {
	return func(group string) bool {
		addr, err := shim.CreateSocketAddress(ctx, socketDir, address, group, false)
		return err == nil && shim.CanConnect(addr)
	}
}

// containersPerShim is the ContainersPerShim runtime option, or the
// default when the options do not say.
func containersPerShim(params *bootapi.BootstrapParams) int {
	var exts []bootstrap.Any
	for _, ext := range params.GetExtensions() {
		exts = append(exts, bootstrap.Any{TypeURL: ext.GetValue().GetTypeUrl(), Value: ext.GetValue().GetValue()})
	}
	return bootstrap.ContainersPerShim(exts)
}

// shimCommand is the long-running shim: this binary again, without an
// action, in its own process group (a ^C to containerd does not reach it),
// with env added to its environment.
func shimCommand(ns, id, address string, debug bool, env []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the shim binary: %w", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	args := []string{"-namespace", ns, "-id", id, "-address", address}
	if debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = cwd
	cmd.Env = append(shimEnv(os.Environ()), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// shimEnv is the long-running shim's environment: containerd's, tuned for
// a process that mostly waits. Its work is system calls and small
// messages, so one thread running Go code at a time is enough (each more
// has allocation caches of its own: about 0.3 MB each, measured; a second
// one to make the cgroup while create reads the spec made no measurable
// difference to `ctr run`). It serves no heap profiles, so sampling
// allocations for them, and the 1.4 MB table that holds the samples, is
// turned off.
func shimEnv(env []string) []string {
	godebug := "memprofilerate=0"
	var out []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GODEBUG":
			godebug = v + "," + godebug
		case "GOMAXPROCS":
		default:
			out = append(out, kv)
		}
	}
	return append(out, "GOMAXPROCS=1", "GODEBUG="+godebug)
}

// joinShimCgroup moves the shim into the cgroup runc's ShimCgroup option
// names, if given.
func joinShimCgroup(params *bootapi.BootstrapParams, pid int) error {
	var ro runcoptions.Options
	found, err := params.FindExtension(&ro)
	if err != nil || !found || ro.GetShimCgroup() == "" {
		return nil // options of another kind are not the shim's business here
	}
	path := ro.GetShimCgroup()
	if cgroups.Mode() == cgroups.Unified {
		cg, err := cgroupsv2.Load(path)
		if err != nil {
			return fmt.Errorf("load shim cgroup %s: %w", path, err)
		}
		return cg.AddProc(uint64(pid))
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return fmt.Errorf("load shim cgroup %s: %w", path, err)
	}
	return cg.AddProc(uint64(pid))
}

// Stop is `shim delete`: the shim serving id is gone (killed, or crashed),
// and what it left must go — the container's processes, cgroup, state and
// rootfs mounts. It reports the init's exit as the shim recorded it, or
// as killed.
func (m manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return shim.StopStatus{}, err
	}
	// containerd runs delete in the bundle of some container of the
	// group; id's bundle is its sibling.
	bundle := filepath.Join(filepath.Dir(cwd), id)
	if e, ok := record.DeletedExit(bundle); ok {
		// The shim deleted the container and left its slot itself:
		// there is only the exit to report. (containerd-shim-berth-v2
		// answers this case without running the server.)
		return shim.StopStatus{Pid: e.Pid, ExitStatus: e.Status, ExitedAt: e.At}, nil
	}
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return shim.StopStatus{}, err
	}
	opts, err := options.Read(bundle)
	if err != nil {
		return shim.StopStatus{}, err
	}
	if err := process.Cleanup(ctx, opts.StateRoot(ns), bundle, id); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("clean up after the shim")
	}
	group, err := record.Group(bundle, id)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("find the container's shim group")
	} else {
		socketDir, address := socketDirOf(bundle), containerdAddress()
		removeStaleSockets(ctx, bundle, socketDir, address, group)
		if slot, ok := pack.SlotOf(group); ok && address != "" {
			packs, err := packsOf(socketDir, address, ns)
			if err == nil {
				err = packs.Release(slot, id, shimAlive(ctx, socketDir, address))
			}
			if err != nil {
				log.G(ctx).WithError(err).WithField("id", id).Warn("leave the shared shim")
			}
		}
	}
	killedAt := time.Now()
	if e, err := record.ReadExit(bundle); err == nil {
		return shim.StopStatus{Pid: e.Pid, ExitStatus: e.Status, ExitedAt: e.At}, nil
	}
	return shim.StopStatus{Pid: readPid(bundle), ExitStatus: 128 + int(unix.SIGKILL), ExitedAt: killedAt}, nil
}

func readPid(bundle string) int {
	b, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

// Info describes the runtime to containerd (`ctr plugins`, CRI). Options
// it is given are echoed when they are runc's; any other kind is fine.
func (m manager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	info := &types.RuntimeInfo{
		Name:    m.name,
		Version: &types.RuntimeVersion{Version: version.Version, Revision: version.Revision},
	}
	opts, err := shim.ReadRuntimeOptions[*runcoptions.Options](optionsR)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		log.G(ctx).WithError(err).Debug("runtime options are not runc's; ignored")
	}
	if err == nil && opts != nil {
		if info.Options, err = typeurl.MarshalAnyToProto(opts); err != nil {
			return nil, fmt.Errorf("marshal %T: %w", opts, err)
		}
	}
	return info, nil
}
