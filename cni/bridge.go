package cni

// The bridge plugin, in-process, for the configurations berth writes.
//
// Why: issue 12 gives a container's network (attach and detach) 30 ms at
// the median, and the reference plugins cannot keep it on this kind of
// machine. Each is a Go binary whose start alone (runtime and package
// init: knftables, nftables, otel) takes 10-20 ms; attach runs bridge,
// which runs host-local, and detach the same two again: 40-80 ms before
// any work. And bridge, once the veth is up, looks at the host end's
// state and, when the kernel's link watch has not marked it up yet (on a
// busy machine it never has), sleeps a fixed 50 ms before looking again.
//
// So berth does what the bridge plugin with host-local IPAM does for the
// configurations it renders (renderConfList) itself, inside libcni: the
// plugin chain, the runtime config libcni injects, its result cache and
// the order of the chain stay libcni's, and every other plugin (portmap),
// every other command (CHECK, GC, STATUS) and any configuration with a
// setting berth does not render go to the plugin binary as before. The
// conflist stays a plain CNI one that the bridge binary runs as well, and
// the state is the same: host-local's files (hostlocal.go), a veth on the
// bridge, so that the binaries free what berth made and the other way
// round.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pluginExec is libcni's plugin executor with the bridge plugin run
// in-process where berth can.
type pluginExec struct {
	*invoke.DefaultExec
}

func newPluginExec() *pluginExec {
	return &pluginExec{DefaultExec: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}}
}

func (e *pluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	if filepath.Base(pluginPath) == "bridge" {
		if c, ok := parseBridgeConf(stdin); ok {
			env := pluginEnv(environ)
			switch env["CNI_COMMAND"] {
			case "ADD":
				return bridgeAdd(ctx, c, env)
			case "DEL":
				return nil, bridgeDel(c, env)
			}
		}
	}
	return e.DefaultExec.ExecPlugin(ctx, pluginPath, stdin, environ)
}

// bridgeConf is the bridge plugin's configuration as berth renders it
// (bridgePlugin), with what libcni injects.
type bridgeConf struct {
	CNIVersion    string    `json:"cniVersion"`
	Name          string    `json:"name"`
	Bridge        string    `json:"bridge"`
	IsGateway     bool      `json:"isGateway"`
	HairpinMode   bool      `json:"hairpinMode"`
	IPAM          hostLocal `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips"`
		MAC string   `json:"mac"`
	} `json:"runtimeConfig"`
}

// bridgeKeys and hostLocalKeys are the settings the in-process bridge
// knows; a configuration with any other goes to the binary.
var (
	bridgeKeys    = []string{"cniVersion", "name", "type", "bridge", "isGateway", "ipMasq", "hairpinMode", "capabilities", "ipam", "runtimeConfig", "prevResult"}
	hostLocalKeys = []string{"type", "ranges", "routes", "dataDir"}
)

// parseBridgeConf reads a bridge configuration the in-process bridge can
// run: host-local IPAM with one IPv4 range, no masquerade (berth's own
// rule does it), none of the plugin's other settings.
func parseBridgeConf(stdin []byte) (*bridgeConf, bool) {
	var raw map[string]json.RawMessage
	var ipam map[string]json.RawMessage
	if json.Unmarshal(stdin, &raw) != nil || json.Unmarshal(raw["ipam"], &ipam) != nil ||
		!onlyKeys(raw, bridgeKeys) || !onlyKeys(ipam, hostLocalKeys) || string(raw["ipMasq"]) == "true" {
		return nil, false
	}
	var c bridgeConf
	if json.Unmarshal(stdin, &c) != nil || c.Bridge == "" || c.IPAM.Type != "host-local" || c.IPAM.DataDir == "" ||
		len(c.IPAM.Ranges) != 1 || len(c.IPAM.Ranges[0]) != 1 {
		return nil, false
	}
	if _, err := c.ipamRange(); err != nil {
		return nil, false
	}
	return &c, true
}

func onlyKeys(m map[string]json.RawMessage, known []string) bool {
	for k := range m {
		found := false
		for _, x := range known {
			found = found || k == x
		}
		if !found {
			return false
		}
	}
	return true
}

