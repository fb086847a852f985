package containers

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
	"github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// usage is one reading of a container's cgroup.
type usage struct {
	at                    time.Time
	cpuNanos              uint64
	memory, memoryLimit   uint64
	blockRead, blockWrite uint64
	pids                  uint64
}

// readUsage reads the task's cgroup metrics (v1 or v2, as the shim gives
// them), with docker's memory usage: less the inactive page cache.
func readUsage(ctx context.Context, task containerd.Task) (usage, error) {
	m, err := task.Metrics(ctx)
	if err != nil {
		return usage{}, fmt.Errorf("stats of container %s: %w", task.ID(), err)
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return usage{}, fmt.Errorf("stats of container %s: %w", task.ID(), err)
	}
	u := usage{at: time.Now()}
	switch s := v.(type) {
	case *v1.Metrics:
		u.cpuNanos = s.GetCPU().GetUsage().GetTotal()
		mem := s.GetMemory()
		u.memory, u.memoryLimit = subtract(mem.GetUsage().GetUsage(), mem.GetTotalInactiveFile()), mem.GetUsage().GetLimit()
		for _, e := range s.GetBlkio().GetIoServiceBytesRecursive() {
			switch e.Op {
			case "Read", "read":
				u.blockRead += e.Value
			case "Write", "write":
				u.blockWrite += e.Value
			}
		}
		u.pids = s.GetPids().GetCurrent()
	case *v2.Metrics:
		u.cpuNanos = s.GetCPU().GetUsageUsec() * 1000
		mem := s.GetMemory()
		u.memory, u.memoryLimit = subtract(mem.GetUsage(), mem.GetInactiveFile()), mem.GetUsageLimit()
		for _, e := range s.GetIo().GetUsage() {
			u.blockRead += e.Rbytes
			u.blockWrite += e.Wbytes
		}
		u.pids = s.GetPids().GetCurrent()
	default:
		return usage{}, fmt.Errorf("stats of container %s: metrics of an unknown kind %T", task.ID(), v)
	}
	if total := hostMemory(); u.memoryLimit == 0 || (total > 0 && u.memoryLimit > total) {
		u.memoryLimit = total // no limit: docker shows the host's memory
	}
	return u, nil
}

func subtract(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// StatsEntry is one row of `docker stats`, with the field names of its
// --format.
type StatsEntry struct {
	Container, ID, Name string
	CPUPerc, MemUsage   string
	MemPerc, NetIO      string
	BlockIO, PIDs       string
}

// Stats samples the running containers cs twice, interval apart, and gives
// docker's stats rows: CPU over the interval, the rest as of the second
// reading. A container that is not running shows zeros, as in docker.
func Stats(ctx context.Context, cs []containerd.Container, interval time.Duration) ([]StatsEntry, error) {
	first := make([]*usage, len(cs))
	taskOf := make([]containerd.Task, len(cs))
	for i, c := range cs {
		task, running, err := runningTask(ctx, c)
		if err != nil {
			return nil, err
		}
		if !running {
			continue
		}
		u, err := readUsage(ctx, task)
		if err != nil {
			return nil, err
		}
		first[i], taskOf[i] = &u, task
	}
	select {
	case <-time.After(interval): // the span CPU % is measured over
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rows := make([]StatsEntry, len(cs))
	for i, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID(), err)
		}
		rows[i] = StatsEntry{ID: c.ID(), Container: ShortID(c.ID()), Name: labels[LabelName],
			CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
		if first[i] == nil {
			continue
		}
		second, err := readUsage(ctx, taskOf[i])
		if err != nil {
			continue // it stopped meanwhile
		}
		rows[i].fill(*first[i], second)
	}
	return rows, nil
}

func (r *StatsEntry) fill(first, second usage) {
	if wall := second.at.Sub(first.at); wall > 0 && second.cpuNanos >= first.cpuNanos {
		r.CPUPerc = fmt.Sprintf("%.2f%%", float64(second.cpuNanos-first.cpuNanos)/float64(wall.Nanoseconds())*100)
	}
	r.MemUsage = units.BytesSize(float64(second.memory)) + " / " + units.BytesSize(float64(second.memoryLimit))
	if second.memoryLimit > 0 {
		r.MemPerc = fmt.Sprintf("%.2f%%", float64(second.memory)/float64(second.memoryLimit)*100)
	}
	r.BlockIO = units.HumanSizeWithPrecision(float64(second.blockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(second.blockWrite), 3)
	r.PIDs = fmt.Sprint(second.pids)
}
