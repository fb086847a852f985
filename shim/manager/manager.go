// Package manager is the server's side of containerd's calls to the shim
// binary, those containerd-shim-berth-v2 hands over (shim/bootstrap):
// "start" with the ShimCgroup option (Start), "delete" after a shim died
// (Stop: clean up what it left), and -info. The long-running shim itself
// is pkg/shim serving the task plugin (shim/task).
package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	cgroupsv2 "github.com/containerd/cgroups/v3/cgroup2"
	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/version"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

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
		slot, packed := pack.SlotOf(group)
		dir, recorded := record.Pack(bundle)
		switch {
		case !packed || address == "":
		case !recorded:
			log.G(ctx).WithField("id", id).Warn("leave the shared shim: the bundle does not record its state (started by an older shim?); the slot keeps the container as a member")
		default:
			if err := pack.At(dir).Release(slot, id, bootstrap.ShimAlive(socketDir, address, ns)); err != nil {
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

// Info describes the runtime to containerd (`ctr plugins inspect-runtime`,
// CRI): the shim's version, the runtime options it was given when they
// are runc's (echoed, as runc's shim does), and the features document of
// the berth-runtime its containers start from (`berth-runtime features`),
// which containerd reads before it creates a container with idmapped
// mounts, and CRI reads for what the runtime supports.
func (m manager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	info := &types.RuntimeInfo{
		Name:    m.name,
		Version: &types.RuntimeVersion{Version: version.Version, Revision: version.Revision},
	}
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, fmt.Errorf("read the runtime options: %w", err)
	}
	opts := &options.Options{}
	if len(data) > 0 {
		var given anypb.Any
		if err := proto.Unmarshal(data, &given); err != nil {
			return nil, fmt.Errorf("%w: runtime options: %w", errdefs.ErrInvalidArgument, err)
		}
		if opts, err = options.Decode(given.GetTypeUrl(), given.GetValue()); err != nil {
			return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
		if given.GetTypeUrl() == options.RuncTypeURL {
			info.Options = &given
		}
	}
	runtimeBin, err := process.RuntimeFor(ctx, opts.RuntimeBinary, opts.BinaryName)
	if err != nil {
		return nil, err
	}
	feat, err := runtimeFeatures(ctx, runtimeBin)
	if err != nil {
		// As runc's shim: the rest of the answer still holds, and a
		// client that needs the features says so itself.
		log.G(ctx).WithError(err).Warn("no features document from the runtime")
		return info, nil
	}
	if info.Features, err = typeurl.MarshalAnyToProto(feat); err != nil {
		return nil, fmt.Errorf("marshal the features of %s: %w", runtimeBin, err)
	}
	return info, nil
}

// runtimeFeatures is `berth-runtime features`: what the runtime supports,
// in the runtime-spec's features document. The shim asks the binary
// rather than answering itself: what it supports (seccomp, with
// libseccomp's tables) is built into that binary, not into the shim.
func runtimeFeatures(ctx context.Context, runtimeBin string) (*features.Features, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, runtimeBin, "features")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s features: %w (stderr: %q)", runtimeBin, err, stderr.String())
	}
	var feat features.Features
	if err := json.Unmarshal(out, &feat); err != nil {
		return nil, fmt.Errorf("%s features: %w", runtimeBin, err)
	}
	return &feat, nil
}
