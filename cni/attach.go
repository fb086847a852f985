package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"
)

// PortMapping is one published port (-p); the JSON is the portmap
// plugin's portMappings entry.
type PortMapping struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      uint16 `json:"hostPort"`
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}

// AttachOptions are a container's settings on one network (`run
// --network-alias --ip --mac-address -p`, `network connect`).
type AttachOptions struct {
	// ContainerName is shown by `network inspect`.
	ContainerName string
	// IfName is the interface in the container: eth0 (the default) for
	// its first network, eth1 for its second, and so on.
	IfName string
	// IP asks for this address; it must be in the network's range.
	IP netip.Addr
	// MAC asks for this hardware address.
	MAC string
	// Aliases are further names of the container on this network.
	Aliases []string
	// Ports are published on the host; HostPort 0 gets a free port, which
	// the Attachment shows.
	Ports []PortMapping
	// Hosts is the container's hosts file, which the store rewrites
	// after every attach and detach of a container on the same network
	// (hosts.go). The same for each of the container's networks.
	Hosts HostsFile
}

// Attachment is a container on a network: what Attach made, kept under
// <DataRoot>/network/endpoints/<network>/<container id>.json until Detach
// undoes it.
type Attachment struct {
	ContainerID   string        `json:"containerID"`
	ContainerName string        `json:"containerName,omitempty"`
	Network       string        `json:"network"`
	NetworkID     string        `json:"networkID"`
	EndpointID    string        `json:"endpointID"`
	NetNS         string        `json:"netns"`
	IfName        string        `json:"ifName"`
	HostInterface string        `json:"hostInterface"` // the host's end of the veth
	IP            netip.Prefix  `json:"ip"`            // the container's address and the subnet's length
	Gateway       netip.Addr    `json:"gateway"`       // invalid on an internal network
	MAC           string        `json:"mac"`
	Aliases       []string      `json:"aliases,omitempty"`
	Ports         []PortMapping `json:"ports,omitempty"`
	// Requested are the options that shaped the attachment, given to the
	// plugins again at teardown (portmap finds its rules by them).
	RequestedIP  netip.Addr `json:"requestedIP,omitzero"`
	RequestedMAC string     `json:"requestedMAC,omitempty"`
	// Plugins are the types of the network's plugins that ran for the
	// attachment, in order (chainFor), which its teardown runs again;
	// none recorded (an older berth's record) is the whole conflist.
	Plugins []string `json:"plugins,omitempty"`
	// Hosts is the container's hosts file, kept current.
	Hosts HostsFile `json:"hosts,omitzero"`
}

// cniConfig is libcni over the store's plugin dirs and cache, with the
// bridge plugin run in-process where berth can (bridge.go).
func (s *Store) cniConfig() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(s.pluginDirs, s.cacheDir(), newPluginExec())
}

// chainFor is the part of the network's chain that a's attach runs, and
// its teardown again: portmap only for published ports (it costs an exec
// and, at teardown, iptables calls even with none), and never the
// firewall plugin of a conflist an older berth wrote, whose isolation
// berth's own rules per network now give (host.go). With a.Plugins set
// (a recorded attachment), exactly those.
func chainFor(list *libcni.NetworkConfigList, a *Attachment) (*libcni.NetworkConfigList, error) {
	keep := func(typ string) bool {
		if a.Plugins != nil {
			return slices.Contains(a.Plugins, typ)
		}
		return typ != "firewall" && (typ != "portmap" || len(a.Ports) > 0)
	}
	var doc map[string]json.RawMessage
	var raw []json.RawMessage
	if err := json.Unmarshal(list.Bytes, &doc); err != nil {
		return nil, fmt.Errorf("network %s: read its conflist: %w", list.Name, err)
	}
	if err := json.Unmarshal(doc["plugins"], &raw); err != nil {
		return nil, fmt.Errorf("network %s: read its conflist's plugins: %w", list.Name, err)
	}
	if len(raw) != len(list.Plugins) {
		return nil, fmt.Errorf("network %s: its conflist has %d plugins, libcni read %d", list.Name, len(raw), len(list.Plugins))
	}
	out := *list
	out.Plugins = nil
	var kept []json.RawMessage
	for i, p := range list.Plugins {
		if keep(p.Network.Type) {
			out.Plugins = append(out.Plugins, p)
			kept = append(kept, raw[i])
		}
	}
	// Bytes is what libcni caches as the attachment's configuration
	// (GetNetworkListCachedConfig, GC): the chain that ran, not all.
	var err error
	if doc["plugins"], err = json.Marshal(kept); err != nil {
		return nil, err
	}
	if out.Bytes, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	return &out, nil
}