// pluginEnv is the CNI_* environment libcni gives a plugin.
func pluginEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "CNI_") {
			env[k] = v
		}
	}
	return env
}

// addrRange is the one range of a network's host-local configuration.
type addrRange struct {
	subnet     netip.Prefix
	start, end netip.Addr
	gateway    netip.Addr
}

func (c *bridgeConf) ipamRange() (addrRange, error) {
	r := c.IPAM.Ranges[0][0]
	var a addrRange
	var err error
	if a.subnet, err = netip.ParsePrefix(r.Subnet); err != nil || !a.subnet.Addr().Is4() {
		return a, fmt.Errorf("subnet %q: want an IPv4 CIDR", r.Subnet)
	}
	a.subnet = a.subnet.Masked()
	parse := func(s string, def netip.Addr) (netip.Addr, error) {
		if s == "" {
			return def, nil
		}
		ip, err := netip.ParseAddr(s)
		if err != nil || !a.subnet.Contains(ip) {
			return ip, fmt.Errorf("address %q is not in subnet %s", s, a.subnet)
		}
		return ip, nil
	}
	first, last := a.subnet.Addr().Next(), lastAddr(a.subnet).Prev()
	if a.start, err = parse(r.RangeStart, first); err != nil {
		return a, err
	}
	if a.end, err = parse(r.RangeEnd, last); err != nil {
		return a, err
	}
	a.gateway, err = parse(r.Gateway, first)
	return a, err
}

// bridgeAdd is the bridge plugin's ADD: an address from host-local's
// state, the bridge (made if missing) with the gateway's address, a veth
// from the container's namespace to it, the address and routes in the
// namespace. What it did is undone when a later step fails.
func bridgeAdd(ctx context.Context, c *bridgeConf, env map[string]string) (_ []byte, err error) {
	id, ifName, nsPath := env["CNI_CONTAINERID"], env["CNI_IFNAME"], env["CNI_NETNS"]
	r, err := c.ipamRange()
	if err != nil {
		return nil, err
	}
	nsFile, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	defer nsFile.Close()
	var mac net.HardwareAddr
	if c.RuntimeConfig.MAC != "" {
		if mac, err = net.ParseMAC(c.RuntimeConfig.MAC); err != nil {
			return nil, fmt.Errorf("mac %q: %w", c.RuntimeConfig.MAC, err)
		}
	}
	br, err := ensureBridge(c.Bridge)
	if err != nil {
		return nil, err
	}
	ip, err := reserveAddr(c, r, id, ifName)
	if err != nil {
		return nil, err
	}
	addr := netip.PrefixFrom(ip, r.subnet.Bits())
	var hostVeth netlink.Link
	defer func() {
		if err != nil {
			if hostVeth != nil {
				netlink.LinkDel(hostVeth)
			}
			if st, serr := openHostLocal(c.IPAM.DataDir, c.Name); serr == nil {
				st.release(id, ifName)
				st.close()
			}
		}
	}()
	if c.IsGateway {
		if err := ensureGateway(br, netip.PrefixFrom(r.gateway, r.subnet.Bits())); err != nil {
			return nil, err
		}
	}
	if hostVeth, err = addVeth(br, ifName, int(nsFile.Fd()), mac, c.HairpinMode); err != nil {
		return nil, err
	}
	var routes []*types.Route
	for _, rt := range c.IPAM.Routes {
		_, dst, err := net.ParseCIDR(rt.Dst)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rt.Dst, err)
		}
		routes = append(routes, &types.Route{Dst: *dst})
	}
	var contMAC string
	if err := withNetNS(nsPath, func() error {
		var err error
		contMAC, err = configureContainerLink(ifName, addr, r.gateway, routes)
		return err
	}); err != nil {
		return nil, fmt.Errorf("configure %s in %s: %w", ifName, nsPath, err)
	}
	if err := waitOperUp(ctx, hostVeth); err != nil {
		return nil, err
	}
	// The bridge's MAC may have changed with its first port.
	if br, err = netlink.LinkByIndex(br.Attrs().Index); err != nil {
		return nil, fmt.Errorf("bridge %s: %w", c.Bridge, err)
	}
	return json.Marshal(bridgeResult(c, br, hostVeth, ifName, contMAC, nsPath, addr, r.gateway, routes))
}

