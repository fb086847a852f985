package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/cni"
)

// StepSpecOpts wrap the spec options of a build's RUN step (its process,
// its network) in what every container berth makes gets: docker's
// defaults first, docker's default seccomp profile last (it allows
// syscalls by the capabilities the spec ends with). Package build runs
// its RUN steps with them, so that a step runs as `berth run` would.
func StepSpecOpts(opts ...oci.SpecOpts) []oci.SpecOpts {
	return append(append([]oci.SpecOpts{dockerDefaults}, opts...), seccompOpt(HostConfig{}))
}

// StepNetwork is how a build's RUN steps are networked, as `berth run
// --net` would network a container: Mode is none, host, or a network's
// name (bridge, docker's default for a build, or a network of `network
// create`); Networks, NetNSDir and DataRoot are CreateOptions'.
type StepNetwork struct {
	Mode     string
	Networks cni.Config
	NetNSDir string
	DataRoot string
}

// Check refuses a mode a build step cannot have, container:X (a step
// has no container to share with, as docker's builder), and a relative
// data root.
func (n StepNetwork) Check() error {
	if n.Mode == "" || strings.HasPrefix(n.Mode, "container:") {
		return fmt.Errorf("network %q for RUN steps: use bridge (the default), host, none or a network's name: %w", n.Mode, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(n.DataRoot) {
		return fmt.Errorf("RUN steps: the data root %q is not an absolute path: %w", n.DataRoot, errdefs.ErrInvalidArgument)
	}
	return nil
}

// StepNetworkSetup is one step container's network: its spec options,
// its container options (the plan of a step on a network: cni.NewTask
// brings it up with the task) and Release.
type StepNetworkSetup struct {
	SpecOpts      []oci.SpecOpts
	ContainerOpts []containerd.NewContainerOpts
	id, dir       string
	plan          *cni.Plan
}

// Prepare sets up the network of step container id: its hosts, hostname
// and resolv.conf files (under DataRoot/containers/ID, bind-mounted as
// `berth run`'s are) and, on a network, its plan. Release undoes it.
func (n StepNetwork) Prepare(ctx context.Context, client *containerd.Client, id string) (*StepNetworkSetup, error) {
	if err := n.Check(); err != nil {
		return nil, err
	}
	hostname := ""
	if n.Mode != "host" { // host: the host's name, as docker's
		hostname = strings.TrimPrefix(id, "berth-build-")
		if len(hostname) > 12 {
			hostname = hostname[:12]
		}
	}
	hc := HostConfig{NetworkMode: n.Mode}
	if !isNetworkMode(n.Mode) {
		hc.Endpoints = []EndpointRequest{{Network: n.Mode}}
	}
	s := &StepNetworkSetup{id: id, dir: containerDir(n.DataRoot, id)}
	if err := os.MkdirAll(s.dir, 0o710); err != nil {
		return nil, fmt.Errorf("create the RUN step's directory: %w", err)
	}
	net, err := prepareNetwork(ctx, networkRequest{
		client: client, id: id, name: id, dir: s.dir, hostname: hostname, dataRoot: n.DataRoot,
		hc: hc, store: n.Networks, netnsDir: n.NetNSDir,
	})
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("the RUN step's network: %w", err)
	}
	s.plan = net.plan
	s.SpecOpts = append(net.opts, oci.WithHostname(net.hostname))
	if net.plan != nil {
		s.ContainerOpts = append(s.ContainerOpts, cni.WithPlan(net.plan))
	}
	return s, nil
}

// Release takes the step's network down (its namespace, veth and
// address, when its task did not already) and removes its files; called
// once the step's task is gone.
func (s *StepNetworkSetup) Release(ctx context.Context) error {
	var errs []error
	if s.plan != nil {
		errs = append(errs, s.plan.Remove(ctx, s.id))
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove the RUN step's directory: %w", err))
	}
	return errors.Join(errs...)
}