// pluginTypes lists the types of the list's plugins, in order.
func pluginTypes(list *libcni.NetworkConfigList) []string {
	out := []string{}
	for _, p := range list.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}

// confList loads n's conflist for libcni.
func (s *Store) confList(n *Network) (*libcni.NetworkConfigList, error) {
	body, err := os.ReadFile(s.confPath(n.Name))
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	list, err := libcni.NetworkConfFromBytes(body)
	if err != nil {
		return nil, fmt.Errorf("network %s: %s: %w", n.Name, s.confPath(n.Name), err)
	}
	return list, nil
}

// runtimeConf is what libcni passes the plugins for a.
func runtimeConf(a *Attachment) *libcni.RuntimeConf {
	caps := map[string]any{}
	if len(a.Ports) > 0 {
		caps["portMappings"] = a.Ports
	}
	if a.RequestedIP.IsValid() {
		caps["ips"] = []string{a.RequestedIP.String()}
	}
	if a.RequestedMAC != "" {
		caps["mac"] = a.RequestedMAC
	}
	return &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: a.NetNS, IfName: a.IfName, CapabilityArgs: caps}
}

// Attach puts the container into network: a veth from the network
// namespace at netnsPath to the network's bridge, an address, its
// published ports. On failure nothing of it is left. The returned
// Attachment has the address, gateway and MAC the container got.
func (s *Store) Attach(ctx context.Context, netnsPath, containerID, network string, o AttachOptions) (Attachment, error) {
	n, err := s.find(network)
	if err != nil {
		return Attachment{}, err
	}
	if n.Driver != "bridge" {
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w: %s is a mode of --net, not a network to attach to", containerID, n.Name, errdefs.ErrInvalidArgument, n.Name)
	}
	a := Attachment{
		ContainerID: containerID, ContainerName: o.ContainerName, Network: n.Name, NetworkID: n.ID, EndpointID: newID(),
		NetNS: netnsPath, IfName: o.IfName, Aliases: o.Aliases, Ports: withProtocols(o.Ports),
		RequestedIP: o.IP, RequestedMAC: o.MAC, Hosts: o.Hosts,
	}
	if a.IfName == "" {
		a.IfName = "eth0"
	}
	if _, err := s.readEndpoint(n.Name, containerID); err == nil {
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w: the container is already on it", containerID, n.Name, errdefs.ErrAlreadyExists)
	}
	full, err := s.confList(&n)
	if err != nil {
		return Attachment{}, err
	}
	list, err := chainFor(full, &a)
	if err != nil {
		return Attachment{}, err
	}
	a.Plugins = pluginTypes(list)
	if err := s.ensureRules(&n); err != nil {
		return Attachment{}, err
	}
	// Recorded before the plugins run: a berth killed half way leaves a
	// record that Detach (and `network rm`'s refusal) can find.
	if err := s.recordWithPorts(&a); err != nil {
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w", containerID, n.Name, err)
	}
	cni := s.cniConfig()
	rt := runtimeConf(&a)
	res, err := cni.AddNetworkList(ctx, list, rt)
	if err == nil {
		err = a.fromResult(res, n.Bridge())
	}
	if err != nil {
		// Undo what the plugins did; the container's address goes back.
		if derr := cni.DelNetworkList(context.WithoutCancel(ctx), list, rt); derr != nil {
			return Attachment{}, fmt.Errorf("attach %s to network %s: %w (and undoing it: %w; the endpoint stays recorded, for Detach or DetachStale to retry)", containerID, n.Name, err, derr)
		}
		s.removeEndpoint(n.Name, containerID)
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w", containerID, n.Name, err)
	}
	if err := s.writeEndpoint(&a); err != nil {
		return Attachment{}, err
	}
	if err := s.refreshHosts(&a, n.Name, true); err != nil {
		if derr := s.Detach(context.WithoutCancel(ctx), containerID, n.Name); derr != nil {
			err = fmt.Errorf("%w (and undoing the attach: %w)", err, derr)
		}
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w", containerID, n.Name, err)
	}
	return a, nil
}