// bridgeResult is the plugin's result: the bridge, the veth's host end,
// the container's interface with its address.
func bridgeResult(c *bridgeConf, br, hostVeth netlink.Link, ifName, contMAC, nsPath string, addr netip.Prefix, gw netip.Addr, routes []*types.Route) *types100.Result {
	container := 2
	return &types100.Result{
		CNIVersion: c.CNIVersion,
		Interfaces: []*types100.Interface{
			{Name: c.Bridge, Mac: br.Attrs().HardwareAddr.String()},
			{Name: hostVeth.Attrs().Name, Mac: hostVeth.Attrs().HardwareAddr.String()},
			{Name: ifName, Mac: contMAC, Sandbox: nsPath},
		},
		IPs: []*types100.IPConfig{{
			Interface: &container,
			Address:   net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)},
			Gateway:   gw.AsSlice(),
		}},
		Routes: routes,
	}
}

// reserveAddr takes the address asked for (runtimeConfig "ips") or the
// next free one of the range, as host-local does.
func reserveAddr(c *bridgeConf, r addrRange, id, ifName string) (netip.Addr, error) {
	st, err := openHostLocal(c.IPAM.DataDir, c.Name)
	if err != nil {
		return netip.Addr{}, err
	}
	defer st.close()
	if len(c.RuntimeConfig.IPs) == 0 {
		return st.allocate(id, ifName, r.start, r.end, r.gateway)
	}
	s := c.RuntimeConfig.IPs[0]
	ip, err := netip.ParseAddr(s)
	if p, perr := netip.ParsePrefix(s); err != nil && perr == nil {
		ip, err = p.Addr(), nil
	}
	if err != nil || ip.Compare(r.start) < 0 || ip.Compare(r.end) > 0 || ip == r.gateway {
		return ip, fmt.Errorf("requested IP address %s is not in the network's range %s-%s (or is its gateway)", s, r.start, r.end)
	}
	ok, err := st.reserve(id, ifName, ip)
	if err == nil && !ok {
		err = fmt.Errorf("requested IP address %s is not available: another container has it", ip)
	}
	return ip, err
}

// ensureBridge returns the bridge called name, made and set up if missing.
func ensureBridge(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err == nil {
		if _, ok := l.(*netlink.Bridge); !ok {
			return nil, fmt.Errorf("%s is a %s device, not a bridge: give the network another bridge name", name, l.Type())
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := netlink.LinkSetUp(l); err != nil {
				return nil, fmt.Errorf("set bridge %s up: %w", name, err)
			}
		}
		return l, nil
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1, Flags: net.FlagUp}}
	if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create bridge %s: %w", name, err)
	}
	if l, err = netlink.LinkByName(name); err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	return l, nil
}

// ensureGateway gives the bridge the gateway's address (refusing another
// IPv4 one), pins its MAC, as the plugin does, so that it does not change
// with its ports, and turns on IPv4 forwarding.
func ensureGateway(br netlink.Link, gw netip.Prefix) error {
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("addresses of bridge %s: %w", br.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		p, _ := netip.ParsePrefix(a.IPNet.String())
		if p == gw {
			found = true
		} else {
			return fmt.Errorf("bridge %s already has the address %s, not the network's gateway %s", br.Attrs().Name, a.IPNet, gw)
		}
	}
	if !found {
		ipn := &net.IPNet{IP: gw.Addr().AsSlice(), Mask: net.CIDRMask(gw.Bits(), 32)}
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipn}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %s to bridge %s: %w", gw, br.Attrs().Name, err)
		}
		if hw := br.Attrs().HardwareAddr; len(hw) == 6 && hw.String() != "00:00:00:00:00:00" {
			if err := netlink.LinkSetHardwareAddr(br, hw); err != nil {
				return fmt.Errorf("pin the MAC of bridge %s: %w", br.Attrs().Name, err)
			}
		}
	}
	return enableIPForward()
}

