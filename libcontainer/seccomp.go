//go:build cgo

package libcontainer

import (
	"fmt"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/seccomp"
)

// seccompPlan is a compiled filter and, for a profile with notify rules,
// the connection to its agent. It is made before pivot_root: the
// listenerPath is a host path, out of reach afterwards.
type seccompPlan struct {
	filter *seccomp.Filter
	agent  *net.UnixConn
	state  specs.ContainerProcessState
}

func planSeccomp(s *specs.LinuxSeccomp, cfg *initConfig) (*seccompPlan, error) {
	f, err := seccomp.Compile(s)
	if err != nil || f == nil {
		return nil, err
	}
	p := &seccompPlan{filter: f}
	if f.Notify() {
		if p.agent, err = seccomp.DialListener(s.ListenerPath); err != nil {
			return nil, err
		}
		p.state = specs.ContainerProcessState{
			Pid:      cfg.HostPid,
			Metadata: s.ListenerMetadata,
			State: specs.State{
				Version: specs.Version, ID: cfg.ID, Status: specs.StateRunning,
				Pid: cfg.InitHostPid, Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations,
			},
		}
	}
	return p, nil
}

// load installs the filter and hands its notify fd to the agent.
func (p *seccompPlan) load() error {
	if p == nil {
		return nil
	}
	fd, err := p.filter.Load()
	if err != nil || fd < 0 {
		return err
	}
	defer unix.Close(fd)
	defer p.agent.Close()
	if err := seccomp.SendNotify(p.agent, fd, &p.state); err != nil {
		return fmt.Errorf("seccomp notify: %w", err)
	}
	return nil
}
