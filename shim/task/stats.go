package task

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	cgroupsv2 "github.com/containerd/cgroups/v3/cgroup2"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/task"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

// Stats returns the container's cgroup metrics in the form containerd's
// clients decode (cgroups v1 or v2 Metrics), read with containerd's own
// cgroups library as its runc shim does.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	metrics, err := cgroupMetrics(c)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	data, err := typeurl.MarshalAnyToProto(metrics)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("stats of %s: %w", c.id, err))
	}
	return &taskAPI.StatsResponse{Stats: data}, nil
}

func cgroupMetrics(c *container) (any, error) {
	path := c.init.Container().State().CgroupPath
	if cgroups.Mode() == cgroups.Unified {
		cg, err := cgroupsv2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("%w: cgroup of %s: %w", errdefs.ErrNotFound, c.id, err)
		}
		m, err := cg.Stat()
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", c.id, err)
		}
		return m, nil
	}
	// libcontainer records one absolute path when every v1 hierarchy has
	// the same (containerd always asks for one); otherwise the cgroups of
	// the init stand for the container's.
	where := cgroup1.StaticPath(path)
	if !filepath.IsAbs(path) {
		where = cgroup1.PidPath(c.init.Pid())
	}
	cg, err := cgroup1.Load(where)
	if err != nil {
		return nil, fmt.Errorf("%w: cgroup of %s: %w", errdefs.ErrNotFound, c.id, err)
	}
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.id, err)
	}
	return m, nil
}

// Update changes the container's resource limits (libcontainer merges
// them into the ones it has and saves them).
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if r.Resources == nil {
		return &ptypes.Empty{}, nil
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(r.Resources.Value, &res); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("%w: update %s: resources: %w", errdefs.ErrInvalidArgument, r.ID, err))
	}
	if err := c.init.Update(ctx, &res); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &ptypes.Empty{}, nil
}

// Pids lists the container's processes, naming the exec'd ones.
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pids, err := c.init.Container().Pids()
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("%w: %w", errdefs.ErrNotFound, err))
	}
	execs := map[int]string{}
	for _, e := range c.execProcesses() {
		if pid := e.Pid(); pid > 0 {
			execs[pid] = e.ID()
		}
	}
	out := make([]*task.ProcessInfo, 0, len(pids))
	for _, pid := range pids {
		info := &task.ProcessInfo{Pid: uint32(pid)}
		if id, ok := execs[pid]; ok {
			a, err := typeurl.MarshalAnyToProto(&runcoptions.ProcessDetails{ExecID: id})
			if err != nil {
				return nil, errgrpc.ToGRPC(fmt.Errorf("pids of %s: %w", r.ID, err))
			}
			info.Info = a
		}
		out = append(out, info)
	}
	return &taskAPI.PidsResponse{Processes: out}, nil
}

// execSpec decodes an exec's process (JSON, as containerd sends it).
func execSpec(a *anypb.Any) (*specs.Process, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: exec without a process spec", errdefs.ErrInvalidArgument)
	}
	var p specs.Process
	if err := json.Unmarshal(a.Value, &p); err != nil {
		return nil, fmt.Errorf("%w: exec process spec: %w", errdefs.ErrInvalidArgument, err)
	}
	return &p, nil
}
