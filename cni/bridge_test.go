package cni

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// TestParseBridgeConf: the in-process bridge takes exactly the
// configurations berth renders; any other setting goes to the binary.
func TestParseBridgeConf(t *testing.T) {
	s, _ := newTestStore(t)
	for _, internal := range []bool{false, true} {
		n := Network{Name: "web", Internal: internal, Options: map[string]string{BridgeNameOption: "br-web"}}
		a, err := parseAddressing("web", "10.213.0.0/24", "", "10.213.0.128/25")
		if err != nil {
			t.Fatal(err)
		}
		body, err := renderConfList(&n, a, s.ipamDir())
		if err != nil {
			t.Fatal(err)
		}
		list, err := libcni.NetworkConfFromBytes(body)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := parseBridgeConf(list.Plugins[0].Bytes)
		if !ok {
			t.Fatalf("internal=%v: berth's own bridge configuration is refused: %s", internal, list.Plugins[0].Bytes)
		}
		r, err := c.ipamRange()
		if err != nil || r.start != netip.MustParseAddr("10.213.0.128") || r.end != netip.MustParseAddr("10.213.0.254") ||
			r.gateway != netip.MustParseAddr("10.213.0.1") || c.Bridge != "br-web" || !c.IsGateway || !c.HairpinMode {
			t.Fatalf("internal=%v: parsed %+v %+v %v", internal, c, r, err)
		}
	}
	base := `"cniVersion":"1.1.0","name":"web","type":"bridge","bridge":"br-web","isGateway":true`
	ipam := `"ipam":{"type":"host-local","ranges":[[{"subnet":"10.213.0.0/24"}]],"dataDir":"/d"}`
	for _, tc := range []struct {
		name, conf string
		ok         bool
	}{
		{"minimal", `{` + base + `,` + ipam + `}`, true},
		{"injected", `{` + base + `,` + ipam + `,"runtimeConfig":{"ips":["10.213.0.9"],"mac":"02:00:00:00:00:01"},"prevResult":{}}`, true},
		{"masquerade", `{` + base + `,"ipMasq":true,` + ipam + `}`, false},
		{"vlan", `{` + base + `,"vlan":5,` + ipam + `}`, false},
		{"other ipam", `{` + base + `,"ipam":{"type":"dhcp"}}`, false},
		{"ipam setting", `{` + base + `,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.213.0.0/24"}]],"dataDir":"/d","resolvConf":"/x"}}`, false},
		{"two ranges", `{` + base + `,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.213.0.0/24"}],[{"subnet":"10.214.0.0/24"}]],"dataDir":"/d"}}`, false},
		{"ipv6", `{` + base + `,"ipam":{"type":"host-local","ranges":[[{"subnet":"fd00::/64"}]],"dataDir":"/d"}}`, false},
		{"no data dir", `{` + base + `,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.213.0.0/24"}]]}}`, false},
	} {
		if _, ok := parseBridgeConf([]byte(tc.conf)); ok != tc.ok {
			t.Errorf("%s: in-process %v, want %v", tc.name, ok, tc.ok)
		}
	}
}

// TestHostLocalStore: addresses go round robin from the last one given,
// never the gateway; release frees a container's, in host-local's format.
func TestHostLocalStore(t *testing.T) {
	dir := t.TempDir()
	ip := netip.MustParseAddr
	start, end, gw := ip("10.0.0.1"), ip("10.0.0.4"), ip("10.0.0.2")
	alloc := func(id string) (netip.Addr, error) {
		st, err := openHostLocal(dir, "n")
		if err != nil {
			t.Fatal(err)
		}
		defer st.close()
		return st.allocate(id, "eth0", start, end, gw)
	}
	for _, want := range []string{"10.0.0.1", "10.0.0.3", "10.0.0.4"} {
		got, err := alloc("c-" + want)
		if err != nil || got != ip(want) {
			t.Fatalf("allocate: %s, %v; want %s", got, err, want)
		}
	}
	if _, err := alloc("full"); err == nil || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Fatalf("allocate in a full range: %v", err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "n", "10.0.0.3"))
	if err != nil || string(body) != "c-10.0.0.3\r\neth0" {
		t.Fatalf("reservation file: %q, %v", body, err)
	}
	st, err := openHostLocal(dir, "n")
	if err != nil {
		t.Fatal(err)
	}
	// One written by an older host-local (no ifname) goes too.
	if err := os.WriteFile(filepath.Join(dir, "n", "10.0.0.9"), []byte("c-10.0.0.3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st.release("c-10.0.0.3", "eth0"); err != nil {
		t.Fatal(err)
	}
	st.close()
	for _, f := range []string{"10.0.0.3", "10.0.0.9"} {
		if _, err := os.Stat(filepath.Join(dir, "n", f)); !os.IsNotExist(err) {
			t.Fatalf("%s after release: %v", f, err)
		}
	}
	// After the last given (.4) the round robin wraps to the start: .1 is
	// taken, .2 the gateway, so .3, the one just freed.
	if got, err := alloc("again"); err != nil || got != ip("10.0.0.3") {
		t.Fatalf("allocate after release: %s, %v", got, err)
	}
}

