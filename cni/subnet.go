package cni

import (
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
)

// addressing is a network's subnet worked out from the options: the
// subnet, its gateway, and the range containers get addresses from.
type addressing struct {
	subnet  netip.Prefix
	gateway netip.Addr
	ipRange netip.Prefix // invalid: the whole subnet
}

// parseAddressing checks --subnet, --gateway and --ip-range as docker
// does: IPv4, the gateway and the range inside the subnet, the gateway
// neither the subnet's own address nor its broadcast.
func parseAddressing(name, subnet, gateway, ipRange string) (addressing, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("create network %s: %w: %s", name, errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	var a addressing
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return a, bad("--subnet %q is not a CIDR (like 10.1.0.0/16)", subnet)
	}
	if !p.Addr().Is4() {
		return a, fmt.Errorf("create network %s: --subnet %s: %w: IPv6 networks are not supported yet", name, subnet, errdefs.ErrNotImplemented)
	}
	if p.Bits() > 30 {
		return a, bad("--subnet %s leaves no room for a gateway and a container: use /30 or larger", subnet)
	}
	a.subnet = p.Masked()
	if a.subnet != p {
		return a, bad("--subnet %s has host bits set: did you mean %s?", subnet, a.subnet)
	}
	if ipRange != "" {
		r, err := netip.ParsePrefix(ipRange)
		if err != nil {
			return a, bad("--ip-range %q is not a CIDR", ipRange)
		}
		r = r.Masked()
		if !r.Addr().Is4() || r.Bits() < a.subnet.Bits() || !a.subnet.Contains(r.Addr()) {
			return a, bad("--ip-range %s is not inside --subnet %s", ipRange, subnet)
		}
		a.ipRange = r
	}
	if gateway == "" {
		a.gateway = a.subnet.Addr().Next()
		return a, nil
	}
	gw, err := netip.ParseAddr(gateway)
	if err != nil {
		return a, bad("--gateway %q is not an IP address", gateway)
	}
	if !a.subnet.Contains(gw) || gw == a.subnet.Addr() || gw == lastAddr(a.subnet) {
		return a, bad("--gateway %s is not a host address of --subnet %s", gateway, subnet)
	}
	a.gateway = gw
	return a, nil
}

// lastAddr is the last address of p (its broadcast for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	for i := 3; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	return netip.AddrFrom4(b)
}

// allocationRange is the first and last address host-local may give out:
// the ip-range (or the subnet) without the subnet's own address and its
// broadcast. host-local leaves the gateway out by itself.
func (a addressing) allocationRange() (start, end netip.Addr) {
	r := a.ipRange
	if !r.IsValid() {
		r = a.subnet
	}
	start, end = r.Addr(), lastAddr(r)
	if start == a.subnet.Addr() {
		start = start.Next()
	}
	if end == lastAddr(a.subnet) {
		end = end.Prev()
	}
	return start, end
}

// overlaps says whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}

// defaultPools are the subnets handed to networks created without
// --subnet, in docker's order: 172.18-31.0.0/16 (172.17 is docker's own
// bridge, and berth's default is 10.88.0.0/16), then 192.168.0.0/16 in
// /20s.
func defaultPools() []netip.Prefix {
	var pools []netip.Prefix
	for i := 18; i <= 31; i++ {
		pools = append(pools, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		pools = append(pools, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return pools
}

// pickSubnet returns the first pool that overlaps neither a subnet in use
// (other networks') nor a route of the host.
func pickSubnet(pools, used []netip.Prefix) (netip.Prefix, bool) {
	for _, p := range pools {
		free := true
		for _, u := range used {
			if overlaps(p, u) {
				free = false
				break
			}
		}
		if free {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
