package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
)

// PlanExtension is the containerd container extension that holds a
// container's Plan.
const PlanExtension = "berth/network"

func init() {
	typeurl.Register(&Plan{}, "github.com/berthrt/berth/cni", "Plan")
}

// Plan is how a container is networked: decided when it is created and
// kept in its containerd record, so that whoever starts its task (berth,
// or the restart monitor inside containerd) brings the same networks up,
// and whoever sees the task end takes them down, with no berth command
// running. A stopped container holds no namespace, veth or address.
type Plan struct {
	// Store is where the networks live (berth.toml's, as the container's
	// creator read it).
	Store Config `json:"store"`
	// NetNS is where the container's network namespace is bound while
	// its task runs; the spec joins it by this path.
	NetNS string `json:"netns"`
	// Name is the container's name, which its peers resolve.
	Name string `json:"name"`
	// Hostname is the container's host name: its own line in its hosts.
	Hostname string `json:"hostname"`
	// Hosts is the container's /etc/hosts on the host (bind-mounted into
	// it) and ExtraHosts its --add-host lines ("IP\tNAME").
	Hosts      string   `json:"hosts,omitempty"`
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// Networks are joined in order: eth0, eth1, …
	Networks []PlanNetwork `json:"networks"`
}

// PlanNetwork is the container's settings on one network.
type PlanNetwork struct {
	Name    string        `json:"name"`
	Aliases []string      `json:"aliases,omitempty"`
	IP      netip.Addr    `json:"ip,omitzero"`
	MAC     string        `json:"mac,omitempty"`
	Ports   []PortMapping `json:"ports,omitempty"`
}

// NetworkNames are the plan's networks, comma-separated: the value of
// ContainerLabel.
func (p *Plan) NetworkNames() string {
	names := make([]string, len(p.Networks))
	for i, n := range p.Networks {
		names[i] = n.Name
	}
	return strings.Join(names, ",")
}

// ReadPlan is the plan of a container's record; nil for a container
// without one (--net none, host, container:X).
func ReadPlan(c containers.Container) (*Plan, error) {
	ext, ok := c.Extensions[PlanExtension]
	if !ok {
		return nil, nil
	}
	v, err := typeurl.UnmarshalAny(ext)
	if err != nil {
		return nil, fmt.Errorf("container %s: read its network plan: %w", c.ID, err)
	}
	p, ok := v.(*Plan)
	if !ok {
		return nil, fmt.Errorf("container %s: its network plan is a %T", c.ID, v)
	}
	return p, nil
}

// WithPlan records p in a new container.
func WithPlan(p *Plan) containerd.NewContainerOpts {
	return containerd.WithContainerExtension(PlanExtension, p)
}

// SavePlan replaces the plan of container id (network connect and
// disconnect), and its ContainerLabel with it.
func SavePlan(ctx context.Context, client *containerd.Client, id string, p *Plan) error {
	ext, err := typeurl.MarshalAnyToProto(p)
	if err != nil {
		return fmt.Errorf("container %s: save its network plan: %w", id, err)
	}
	c := containers.Container{
		ID:         id,
		Extensions: map[string]typeurl.Any{PlanExtension: ext},
		Labels:     map[string]string{ContainerLabel: p.NetworkNames()},
	}
	if _, err := client.ContainerService().Update(ctx, c, "extensions."+PlanExtension, "labels."+ContainerLabel); err != nil {
		return fmt.Errorf("container %s: save its network plan: %w", id, err)
	}
	return nil
}

// Lock serialises the bringing up and taking down of one container's
// networks across processes (berth's start, the monitor's teardown at an
// exit): an exit handled late must not take down the networks of the
// task started after it. The caller holds it from before Up until the
// task exists, and Down checks the task under it.
func (p *Plan) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(p.NetNS), 0o755); err != nil {
		return nil, fmt.Errorf("lock the network of %s: %w", p.Name, err)
	}
	f, err := os.OpenFile(p.NetNS+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the network of %s: %w", p.Name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the network of %s: %w", p.Name, err)
	}
	return func() { f.Close() }, nil
}

