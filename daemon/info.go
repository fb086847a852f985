package daemon

import (
	"context"
	"fmt"
	"runtime"

	"github.com/containerd/containerd/v2/defaults"

	"github.com/berthrt/berth/config"
)

// Info is what `berth info` and `berth system info` show.
type Info struct {
	ServerVersion string
	ServerCommit  string
	// Address is the containerd socket, AddressSource where it came from.
	Address       string
	AddressSource Source
	Namespace     string
	// DefaultRuntime is the runtime of containers that name none.
	DefaultRuntime string
	DataRoot       string
	// Managed is set when berth manages this containerd.
	Managed *ManagedInfo
	OS      string
	Arch    string
}

// ManagedInfo describes the containerd berth manages.
type ManagedInfo struct {
	Pid    int
	Binary string
	Root   string
	State  string
	Log    string
	Config string
	// ContainersPerShim and ShimLinger are the berth shim's packing.
	ContainersPerShim int
	ShimLinger        config.Duration
}

// Info asks containerd for its version and the namespace's default
// runtime, and adds berth's own settings.
func (c *Conn) Info(ctx context.Context, cfg *config.Config, namespace string) (Info, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("containerd version: %w", err)
	}
	info := Info{
		ServerVersion: v.Version, ServerCommit: v.Revision,
		Address: c.Address.Path, AddressSource: c.Address.Source,
		Namespace: namespace, DataRoot: cfg.DataRoot,
		DefaultRuntime: defaults.DefaultRuntime,
		OS:             runtime.GOOS, Arch: runtime.GOARCH,
	}
	labels, err := c.NamespaceService().Labels(ctx, namespace)
	if err == nil && labels[defaultRuntimeLabel] != "" {
		info.DefaultRuntime = labels[defaultRuntimeLabel]
	}
	if m := c.Managed; m != nil {
		bin, _ := m.Binary()
		info.Managed = &ManagedInfo{
			Pid: c.Pid, Binary: bin, Root: m.cfg.Root, State: m.cfg.State, Log: m.LogPath(), Config: m.ConfigPath(),
			ContainersPerShim: m.cfg.ContainersPerShim, ShimLinger: m.cfg.ShimLinger,
		}
	}
	return info, nil
}