// TestChainFor: an attachment runs portmap only with ports, never the
// firewall plugin of an older conflist; a recorded one runs what it ran.
func TestChainFor(t *testing.T) {
	body := []byte(`{"cniVersion":"1.1.0","name":"web","plugins":[{"type":"bridge","bridge":"b"},{"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"}],"berth":{"Name":"web"}}`)
	list, err := libcni.NetworkConfFromBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		a    Attachment
		want []string
	}{
		{"no ports", Attachment{}, []string{"bridge"}},
		{"ports", Attachment{Ports: []PortMapping{{HostPort: 80, ContainerPort: 80}}}, []string{"bridge", "portmap"}},
		{"recorded", Attachment{Plugins: []string{"bridge", "portmap", "firewall"}}, []string{"bridge", "portmap", "firewall"}},
		{"recorded without ports", Attachment{Plugins: []string{"bridge"}, Ports: []PortMapping{{HostPort: 80}}}, []string{"bridge"}},
	} {
		got, err := chainFor(list, &tc.a)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(pluginTypes(got), tc.want) {
			t.Errorf("%s: chain %v, want %v", tc.name, pluginTypes(got), tc.want)
		}
		// What libcni caches is the chain that ran, and still a conflist.
		cached, err := libcni.NetworkConfFromBytes(got.Bytes)
		if err != nil || !reflect.DeepEqual(pluginTypes(cached), tc.want) || cached.Name != "web" {
			t.Errorf("%s: cached conflist %s: %v", tc.name, got.Bytes, err)
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(got.Bytes, &doc) != nil || doc["berth"] == nil {
			t.Errorf("%s: berth's record lost from %s", tc.name, got.Bytes)
		}
	}
	if pluginTypes(list)[2] != "firewall" {
		t.Fatal("chainFor changed the network's own list")
	}
}

// TestEnsureRules: a network's rules are looked for once, then trusted
// for a minute; a stale marker, another network of the name (another
// id) or its removal make the next attach look again.
func TestEnsureRules(t *testing.T) {
	ctx := context.Background()
	s, h := newTestStore(t)
	n, err := s.Create(ctx, CreateOptions{Name: "web", Subnet: "10.213.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ensure := func(n *Network, want int) {
		t.Helper()
		if err := s.ensureRules(n); err != nil {
			t.Fatal(err)
		}
		if len(h.ensured) != want {
			t.Fatalf("host asked %d times, want %d", len(h.ensured), want)
		}
	}
	ensure(&n, 1)
	ensure(&n, 1)
	marker := filepath.Join(s.root, "rules", "web")
	old := time.Now().Add(-2 * rulesFresh)
	if err := os.Chtimes(marker, old, old); err != nil {
		t.Fatal(err)
	}
	ensure(&n, 2)
	ensure(&n, 2)
	other := n
	other.ID = newID()
	ensure(&other, 3)
	if err := s.Remove(ctx, "web", users{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker after rm: %v", err)
	}
}

// TestNetworkRules: every rule of a network carries its comment (rm finds
// them so), an internal network has no masquerade and no way out, and
// the rule ensure looks for is added last.
func TestNetworkRules(t *testing.T) {
	subnet := netip.MustParsePrefix("10.213.0.0/24")
	for _, internal := range []bool{false, true} {
		n := &Network{Name: "web", Internal: internal, Options: map[string]string{BridgeNameOption: "br-web"}}
		rs := networkRules(n, subnet)
		var masq, drops int
		for _, r := range rs {
			spec := strings.Join(r.spec, " ")
			if !strings.Contains(spec, "--comment berth network web") || !strings.Contains(spec, "br-web") {
				t.Errorf("internal=%v: rule %q lacks the network's comment or bridge", internal, spec)
			}
			if strings.Contains(spec, "MASQUERADE") {
				masq++
			}
			if r.chain == berthIsolation1 && slices.Contains(r.spec, "DROP") {
				drops++
			}
		}
		if internal && (masq != 0 || drops != 2) || !internal && (masq != 1 || drops != 0) {
			t.Errorf("internal=%v: %d masquerade rules, %d drops in stage 1: %v", internal, masq, drops, rs)
		}
		last := rs[len(rs)-1]
		if last.chain != berthIsolation2 || !slices.Contains(last.spec, "DROP") {
			t.Errorf("internal=%v: last rule %v, want the stage-2 drop", internal, last)
		}
	}
}