// withProtocols defaults each mapping's protocol to tcp.
func withProtocols(ports []PortMapping) []PortMapping {
	out := make([]PortMapping, len(ports))
	for i, p := range ports {
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		out[i] = p
	}
	return out
}

// fromResult takes the container's address, gateway and MAC, and the
// host's end of its veth, from the chain's result.
func (a *Attachment) fromResult(res types.Result, bridge string) error {
	r, err := types100.GetResult(res)
	if err != nil {
		return fmt.Errorf("read the plugins' result: %w", err)
	}
	for _, i := range r.Interfaces {
		if i.Sandbox == "" && i.Name != bridge {
			a.HostInterface = i.Name
		}
	}
	for _, ipc := range r.IPs {
		if ipc.Interface == nil || *ipc.Interface >= len(r.Interfaces) || r.Interfaces[*ipc.Interface].Sandbox == "" {
			continue
		}
		addr, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok || !addr.Unmap().Is4() {
			continue
		}
		bits, _ := ipc.Address.Mask.Size()
		a.IP = netip.PrefixFrom(addr.Unmap(), bits)
		if gw, ok := netip.AddrFromSlice(ipc.Gateway); ok {
			a.Gateway = gw.Unmap()
		}
		a.MAC = r.Interfaces[*ipc.Interface].Mac
		return nil
	}
	return fmt.Errorf("the plugins' result has no IPv4 address for %s", a.IfName)
}

// Detach takes the container off network and frees everything Attach
// made: the veth, the address, the published ports' rules. It works when
// the container's network namespace is already gone (the plugins find
// what to undo in libcni's cache and the record; the veth went with the
// namespace), and when a process in it was killed. Deleting the veth
// makes the kernel wait 15-30 ms: where the namespace goes too, Release
// is quicker. A container that is not (or no longer) on the network is
// an error that errdefs.IsNotFound reports, which a caller undoing
// things may ignore: a second Detach is one; DetachAll and Release
// return nil then.
func (s *Store) Detach(ctx context.Context, containerID, network string) error {
	n, err := s.find(network)
	if err != nil {
		return err
	}
	a, err := s.readEndpoint(n.Name, containerID)
	if err != nil {
		return err
	}
	full, err := s.confList(&n)
	if err != nil {
		return err
	}
	// A record of an older berth ran the whole conflist.
	list := full
	if a.Plugins != nil {
		if list, err = chainFor(full, &a); err != nil {
			return err
		}
	}
	rt := runtimeConf(&a)
	if !isNetNS(a.NetNS) {
		// Gone, or no longer a namespace (unmounted): the plugins then
		// free what lives outside it (the veth went with it).
		rt.NetNS = ""
	}
	if err := s.cniConfig().DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("detach %s from network %s: %w", containerID, n.Name, err)
	}
	if err := s.removeEndpoint(n.Name, containerID); err != nil {
		return err
	}
	// The others on the network lose the container's line. Not an error
	// of the detach, which is done: the container's own file may be gone
	// with it, and another's keeps its older lines.
	s.refreshHosts(&a, n.Name, false)
	return nil
}

