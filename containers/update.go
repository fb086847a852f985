package containers

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/restart"
)

// UpdateFlags are `docker update`'s flags; Set names the flags given.
type UpdateFlags struct {
	Flags
	Set map[string]bool
	// Address is the containerd's, named when it cannot keep a restart
	// policy (restart.CheckPolicy).
	Address string
}

// Update changes container c's resource limits and restart policy, as
// `docker update` does: in berth's record and the container's spec, and
// in the running task's cgroup. Only those fields of the container's
// record are written, so that what the restart monitor and the health
// checks write meanwhile (labels, the health status) stays.
func Update(ctx context.Context, client *containerd.Client, c containerd.Container, f UpdateFlags) error {
	var want Resources
	if err := f.parseResources(&want); err != nil {
		return invalidArgument(err)
	}
	var policy *RestartPolicy
	if f.Set["restart"] {
		p, err := restartPolicy(f.Restart)
		if err != nil {
			return invalidArgument(err)
		}
		policy = &p
	}
	fields := []string{"spec", "extensions." + extensionConfig}
	if policy != nil {
		fields = append(fields, "labels."+restart.LabelPolicy)
	}
	var resources *specs.LinuxResources
	info, err := c.Info(ctx)
	if err == nil {
		resources, err = updateRecord(ctx, client, c, &info, f, want, policy)
	}
	if err == nil {
		_, err = client.ContainerService().Update(ctx, info, fields...)
	}
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.ID(), err)
	}
	task, running, err := runningTask(ctx, c)
	if err != nil || !running {
		return err
	}
	if err := task.Update(ctx, containerd.WithResources(resources)); err != nil {
		return fmt.Errorf("update the cgroup of container %s: %w", c.ID(), err)
	}
	return nil
}

// updateRecord changes info (berth's record, the spec, the policy's
// label) as f says, and gives the task's new resources.
func updateRecord(ctx context.Context, client *containerd.Client, c containerd.Container, info *containers.Container, f UpdateFlags, want Resources, policy *RestartPolicy) (*specs.LinuxResources, error) {
	var rec stored
	if err := readStored(*info, &rec); err != nil {
		return nil, err
	}
	r := &rec.HostConfig.Resources
	mergeResources(r, want, f.Set)
	if policy != nil {
		if err := restart.CheckAutoRemove(policy.Policy(), rec.HostConfig.AutoRemove); err != nil {
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		if err := restart.CheckPolicy(ctx, client, f.Address, policy.Policy()); err != nil {
			return nil, err
		}
		rec.HostConfig.RestartPolicy = *policy
		info.Labels[restart.LabelPolicy] = policy.String()
	}
	opts, err := resourceOpts(*r)
	if err != nil {
		return nil, err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: read its spec: %w", c.ID(), err)
	}
	fresh := &specs.LinuxResources{}
	if spec.Linux.Resources != nil {
		fresh.Devices = spec.Linux.Resources.Devices // the device rules are no limits of update's
	}
	spec.Linux.Resources = fresh
	if err := oci.ApplyOpts(ctx, client, info, spec, opts...); err != nil {
		return nil, err
	}
	if info.Spec, err = typeurl.MarshalAny(spec); err != nil {
		return nil, fmt.Errorf("container %s: store its spec: %w", c.ID(), err)
	}
	ext, err := typeurl.MarshalAny(&rec)
	if err != nil {
		return nil, fmt.Errorf("container %s: store its config: %w", c.ID(), err)
	}
	info.Extensions[extensionConfig] = ext
	return spec.Linux.Resources, nil
}

// invalidArgument marks err, a bad flag value, as errdefs' kind with its
// message unchanged.
func invalidArgument(err error) error {
	return kindError{msg: err.Error(), kind: errdefs.ErrInvalidArgument}
}

// mergeResources sets in r the limits the flags named in set gave.
func mergeResources(r *Resources, want Resources, set map[string]bool) {
	if set["memory"] {
		r.Memory = want.Memory
		if !set["memory-swap"] && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
			r.MemorySwap = 0 // back to docker's default, twice the memory
		}
	}
	if set["memory-swap"] {
		r.MemorySwap = want.MemorySwap
	}
	if set["memory-reservation"] {
		r.MemoryReservation = want.MemoryReservation
	}
	if set["cpu-shares"] {
		r.CPUShares = want.CPUShares
	}
	if set["cpus"] {
		r.NanoCPUs, r.CPUQuota, r.CPUPeriod = want.NanoCPUs, 0, 0
	}
	if set["cpu-quota"] || set["cpu-period"] {
		r.NanoCPUs = 0
		if set["cpu-quota"] {
			r.CPUQuota = want.CPUQuota
		}
		if set["cpu-period"] {
			r.CPUPeriod = want.CPUPeriod
		}
	}
	if set["cpuset-cpus"] {
		r.CpusetCpus = want.CpusetCpus
	}
	if set["blkio-weight"] {
		r.BlkioWeight = want.BlkioWeight
	}
	if set["pids-limit"] {
		r.PidsLimit = want.PidsLimit
	}
}
