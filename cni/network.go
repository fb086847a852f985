// Package cni is the network noun: docker's bridge networks over CNI. The
// store keeps one conflist per network in the config dir (the plugin
// chain, plus berth's own record under the "berth" key, which libcni and
// the plugins ignore); containers are attached and detached in-process
// through libcni with the reference plugins (bridge with host-local IPAM,
// which berth runs in the process for its own configurations, bridge.go;
// portmap for published ports), never by re-running a CLI as an OCI hook.
// What a network has on the host beside (the bridge, berth's isolation,
// forwarding and masquerade rules) goes with `network rm`.
//
// It knows nothing of containerd: which networks are in use is asked of
// a Users the caller gives, and Attach takes a network namespace path.
//
// A container on networks (`berth run --net NAME…`, the default network
// "bridge" when none is given) comes to life so:
//
//	NewNetNS(/run/berth/netns/<id>)            a namespace that outlives the task
//	WriteHosts(ctx, id, hosts)                 its /etc/hosts, to bind-mount
//	Attach(ctx, path, id, net[i], {IfName: eth<i>, ContainerName, IP, MAC, Aliases, Ports, Hosts: hosts})
//	spec: linux.namespaces network = path;     label berth/networks = the names
//	task create/start
//
// and goes (stop, rm, a failed start), once its processes are gone:
// Release(ctx, id, path), which removes the namespace, then detaches it
// from every network (DetachAll). Whatever is left after a crash,
// DetachStale frees, given the containers that still exist.
package cni

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/containerd/errdefs"
)

// The default network, as docker's: "bridge" on its own bridge device,
// with masquerade and no name resolution.
const (
	DefaultNetwork = "bridge"
	DefaultBridge  = "berth0"
	DefaultSubnet  = "10.88.0.0/16"
)

// Options of `network create -o` that berth understands (docker's keys).
const (
	// BridgeNameOption names the bridge device of a network.
	BridgeNameOption = "com.docker.network.bridge.name"
	// defaultBridgeOption marks the default network, as docker's does.
	defaultBridgeOption = "com.docker.network.bridge.default_bridge"
)

// Network is a network in the shape of docker's `network inspect`.
type Network struct {
	Name       string              `json:"Name"`
	ID         string              `json:"Id"`
	Created    time.Time           `json:"Created"`
	Scope      string              `json:"Scope"`
	Driver     string              `json:"Driver"`
	EnableIPv6 bool                `json:"EnableIPv6"`
	IPAM       IPAM                `json:"IPAM"`
	Internal   bool                `json:"Internal"`
	Attachable bool                `json:"Attachable"`
	Ingress    bool                `json:"Ingress"`
	ConfigFrom ConfigReference     `json:"ConfigFrom"`
	ConfigOnly bool                `json:"ConfigOnly"`
	Containers map[string]Endpoint `json:"Containers"`
	Options    map[string]string   `json:"Options"`
	Labels     map[string]string   `json:"Labels"`
}

// IPAM is a network's address management, docker's shape.
type IPAM struct {
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
	Config  []IPAMConfig      `json:"Config"`
}

// IPAMConfig is one subnet of a network.
type IPAMConfig struct {
	Subnet  string `json:"Subnet"`
	IPRange string `json:"IPRange,omitempty"`
	Gateway string `json:"Gateway,omitempty"`
}

// ConfigReference is docker's (berth has no config-only networks).
type ConfigReference struct {
	Network string `json:"Network"`
}

// Endpoint is a container on a network, as `network inspect` lists it.
type Endpoint struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// Bridge is the network's bridge device.
func (n *Network) Bridge() string { return n.Options[BridgeNameOption] }

// Predefined says n is one of docker's predefined networks (bridge, host,
// none), which cannot be removed.
func (n *Network) Predefined() bool { return isPredefined(n.Name) }

func isPredefined(name string) bool {
	return name == DefaultNetwork || name == "host" || name == "none"
}

// subnet is the network's one IPv4 subnet.
func (n *Network) subnet() (netip.Prefix, error) {
	if len(n.IPAM.Config) == 0 {
		return netip.Prefix{}, fmt.Errorf("network %s has no subnet", n.Name)
	}
	return netip.ParsePrefix(n.IPAM.Config[0].Subnet)
}

// CreateOptions are `network create`'s.
type CreateOptions struct {
	Name     string
	Driver   string // "bridge" (the default) is the only one
	Subnet   string // CIDR; empty picks a free one
	Gateway  string // empty: the subnet's first address
	IPRange  string // CIDR inside Subnet that containers get addresses from
	Internal bool   // no route out, no masquerade
	Labels   map[string]string
	Options  map[string]string // -o: BridgeNameOption
}

// validName is docker's rule for network names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validBridge is what Linux takes as an interface name (at most 15 bytes,
// no '/', ':' or whitespace), with the characters docker allows.
var validBridge = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)

func (o CreateOptions) validate() error {
	if !validName.MatchString(o.Name) {
		return fmt.Errorf("create network %q: %w: a name is [a-zA-Z0-9][a-zA-Z0-9_.-]*", o.Name, errdefs.ErrInvalidArgument)
	}
	if isPredefined(o.Name) {
		return fmt.Errorf("create network %s: %w: %s is a pre-defined network and cannot be created", o.Name, errdefs.ErrInvalidArgument, o.Name)
	}
	if o.Driver != "" && o.Driver != "bridge" {
		return fmt.Errorf("create network %s: driver %q: %w: berth has only the \"bridge\" driver", o.Name, o.Driver, errdefs.ErrNotImplemented)
	}
	for k, v := range o.Options {
		switch k {
		case BridgeNameOption:
			if !validBridge.MatchString(v) {
				return fmt.Errorf("create network %s: -o %s=%q: %w: a device name is 1 to 15 of [a-zA-Z0-9_.-]", o.Name, k, v, errdefs.ErrInvalidArgument)
			}
		default:
			return fmt.Errorf("create network %s: option %q: %w: berth's bridge driver takes only -o %s", o.Name, k, errdefs.ErrNotImplemented, BridgeNameOption)
		}
	}
	if o.Subnet == "" && (o.Gateway != "" || o.IPRange != "") {
		return fmt.Errorf("create network %s: %w: --gateway and --ip-range need --subnet", o.Name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// newID is a docker-style network id: 64 hex digits.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fixedID is the id of a predefined network: the same on every host and
// run, so that `network ls` and scripts keep seeing one id.
func fixedID(name string) string {
	sum := sha256.Sum256([]byte("berth network " + name))
	return hex.EncodeToString(sum[:])
}

// predefined returns docker's host and none networks, which have no
// conflist: they are modes of `run --net`, listed as docker lists them.
func predefined(name string) Network {
	driver := name
	if name == "none" {
		driver = "null"
	}
	return Network{
		Name: name, ID: fixedID(name), Scope: "local", Driver: driver,
		IPAM:       IPAM{Driver: "default", Options: map[string]string{}, Config: []IPAMConfig{}},
		Attachable: true, Containers: map[string]Endpoint{}, Options: map[string]string{}, Labels: map[string]string{},
	}
}