// DetachAll takes the container off every network it is on.
func (s *Store) DetachAll(ctx context.Context, containerID string) error {
	dirs, err := os.ReadDir(s.endpointDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", containerID, err)
	}
	var errs []error
	for _, d := range dirs {
		if _, err := s.readEndpoint(d.Name(), containerID); err != nil {
			continue
		}
		errs = append(errs, s.Detach(ctx, containerID, d.Name()))
	}
	return errors.Join(errs...)
}

// DetachStale detaches every container that live does not name: those
// that went without a Detach (berth killed, a crash, containerd's restart
// removing them). It returns the ids detached.
func (s *Store) DetachStale(ctx context.Context, live func(containerID string) bool) ([]string, error) {
	dirs, err := os.ReadDir(s.endpointDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("detach stale endpoints: %w", err)
	}
	var gone []string
	var errs []error
	for _, d := range dirs {
		eps, err := s.endpoints(d.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for id := range eps {
			if live(id) {
				continue
			}
			if err := s.Detach(ctx, id, d.Name()); err != nil {
				errs = append(errs, err)
				continue
			}
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	return gone, errors.Join(errs...)
}

// Attachments returns the networks the container is on, by name.
func (s *Store) Attachments(containerID string) ([]Attachment, error) {
	dirs, err := os.ReadDir(s.endpointDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, d := range dirs {
		if a, err := s.readEndpoint(d.Name(), containerID); err == nil {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Network < out[j].Network })
	return out, nil
}

// isNetNS says whether path is a mounted network namespace (nsfs).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return path != "" && unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

func (s *Store) endpointPath(network, containerID string) string {
	return filepath.Join(s.endpointDir(), network, containerID+".json")
}

func (s *Store) readEndpoint(network, containerID string) (Attachment, error) {
	var a Attachment
	body, err := os.ReadFile(s.endpointPath(network, containerID))
	if errors.Is(err, os.ErrNotExist) {
		return a, fmt.Errorf("container %s is not attached to network %s: %w", containerID, network, errdefs.ErrNotFound)
	}
	if err == nil {
		err = json.Unmarshal(body, &a)
	}
	if err != nil {
		return a, fmt.Errorf("endpoint of %s on network %s: %w", containerID, network, err)
	}
	return a, nil
}

func (s *Store) writeEndpoint(a *Attachment) error {
	dir := filepath.Dir(s.endpointPath(a.Network, a.ContainerID))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record endpoint: %w", err)
	}
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp := s.endpointPath(a.Network, a.ContainerID) + ".tmp"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return fmt.Errorf("record endpoint: %w", err)
	}
	if err := os.Rename(tmp, s.endpointPath(a.Network, a.ContainerID)); err != nil {
		return fmt.Errorf("record endpoint: %w", err)
	}
	return nil
}

func (s *Store) removeEndpoint(network, containerID string) error {
	if err := os.Remove(s.endpointPath(network, containerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove endpoint record: %w", err)
	}
	return nil
}

// endpoints returns the attachments recorded for network, by container id.
func (s *Store) endpoints(network string) (map[string]Attachment, error) {
	paths, err := filepath.Glob(filepath.Join(s.endpointDir(), network, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]Attachment{}
	for _, p := range paths {
		var a Attachment
		body, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = json.Unmarshal(body, &a)
		}
		if err != nil {
			return nil, fmt.Errorf("endpoints of network %s: %w", network, err)
		}
		out[a.ContainerID] = a
	}
	return out, nil
}

// fillEndpoints lists n's containers, as `network inspect` shows them.
func (s *Store) fillEndpoints(n *Network) error {
	n.Containers = map[string]Endpoint{}
	if n.Driver != "bridge" {
		return nil
	}
	eps, err := s.endpoints(n.Name)
	if err != nil {
		return err
	}
	for id, a := range eps {
		e := Endpoint{Name: a.ContainerName, EndpointID: a.EndpointID, MacAddress: a.MAC}
		if a.IP.IsValid() {
			e.IPv4Address = a.IP.String()
		}
		n.Containers[id] = e
	}
	return nil
}