// Up makes the container's network namespace and attaches it to the
// plan's networks, after taking down whatever an earlier task left; the
// store keeps the container's hosts file current from then on. On
// failure nothing of it is left. The caller holds Lock.
func (p *Plan) Up(ctx context.Context, id string) ([]Attachment, error) {
	if err := p.Down(ctx, id); err != nil {
		return nil, err
	}
	if err := NewNetNS(p.NetNS); err != nil {
		return nil, err
	}
	s := NewStore(p.Store)
	var out []Attachment
	for i, n := range p.Networks {
		a, err := p.attach(ctx, s, id, n, fmt.Sprintf("eth%d", i))
		if err != nil {
			if derr := p.Down(context.WithoutCancel(ctx), id); derr != nil {
				return nil, fmt.Errorf("%w (and taking down what was set up: %v)", err, derr)
			}
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Down takes the container off every network and removes its namespace
// (Store.Release: the namespace first, its veths going with it). Nothing
// to take down is no error.
func (p *Plan) Down(ctx context.Context, id string) error {
	if err := NewStore(p.Store).Release(ctx, id, p.NetNS); err != nil {
		return fmt.Errorf("take down the network of %s: %w", p.Name, err)
	}
	return nil
}

// Remove takes the networks down, under the lock (the monitor may be
// taking them down for the exit of the task just deleted), and removes
// the lock file: the container is going.
func (p *Plan) Remove(ctx context.Context, id string) error {
	unlock, err := p.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.Down(ctx, id); err != nil {
		return err
	}
	if err := os.Remove(p.NetNS + ".lock"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("take down the network of %s: %w", p.Name, err)
	}
	return nil
}

// TaskGone says whether c has no task that runs or is about to (a
// created one): the state in which its networks may be taken down.
func TaskGone(ctx context.Context, c containerd.Container) (bool, error) {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return st.Status == containerd.Stopped, nil
}

// DownIfStopped takes c's networks down when its task is gone or
// stopped, under the plan's lock: the teardown after an exit, by the
// restart monitor or by berth. A container without a plan has nothing.
func DownIfStopped(ctx context.Context, c containerd.Container) error {
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return err
	}
	p, err := ReadPlan(info)
	if err != nil || p == nil {
		return err
	}
	unlock, err := p.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	gone, err := TaskGone(ctx, c)
	if err != nil || !gone {
		return err
	}
	return p.Down(ctx, c.ID())
}

// Connect attaches the running container to one more network, on the
// first free ethN. The caller holds Lock and saves the plan.
func (p *Plan) Connect(ctx context.Context, id string, n PlanNetwork) error {
	s := NewStore(p.Store)
	as, err := s.Attachments(id)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, a := range as {
		used[a.IfName] = true
	}
	ifname := ""
	for i := 0; ifname == ""; i++ {
		if name := fmt.Sprintf("eth%d", i); !used[name] {
			ifname = name
		}
	}
	_, err = p.attach(ctx, s, id, n, ifname)
	return err
}

// attach puts the container's namespace on network n as ifname.
func (p *Plan) attach(ctx context.Context, s *Store, id string, n PlanNetwork, ifname string) (Attachment, error) {
	return s.Attach(ctx, p.NetNS, id, n.Name, AttachOptions{
		ContainerName: p.Name, IfName: ifname, IP: n.IP, MAC: n.MAC, Aliases: n.Aliases, Ports: n.Ports,
		Hosts: HostsFile{Path: p.Hosts, Hostname: p.Hostname, Extra: p.ExtraHosts},
	})
}

// NewTask makes a container's task with create, its networks (info's
// plan) brought up first and the plan's lock held until the task exists
// (see Lock); a task that is not made takes them down again. Without a
// plan it is create alone. Both berth's start and the restart monitor's
// start tasks through it.
func NewTask(ctx context.Context, info containers.Container, create func() (containerd.Task, error)) (containerd.Task, error) {
	plan, err := ReadPlan(info)
	if err != nil {
		return nil, err
	}
	if plan == nil {
		return create()
	}
	unlock, err := plan.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := plan.Up(ctx, info.ID); err != nil {
		return nil, fmt.Errorf("container %s: %w", info.ID, err)
	}
	task, err := create()
	if err != nil {
		if derr := plan.Down(context.WithoutCancel(ctx), info.ID); derr != nil {
			return nil, fmt.Errorf("%w (and taking its network down: %v)", err, derr)
		}
		return nil, err
	}
	return task, nil
}
