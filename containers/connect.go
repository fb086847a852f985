package containers

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/cni"
)

// ConnectOptions are `network connect`'s.
type ConnectOptions struct {
	Aliases []string
	IP      string
}

// Connect puts container ref on network: in its plan, so that every later
// start joins it, and, while it runs, live.
func Connect(ctx context.Context, client *containerd.Client, ref, network string, o ConnectOptions) error {
	c, plan, err := loadPlan(ctx, client, ref, "connect")
	if err != nil {
		return err
	}
	n, err := cni.NewStore(plan.Store).Get(ctx, network)
	if err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	if n.Driver != "bridge" {
		return fmt.Errorf("container %s cannot be connected to %s: it is a mode, not a network: %w", ref, n.Name, errdefs.ErrInvalidArgument)
	}
	pn := cni.PlanNetwork{Name: n.Name, Aliases: o.Aliases}
	if o.IP != "" {
		ip, err := netip.ParseAddr(o.IP)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("invalid --ip %q: want an IPv4 address in the network's subnet", o.IP)
		}
		pn.IP = ip
	}
	if (len(o.Aliases) > 0 || o.IP != "") && n.Name == cni.DefaultNetwork {
		return fmt.Errorf("--alias and --ip are only supported on user-defined networks, not %s", n.Name)
	}
	unlock, err := plan.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Read again under the lock: another connect may have saved it.
	if c, plan, err = loadPlan(ctx, client, c.ID(), "connect"); err != nil {
		return err
	}
	if slices.ContainsFunc(plan.Networks, func(p cni.PlanNetwork) bool { return p.Name == n.Name }) {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", plan.Name, n.Name, errdefs.ErrAlreadyExists)
	}
	gone, err := cni.TaskGone(ctx, c)
	if err != nil {
		return err
	}
	if !gone {
		if err := plan.Connect(ctx, c.ID(), pn); err != nil {
			return err
		}
	}
	plan.Networks = append(plan.Networks, pn)
	if err := cni.SavePlan(ctx, client, c.ID(), plan); err != nil {
		if !gone {
			cni.NewStore(plan.Store).Detach(context.WithoutCancel(ctx), c.ID(), n.Name)
		}
		return err
	}
	return nil
}

// Disconnect takes container ref off network, live and for good.
func Disconnect(ctx context.Context, client *containerd.Client, ref, network string) error {
	c, plan, err := loadPlan(ctx, client, ref, "disconnect")
	if err != nil {
		return err
	}
	unlock, err := plan.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if c, plan, err = loadPlan(ctx, client, c.ID(), "disconnect"); err != nil {
		return err
	}
	i := slices.IndexFunc(plan.Networks, func(p cni.PlanNetwork) bool { return p.Name == network })
	if i < 0 {
		if n, err := cni.NewStore(plan.Store).Get(ctx, network); err == nil {
			i = slices.IndexFunc(plan.Networks, func(p cni.PlanNetwork) bool { return p.Name == n.Name })
		}
	}
	if i < 0 {
		return fmt.Errorf("container %s is not connected to network %s: %w", ref, network, errdefs.ErrNotFound)
	}
	name := plan.Networks[i].Name
	plan.Networks = slices.Delete(plan.Networks, i, i+1)
	if err := cni.SavePlan(ctx, client, c.ID(), plan); err != nil {
		return err
	}
	if err := cni.NewStore(plan.Store).Detach(ctx, c.ID(), name); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// loadPlan finds container ref and its network plan; a container in
// another mode cannot be connected or disconnected (docker's rule).
func loadPlan(ctx context.Context, client *containerd.Client, ref, what string) (containerd.Container, *cni.Plan, error) {
	c, err := Resolve(ctx, client, ref)
	if err != nil {
		return nil, nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: %w", ref, err)
	}
	plan, err := cni.ReadPlan(info)
	if err != nil {
		return nil, nil, err
	}
	if plan == nil {
		var rec stored
		readStored(info, &rec)
		return nil, nil, fmt.Errorf("cannot %s container %s: it has --net %s (its own namespace without networks, the host's or another container's): run it on a network instead: %w",
			what, ref, rec.HostConfig.NetworkMode, errdefs.ErrFailedPrecondition)
	}
	return c, plan, nil
}