// enableIPForward turns on net.ipv4.ip_forward unless it is on.
func enableIPForward() error {
	const key = "/proc/sys/net/ipv4/ip_forward"
	if v, err := os.ReadFile(key); err == nil && strings.TrimSpace(string(v)) == "1" {
		return nil
	}
	if err := os.WriteFile(key, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}

// addVeth makes the veth: its host end up on the bridge (hairpin as
// asked), the other called ifName in the namespace nsFd, with mac if
// given. One netlink request, where the plugin moves the ends one by one.
func addVeth(br netlink.Link, ifName string, nsFd int, mac net.HardwareAddr, hairpin bool) (netlink.Link, error) {
	for range 5 {
		b := make([]byte, 4)
		rand.Read(b)
		name := "veth" + hex.EncodeToString(b)
		v := &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index, Flags: net.FlagUp, TxQLen: -1},
			PeerName:  ifName, PeerNamespace: netlink.NsFd(nsFd), PeerHardwareAddr: mac,
		}
		err := netlink.LinkAdd(v)
		if errors.Is(err, unix.EEXIST) {
			if _, lerr := netlink.LinkByName(name); lerr == nil {
				continue // the host's name is taken: another
			}
			return nil, fmt.Errorf("the container already has an interface %s", ifName)
		}
		if err != nil {
			return nil, fmt.Errorf("create veth %s to %s: %w", name, ifName, err)
		}
		l, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetHairpin(l, hairpin)
			if err != nil {
				netlink.LinkDel(l)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("veth %s on bridge %s: %w", name, br.Attrs().Name, err)
		}
		return l, nil
	}
	return nil, errors.New("create veth: no free host interface name")
}

// configureContainerLink, in the container's namespace, gives ifName its
// address, sets it up and adds the routes through gw; it returns its MAC.
// As the plugin: gratuitous ARP when it comes up (an address that is
// reused reaches the neighbours' caches), no IPv6 DAD.
func configureContainerLink(ifName string, addr netip.Prefix, gw netip.Addr, routes []*types.Route) (string, error) {
	l, err := netlink.LinkByName(ifName)
	if err != nil {
		return "", err
	}
	os.WriteFile("/proc/sys/net/ipv4/conf/"+ifName+"/arp_notify", []byte("1"), 0o644)
	os.WriteFile("/proc/sys/net/ipv6/conf/"+ifName+"/accept_dad", []byte("0"), 0o644)
	ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
		return "", fmt.Errorf("add address %s: %w", addr, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return "", fmt.Errorf("set up: %w", err)
	}
	for _, r := range routes {
		dst := r.Dst
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: &dst, Gw: gw.AsSlice()}); err != nil && !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("add route %s via %s: %w", dst.String(), gw, err)
		}
	}
	return l.Attrs().HardwareAddr.String(), nil
}

// waitOperUp waits until the host end of the veth is up, which the
// kernel's link watch marks a moment after its peer came up: until then
// the bridge does not forward to it. The plugin looks once and then
// sleeps 50 ms; a short poll costs less.
func waitOperUp(ctx context.Context, l netlink.Link) error {
	deadline := time.Now().Add(3 * time.Second)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		cur, err := netlink.LinkByIndex(l.Attrs().Index)
		if err != nil {
			return fmt.Errorf("veth %s: %w", l.Attrs().Name, err)
		}
		if cur.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("veth %s: bridge port in state %s, not up", l.Attrs().Name, cur.Attrs().OperState)
		}
		time.Sleep(delay)
	}
}

// bridgeDel is the bridge plugin's DEL: the container's end of the veth
// goes (its peer with it) if the namespace is still there, and the
// container's addresses go back to host-local's state. Deleting what is
// gone already is no error, as CNI asks of DEL.
func bridgeDel(c *bridgeConf, env map[string]string) error {
	if ns := env["CNI_NETNS"]; ns != "" && isNetNS(ns) {
		err := withNetNS(ns, func() error {
			l, err := netlink.LinkByName(env["CNI_IFNAME"])
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil
			}
			if err == nil {
				err = netlink.LinkDel(l)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("delete %s in %s: %w", env["CNI_IFNAME"], ns, err)
		}
	}
	st, err := openHostLocal(c.IPAM.DataDir, c.Name)
	if err != nil {
		return err
	}
	defer st.close()
	if err := st.release(env["CNI_CONTAINERID"], env["CNI_IFNAME"]); err != nil {
		return fmt.Errorf("release the addresses of %s: %w", env["CNI_CONTAINERID"], err)
	}
	return nil
}
