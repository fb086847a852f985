package containers

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/logs/jsonfile"
	"github.com/berthrt/berth/restart"
)

// InspectResponse is `docker inspect`'s shape for a container (docker's
// api/types/container.InspectResponse): docker's field names, so that
// templates such as '{{.State.Pid}}' work. It holds the fields berth can
// fill from containerd and its own record.
type InspectResponse struct {
	ID              string `json:"Id"`
	Created         string
	Path            string
	Args            []string
	State           State
	Image           string
	ResolvConfPath  string
	HostnamePath    string
	HostsPath       string
	LogPath         string
	Name            string
	RestartCount    int
	Driver          string
	Platform        string
	MountLabel      string
	ProcessLabel    string
	AppArmorProfile string
	HostConfig      HostConfig
	Mounts          []MountPoint
	Config          Config
	NetworkSettings NetworkSettings
}

// MountPoint is one of inspect's .Mounts.
type MountPoint struct {
	Type        string
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string
	RW          bool
	Propagation string
}

// NetworkSettings is what inspect shows of the container's network:
// docker's shape, the top-level address fields being the default bridge
// network's, as docker fills them.
type NetworkSettings struct {
	SandboxKey  string
	Ports       map[string][]PortBinding
	IPAddress   string
	IPPrefixLen int
	Gateway     string
	MacAddress  string
	Networks    map[string]*EndpointSettings
}

// EndpointSettings is the container on one network (docker's).
type EndpointSettings struct {
	Aliases     []string
	NetworkID   string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

// InspectOptions say where berth's files are.
type InspectOptions struct {
	DataRoot string
}

// Inspect describes the container ref names (see Resolve).
func Inspect(ctx context.Context, client *containerd.Client, ref string, opts InspectOptions) (InspectResponse, error) {
	c, err := Resolve(ctx, client, ref)
	if err != nil {
		return InspectResponse{}, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return InspectResponse{}, fmt.Errorf("container %s: %w", ref, err)
	}
	var rec stored
	if err := readStored(info, &rec); err != nil && !errdefs.IsNotFound(err) {
		return InspectResponse{}, err
	}
	all, err := tasks(ctx, client)
	if err != nil {
		return InspectResponse{}, err
	}
	restarts := restart.CountOf(info.Labels)
	r := InspectResponse{
		ID: info.ID, Created: info.CreatedAt.UTC().Format(time.RFC3339Nano), State: stateOf(info, all[info.ID]),
		Image: rec.ImageID, Name: "/" + info.Labels[LabelName], RestartCount: restarts, Driver: info.Snapshotter,
		Platform: "linux", HostConfig: rec.HostConfig, Config: rec.Config, Path: rec.Path, Args: rec.Args,
	}
	if r.Args == nil {
		r.Args = []string{}
	}
	if r.Config.Labels == nil {
		r.Config.Labels = userLabels(info.Labels)
	}
	if opts.DataRoot != "" {
		dir := containerDir(opts.DataRoot, info.ID)
		r.ResolvConfPath, r.HostnamePath, r.HostsPath = filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts")
		if rec.HostConfig.LogConfig.Type != "none" {
			r.LogPath = jsonfile.PathFor(opts.DataRoot, info.ID)
		}
	}
	r.Mounts = mountPoints(rec.HostConfig, rec.Volumes)
	if r.NetworkSettings, err = networkSettings(info, rec.HostConfig.NetworkMode); err != nil {
		return InspectResponse{}, err
	}
	return r, nil
}

// mountPoints are inspect's .Mounts: binds, volumes and tmpfs mounts.
func mountPoints(hc HostConfig, vols []volumeMount) []MountPoint {
	out := []MountPoint{}
	add := func(m Mount, mode string) {
		out = append(out, MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, Mode: mode, RW: !m.ReadOnly, Propagation: m.Propagation})
	}
	for _, vm := range vols {
		out = append(out, MountPoint{Type: "volume", Name: vm.Name, Source: vm.Source, Destination: vm.Destination,
			Driver: "local", Mode: vm.Mode, RW: !vm.ReadOnly})
	}
	for _, b := range hc.Binds {
		if m, err := parseBind(b); err == nil && m.Type == "bind" {
			mode := ""
			if m.ReadOnly {
				mode = "ro"
			}
			if m.Propagation == "" {
				m.Propagation = "rprivate"
			}
			add(m, mode)
		}
	}
	for _, m := range hc.Mounts {
		if m.Type != "volume" {
			add(m, "")
		}
	}
	for dest := range hc.Tmpfs {
		add(Mount{Type: "tmpfs", Target: dest}, "")
	}
	return out
}
