package containers

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/docker/go-connections/nat"
)

// DefaultNetwork is the network of a container run without --net, as
// docker's: the predefined bridge network.
const DefaultNetwork = "bridge"

// isNetworkMode says whether --net names a mode rather than a network.
func isNetworkMode(n string) bool {
	return n == "none" || n == "host" || strings.HasPrefix(n, "container:")
}

// parseNetwork parses --net (repeated: several networks), --network-alias,
// --ip, --mac-address, -p, -P, --expose, --dns*, and --add-host, with
// docker's refusals of what cannot go together.
func (f *Flags) parseNetwork(cfg *Config, hc *HostConfig) error {
	nets := f.Networks
	if len(nets) == 0 {
		nets = []string{DefaultNetwork}
		if f.DefaultNetwork != "" {
			nets = []string{f.DefaultNetwork}
		}
	}
	for _, n := range nets {
		if n == "" || n == "container:" {
			return fmt.Errorf("invalid --net %q: want bridge, host, none, container:NAME or a network's name", n)
		}
		if isNetworkMode(n) && len(nets) > 1 {
			return fmt.Errorf("conflicting options: --net %s cannot be given with other networks (%s)", n, strings.Join(nets, ", "))
		}
	}
	mode := nets[0]
	hc.NetworkMode = mode
	joined := strings.HasPrefix(mode, "container:")
	switch {
	case joined && f.Hostname != "":
		return fmt.Errorf("conflicting options: --hostname and --net %s (the container has that container's host name)", mode)
	case joined && (len(f.DNS) > 0 || len(f.DNSSearch) > 0 || len(f.DNSOptions) > 0 || len(f.AddHosts) > 0):
		return fmt.Errorf("conflicting options: --dns, --dns-search, --dns-option and --add-host cannot be given with --net %s (the container has that container's files)", mode)
	case joined && (len(f.Publish) > 0 || f.PublishAll):
		return fmt.Errorf("conflicting options: port publishing and --net %s: publish the ports on that container", mode)
	case isNetworkMode(mode) && (f.IP != "" || f.MACAddress != "" || len(f.NetworkAliases) > 0):
		return fmt.Errorf("conflicting options: --ip, --mac-address and --network-alias need a network, not --net %s", mode)
	case mode == DefaultNetwork && len(f.NetworkAliases) > 0:
		return fmt.Errorf("--network-alias: network-scoped aliases are only supported for user-defined networks: create one (berth network create NAME) and run with --net NAME")
	case mode == DefaultNetwork && f.IP != "":
		return fmt.Errorf("--ip: user specified IP address is supported on user-defined networks only: create one with --subnet (berth network create --subnet CIDR NAME)")
	}
	if f.IP != "" {
		if ip, err := netip.ParseAddr(f.IP); err != nil || !ip.Is4() {
			return fmt.Errorf("invalid --ip %q: want an IPv4 address in the network's subnet", f.IP)
		}
	}
	if f.MACAddress != "" {
		if _, err := net.ParseMAC(f.MACAddress); err != nil {
			return fmt.Errorf("invalid --mac-address %q: want a MAC address such as 02:42:ac:11:00:02", f.MACAddress)
		}
		cfg.MacAddress = f.MACAddress
	}
	if !isNetworkMode(mode) {
		for i, n := range nets {
			e := EndpointRequest{Network: n}
			if i == 0 {
				e.Aliases, e.IP, e.MAC = f.NetworkAliases, f.IP, f.MACAddress
			}
			hc.Endpoints = append(hc.Endpoints, e)
		}
	}
	if err := f.parsePorts(cfg, hc); err != nil {
		return err
	}
	for _, d := range f.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("invalid --dns %q: want a name server's IP address", d)
		}
	}
	hc.DNS, hc.DNSSearch, hc.DNSOptions = f.DNS, f.DNSSearch, f.DNSOptions
	for _, h := range f.AddHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			// An IPv6 address has colons of its own: name:addr splits at
			// the first.
			return fmt.Errorf("invalid --add-host %q: want NAME:IP", h)
		}
		if _, err := netip.ParseAddr(ip); err != nil || name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("invalid --add-host %q: want NAME:IP with an IP address", h)
		}
		hc.ExtraHosts = append(hc.ExtraHosts, h)
	}
	return nil
}

// parsePorts parses --expose, -p and -P with docker's go-connections,
// which reads every form docker takes: PORT, HOSTPORT:PORT,
// IP:HOSTPORT:PORT, IP::PORT, ranges and /udp.
func (f *Flags) parsePorts(cfg *Config, hc *HostConfig) error {
	for _, e := range f.Expose {
		proto, ports := nat.SplitProtoPort(e)
		lo, hi, err := nat.ParsePortRangeToInt(ports)
		if err != nil || lo == 0 {
			return fmt.Errorf("invalid --expose %q: want PORT[/tcp|udp] or a range START-END", e)
		}
		for p := lo; p <= hi; p++ {
			port, err := nat.NewPort(proto, fmt.Sprint(p))
			if err != nil {
				return fmt.Errorf("invalid --expose %q: %w", e, err)
			}
			addExposed(cfg, string(port))
		}
	}
	hc.PublishAllPorts = f.PublishAll
	if len(f.Publish) == 0 {
		return nil
	}
	exposed, bindings, err := nat.ParsePortSpecs(f.Publish)
	if err != nil {
		return fmt.Errorf("invalid -p %s: %w: want [IP:][HOSTPORT:]PORT[/tcp|udp]", strings.Join(f.Publish, ", "), err)
	}
	for p := range exposed {
		addExposed(cfg, string(p))
	}
	hc.PortBindings = map[string][]PortBinding{}
	for p, bs := range bindings {
		for _, b := range bs {
			if b.HostIP != "" {
				if ip, err := netip.ParseAddr(b.HostIP); err != nil || !ip.Is4() {
					return fmt.Errorf("invalid -p: host address %q: want an IPv4 address", b.HostIP)
				}
			}
			hc.PortBindings[string(p)] = append(hc.PortBindings[string(p)], PortBinding{HostIP: b.HostIP, HostPort: b.HostPort})
		}
	}
	return nil
}

func addExposed(cfg *Config, port string) {
	if cfg.ExposedPorts == nil {
		cfg.ExposedPorts = map[string]struct{}{}
	}
	cfg.ExposedPorts[port] = struct{}{}
}
