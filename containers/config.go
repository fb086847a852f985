// Package containers is berth's container noun: docker's container
// commands (create, start, run, ps, inspect, stop, kill, rm, exec, …) over
// the containerd v2 client, with docker's semantics and docker-shaped
// results. The CLI (cmd/ctl) calls it today; a Docker Engine API will call
// the same functions later, with the same Config and HostConfig.
package containers

import (
	"github.com/docker/go-units"

	"github.com/berthrt/berth/health"
)

// Config is docker's container Config (api/types/container.Config): how
// the container's process runs. Field names are docker's, so that
// `inspect` templates written for docker work.
type Config struct {
	Hostname     string
	Domainname   string
	User         string
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	Tty          bool
	OpenStdin    bool
	StdinOnce    bool
	Env          []string
	Cmd          []string
	Image        string
	WorkingDir   string
	// Entrypoint nil means the image's; an empty, non-nil one (from
	// --entrypoint "") means none.
	Entrypoint  []string
	Labels      map[string]string
	StopSignal  string `json:",omitempty"`
	StopTimeout *int   `json:",omitempty"`
	// Volumes are the anonymous volumes' paths: the image's VOLUME and
	// -v PATH.
	Volumes map[string]struct{}
	// ExposedPorts are the image's EXPOSE and --expose ("80/tcp").
	ExposedPorts map[string]struct{} `json:",omitempty"`
	MacAddress   string              `json:",omitempty"`
	// Healthcheck is the image's HEALTHCHECK with the --health-* flags
	// over it (docker's merge); {"NONE"} for --no-healthcheck.
	Healthcheck *health.Config `json:",omitempty"`
	// Shell is the image's SHELL, which a CMD-SHELL health check runs in.
	Shell []string `json:",omitempty"`
}

// HostConfig is docker's HostConfig: what the container gets from the
// host.
type HostConfig struct {
	Binds     []string
	LogConfig LogConfig
	// NetworkMode is docker's: none, host, container:<id>, bridge or the
	// first user network.
	NetworkMode string
	// Endpoints are the networks joined, in order, with their settings
	// (docker keeps these in its NetworkingConfig; the container's
	// cni.Plan records them for the monitor too).
	Endpoints []EndpointRequest `json:"-"`
	// PortBindings are -p's, by container port ("80/tcp").
	PortBindings    map[string][]PortBinding `json:",omitempty"`
	PublishAllPorts bool
	DNS             []string `json:"Dns"`
	DNSSearch       []string `json:"DnsSearch"`
	DNSOptions      []string `json:"DnsOptions"`
	ExtraHosts      []string
	RestartPolicy   RestartPolicy
	AutoRemove      bool
	CapAdd          []string
	CapDrop         []string
	GroupAdd        []string
	IpcMode         string
	PidMode         string
	UTSMode         string
	Privileged      bool
	ReadonlyRootfs  bool
	SecurityOpt     []string
	Tmpfs           map[string]string `json:",omitempty"`
	ShmSize         int64
	Sysctls         map[string]string `json:",omitempty"`
	Init            *bool             `json:",omitempty"`
	Mounts          []Mount           `json:",omitempty"`
	// ConsoleSize is the terminal's size (height, width) at start, for
	// a container with a tty; zero: the runtime's default.
	ConsoleSize [2]uint
	Resources
}

// Resources are docker's resource limits.
type Resources struct {
	CPUShares           int64 `json:"CpuShares"`
	Memory              int64
	NanoCPUs            int64 `json:"NanoCpus"`
	BlkioWeight         uint16
	BlkioDeviceReadBps  []ThrottleDevice
	BlkioDeviceWriteBps []ThrottleDevice
	CPUPeriod           int64 `json:"CpuPeriod"`
	CPUQuota            int64 `json:"CpuQuota"`
	CpusetCpus          string
	Devices             []DeviceMapping
	MemoryReservation   int64
	MemorySwap          int64
	OomKillDisable      *bool
	PidsLimit           *int64
	Ulimits             []*units.Ulimit
}

// LogConfig is the log driver and its options.
type LogConfig struct {
	Type   string
	Config map[string]string
}

// RestartPolicy is docker's --restart, parsed.
type RestartPolicy struct {
	Name              string
	MaximumRetryCount int
}

// ThrottleDevice is a device's I/O rate limit.
type ThrottleDevice struct {
	Path string
	Rate uint64
}

// DeviceMapping is one --device.
type DeviceMapping struct {
	PathOnHost        string
	PathInContainer   string
	CgroupPermissions string
}

// Mount is one --mount (or -v, --tmpfs) in docker's shape.
type Mount struct {
	Type        string
	Source      string `json:",omitempty"`
	Target      string
	ReadOnly    bool   `json:",omitempty"`
	Propagation string `json:",omitempty"`
	// TmpfsSize (bytes) and TmpfsMode are a tmpfs mount's options.
	TmpfsSize int64  `json:",omitempty"`
	TmpfsMode uint32 `json:",omitempty"`
	// VolumeOptions are a volume mount's (-v …:nocopy, volume-nocopy).
	VolumeOptions *VolumeOptions `json:",omitempty"`
}

// VolumeOptions are a volume mount's options, docker's.
type VolumeOptions struct {
	// NoCopy leaves a new volume empty instead of copying the image's
	// content at the mount's path into it.
	NoCopy bool `json:",omitempty"`
}

// EndpointRequest is what the container asks of one network.
type EndpointRequest struct {
	Network string
	Aliases []string
	IP      string
	MAC     string
}

// PortBinding is the host side of a published port.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}
