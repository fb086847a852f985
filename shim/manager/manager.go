// Package manager starts and stops the shim process: containerd runs the
// shim binary with "start" (Start: find or spawn the shim serving this
// container's group and return its address) and, after a shim died, with
// "delete" (Stop: clean up what it left). The long-running shim itself is
// pkg/shim serving the task plugin (shim/task).
package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

	"github.com/berthrt/berth/shim/options"
	"github.com/berthrt/berth/shim/process"
)

// groupAnnotations put containers in one shim process: runc's group label
// and the CRI sandbox id (a pod's containers share their sandbox's shim).
// The first one set wins.
var groupAnnotations = []string{
	"io.containerd.runc.v2.group",
	"io.kubernetes.cri.sandbox-id",
}

// New returns the shim manager for the runtime called name
// (io.containerd.berth.v2).
func New(name string) shim.Shim { return manager{name: name} }

type manager struct{ name string }

func (m manager) Name() string { return m.name }

// Start returns the address of the shim serving this container's group,
// spawning it if there is none yet. It runs in the bundle directory.
func (m manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (_ *bootapi.BootstrapResult, retErr error) {
	res := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc"}
	id := params.GetInstanceID()
	debug := params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG
	group, err := groupOf(".", id)
	if err != nil {
		return nil, err
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	sock, err := newShimSocket(ctx, socketDir, params.GetContainerdGrpcAddress(), group, false)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// The group's shim is running: containerd creates the task there.
		res.Address = sock.addr
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	sockets := []*shimSocket{sock}
	defer func() {
		if retErr != nil {
			for _, s := range sockets {
				s.Close()
			}
		}
	}()
	if debug {
		dsock, err := newShimSocket(ctx, socketDir, params.GetContainerdGrpcAddress(), group, true)
		if err != nil {
			return nil, err
		}
		sockets = append(sockets, dsock)
	}
	cmd, err := shimCommand(ctx, id, params.GetContainerdGrpcAddress(), debug)
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

// groupOf reads the grouping annotation from the bundle's config.json;
// a container without one is a group of its own.
func groupOf(bundle, id string) (string, error) {
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("read the bundle's config: %w", err)
	}
	defer f.Close()
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.NewDecoder(f).Decode(&spec); err != nil {
		return "", fmt.Errorf("read the bundle's config: %w", err)
	}
	for _, a := range groupAnnotations {
		if g, ok := spec.Annotations[a]; ok && g != "" {
			return g, nil
		}
	}
	return id, nil
}

// shimCommand is the long-running shim: this binary again, without an
// action, in its own process group (a ^C to containerd does not reach it).
func shimCommand(ctx context.Context, id, address string, debug bool) (*exec.Cmd, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
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
	cmd.Env = append(os.Environ(), "GOMAXPROCS=4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
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
	removeStaleSockets(ctx, bundle, id)
	killedAt := time.Now()
	if e, err := process.ReadExit(bundle); err == nil {
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
