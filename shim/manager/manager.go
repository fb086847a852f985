// Package manager is the server's side of containerd's calls to the shim
// binary, those containerd-shim-berth-v2 hands over (shim/bootstrap):
// "start" with the ShimCgroup option (Start), "delete" after a shim died
// (Stop: clean up what it left), and -info. The long-running shim itself
// is pkg/shim serving the task plugin (shim/task).
package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	cgroupsv2 "github.com/containerd/cgroups/v3/cgroup2"
	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
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
)

// New returns the shim manager for the runtime called name
// (io.containerd.berth.v2).
func New(name string) shim.Shim { return manager{name: name} }

type manager struct{ name string }

func (m manager) Name() string { return m.name }

// Start returns the address of the shim serving this container's group,
// spawning it if there is none yet (bootstrap.Start, which
// containerd-shim-berth-v2 calls itself unless a new shim must join the
// ShimCgroup option's cgroup). It runs in the bundle directory.
func (m manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the shim binary: %w", err)
	}
	p := bootstrap.Params{
		InstanceID: params.GetInstanceID(), Namespace: params.GetNamespace(), LogLevel: int32(params.GetLogLevel()),
		GRPCAddress: params.GetContainerdGrpcAddress(),
		SocketDir:   params.GetSocketDir(), Extensions: extensions(params),
	}
	cgroup := bootstrap.ShimCgroup(p.Extensions)
	addr, err := bootstrap.Start(p, self, func(pid int) error { return joinShimCgroup(cgroup, pid) })
	if err != nil {
		return nil, err
	}
	return &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc", Address: addr}, nil
}

func extensions(params *bootapi.BootstrapParams) []bootstrap.Any {
	var exts []bootstrap.Any
	for _, ext := range params.GetExtensions() {
		exts = append(exts, bootstrap.Any{TypeURL: ext.GetValue().GetTypeUrl(), Value: ext.GetValue().GetValue()})
	}
	return exts
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

// joinShimCgroup moves the shim into the cgroup the ShimCgroup option
// names (path), if it names one.
func joinShimCgroup(path string, pid int) error {
	if path == "" {
		return nil
	}
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
				err = packs.Release(slot, id, bootstrap.ShimAlive(socketDir, address, ns))
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
