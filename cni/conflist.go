package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// cniVersion of the conflists berth writes: 1.1.0 has GC, which lets
// host-local free addresses of containers that are gone.
const cniVersion = "1.1.0"

// confList is a network's conflist on disk: libcni reads name, cniVersion
// and plugins and ignores "berth", berth's record of the network.
type confList struct {
	CNIVersion string          `json:"cniVersion"`
	Name       string          `json:"name"`
	Berth      *Network        `json:"berth"`
	Plugins    json.RawMessage `json:"plugins"`
}

// bridgePlugin is the bridge plugin's part of the chain.
type bridgePlugin struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge"`
	IsGateway    bool            `json:"isGateway"`
	IPMasq       bool            `json:"ipMasq"`
	HairpinMode  bool            `json:"hairpinMode"`
	Capabilities map[string]bool `json:"capabilities"`
	IPAM         hostLocal       `json:"ipam"`
}

type hostLocal struct {
	Type    string        `json:"type"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []ipamRoute   `json:"routes,omitempty"`
	DataDir string        `json:"dataDir"`
}

type ipamRange struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

type portmapPlugin struct {
	Type         string          `json:"type"`
	Backend      string          `json:"backend"`
	Capabilities map[string]bool `json:"capabilities"`
}

// renderConfList writes n's conflist: the bridge plugin (hairpin, so a
// container reaches itself through a published port; the requested IP
// and MAC as capabilities) with host-local IPAM keeping its state under
// ipamDir, and portmap for -p. Isolation between networks is berth's own
// rules per network (host.go), not the firewall plugin's per container.
//
// The bridge plugin's own ipMasq stays off: its rules are per container
// and found again at teardown through the container's interface, so a
// container whose namespace is already gone would leave them behind.
// Berth masquerades each network with one rule instead (rules.go), as
// docker does. An internal network gets no default route.
func renderConfList(n *Network, a addressing, ipamDir string) ([]byte, error) {
	start, end := a.allocationRange()
	ipam := hostLocal{
		Type: "host-local",
		Ranges: [][]ipamRange{{{
			Subnet: a.subnet.String(), RangeStart: start.String(), RangeEnd: end.String(), Gateway: a.gateway.String(),
		}}},
		DataDir: ipamDir,
	}
	if !n.Internal {
		ipam.Routes = []ipamRoute{{Dst: "0.0.0.0/0"}}
	}
	plugins := []any{
		bridgePlugin{
			Type: "bridge", Bridge: n.Bridge(), IsGateway: true, HairpinMode: true,
			Capabilities: map[string]bool{"ips": true, "mac": true}, IPAM: ipam,
		},
		portmapPlugin{Type: "portmap", Backend: "iptables", Capabilities: map[string]bool{"portMappings": true}},
	}
	raw, err := json.Marshal(plugins)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(confList{CNIVersion: cniVersion, Name: n.Name, Berth: n, Plugins: raw}, "", "  ")
}

// addressingOf reads back the addressing of a stored network.
func addressingOf(n *Network) (addressing, error) {
	if len(n.IPAM.Config) == 0 {
		return addressing{}, fmt.Errorf("network %s has no subnet", n.Name)
	}
	c := n.IPAM.Config[0]
	a, err := parseAddressing(n.Name, c.Subnet, c.Gateway, c.IPRange)
	if err != nil {
		return a, fmt.Errorf("network %s: %w", n.Name, err)
	}
	return a, nil
}

// prefixString is p as docker shows a subnet, or "" for none.
func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
