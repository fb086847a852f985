package cni

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
)

// fakeHost records what the store asks of the host.
type fakeHost struct {
	hostRoutes []netip.Prefix
	ensured    []string
	tornDown   []string
	failTear   error
}

func (h *fakeHost) routes() ([]netip.Prefix, error) { return h.hostRoutes, nil }
func (h *fakeHost) ensure(n *Network) error {
	h.ensured = append(h.ensured, n.Name)
	return nil
}
func (h *fakeHost) teardown(n *Network) error {
	if h.failTear != nil {
		return h.failTear
	}
	h.tornDown = append(h.tornDown, n.Name)
	return nil
}

func newTestStore(t *testing.T) (*Store, *fakeHost) {
	dir := t.TempDir()
	s := NewStore(Config{ConfDir: filepath.Join(dir, "net.d"), PluginDirs: []string{"/nonexistent"}, DataRoot: filepath.Join(dir, "data")})
	h := &fakeHost{}
	s.host = h
	return s, h
}

// users is a fixed Users.
type users map[string][]string

func (u users) NetworkUsers(context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	for k, v := range u {
		out[k] = append([]string(nil), v...)
	}
	return out, nil
}

func TestCreateOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       CreateOptions
		wantErr string
	}{
		{name: "plain", o: CreateOptions{Name: "web_1.net-a"}},
		{name: "bridge name", o: CreateOptions{Name: "n", Options: map[string]string{BridgeNameOption: "br-web"}}},
		{name: "bad name", o: CreateOptions{Name: "-x"}, wantErr: "a name is"},
		{name: "slash", o: CreateOptions{Name: "a/b"}, wantErr: "a name is"},
		{name: "predefined", o: CreateOptions{Name: "host"}, wantErr: "host is a pre-defined network"},
		{name: "other driver", o: CreateOptions{Name: "n", Driver: "overlay"}, wantErr: `driver "overlay"`},
		{name: "bridge name too long", o: CreateOptions{Name: "n", Options: map[string]string{BridgeNameOption: "a-very-long-bridge"}}, wantErr: "1 to 15"},
		{name: "unknown option", o: CreateOptions{Name: "n", Options: map[string]string{"com.docker.network.driver.mtu": "1400"}}, wantErr: `option "com.docker.network.driver.mtu"`},
		{name: "gateway without subnet", o: CreateOptions{Name: "n", Gateway: "10.1.0.1"}, wantErr: "need --subnet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("validate: %v; want %q", err, tc.wantErr)
			}
		})
	}
}

func TestStoreCreate(t *testing.T) {
	ctx := context.Background()
	s, h := newTestStore(t)
	h.hostRoutes = []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}

	n, err := s.Create(ctx, CreateOptions{Name: "web", Subnet: "10.213.0.0/24", IPRange: "10.213.0.128/25", Labels: map[string]string{"tier": "front"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.ID) != 64 || n.Bridge() != "br-"+n.ID[:12] || n.Driver != "bridge" || n.Scope != "local" || n.Labels["tier"] != "front" ||
		!reflect.DeepEqual(n.IPAM.Config, []IPAMConfig{{Subnet: "10.213.0.0/24", IPRange: "10.213.0.128/25", Gateway: "10.213.0.1"}}) {
		t.Fatalf("created %+v", n)
	}

	// No --subnet: the first pool clear of the host's routes and the
	// networks (the default one's 10.88.0.0/16 included).
	auto, err := s.Create(ctx, CreateOptions{Name: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if auto.IPAM.Config[0].Subnet != "172.19.0.0/16" || auto.IPAM.Config[0].Gateway != "172.19.0.1" {
		t.Fatalf("auto subnet: %+v", auto.IPAM.Config)
	}

	for _, tc := range []struct {
		name    string
		o       CreateOptions
		wantErr string
		kind    error
	}{
		{name: "same name", o: CreateOptions{Name: "web", Subnet: "10.214.0.0/24"}, wantErr: "network with name web already exists", kind: errdefs.ErrAlreadyExists},
		{name: "overlapping subnet", o: CreateOptions{Name: "web2", Subnet: "10.213.0.0/16"}, wantErr: "subnet 10.213.0.0/16 overlaps network web's subnet 10.213.0.0/24", kind: errdefs.ErrConflict},
		{name: "inside another subnet", o: CreateOptions{Name: "web3", Subnet: "10.213.0.64/26"}, wantErr: "overlaps network web's", kind: errdefs.ErrConflict},
		{name: "inside the default network", o: CreateOptions{Name: "web4", Subnet: "10.88.1.0/24"}, wantErr: "overlaps network bridge's subnet 10.88.0.0/16", kind: errdefs.ErrConflict},
		{name: "bridge of another network", o: CreateOptions{Name: "web5", Subnet: "10.215.0.0/24", Options: map[string]string{BridgeNameOption: DefaultBridge}}, wantErr: "bridge berth0 is network bridge's", kind: errdefs.ErrAlreadyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, tc.kind) {
				t.Fatalf("create: %v; want %q (%v)", err, tc.wantErr, tc.kind)
			}
			if _, err := os.Stat(s.confPath(tc.o.Name)); tc.o.Name != "web" && !os.IsNotExist(err) {
				t.Fatalf("a refused create left %s: %v", s.confPath(tc.o.Name), err)
			}
		})
	}
}

func TestStoreListAndGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	nets, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nets {
		names = append(names, n.Name+"/"+n.Driver)
	}
	if !reflect.DeepEqual(names, []string{"bridge/bridge", "host/host", "none/null"}) {
		t.Fatalf("a new store lists %v", names)
	}
	def := nets[0]
	if def.Bridge() != DefaultBridge || def.IPAM.Config[0].Subnet != DefaultSubnet || def.IPAM.Config[0].Gateway != "10.88.0.1" ||
		def.Internal || def.Options[defaultBridgeOption] != "true" || def.ID != fixedID(DefaultNetwork) {
		t.Fatalf("default network: %+v", def)
	}

	web, err := s.Create(ctx, CreateOptions{Name: "web", Subnet: "10.213.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"web", web.ID, web.ID[:12], web.ID[:5]} {
		got, err := s.Get(ctx, ref)
		if err != nil || got.ID != web.ID {
			t.Fatalf("Get(%s) = %s, %v", ref, got.ID, err)
		}
		if got.Containers == nil {
			t.Fatalf("Get(%s): Containers is nil; docker shows {}", ref)
		}
	}
	if _, err := s.Get(ctx, "nosuch"); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "no such network") {
		t.Fatalf("Get(nosuch): %v", err)
	}
	if n, err := s.Get(ctx, "host"); err != nil || n.Driver != "host" {
		t.Fatalf("Get(host) = %+v, %v", n, err)
	}

	// A conflist that is not berth's is not a berth network.
	other := `{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}`
	if err := os.WriteFile(filepath.Join(s.confDir, "berth-other.conflist"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "other"); !errdefs.IsNotFound(err) {
		t.Fatalf("Get of a foreign conflist: %v", err)
	}
	if nets, _ := s.List(ctx); len(nets) != 4 {
		t.Fatalf("List: %d networks, want bridge, host, none and web", len(nets))
	}
}

func TestConfList(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	for _, tc := range []struct {
		name, subnet, bridge string
		internal             bool
	}{
		{name: "ext", subnet: "10.213.2.0/24", bridge: "brx0"},
		{name: "int", subnet: "10.213.1.0/24", bridge: "brx1", internal: true},
	} {
		internal := tc.internal
		n, err := s.Create(ctx, CreateOptions{Name: tc.name, Internal: internal, Subnet: tc.subnet, Options: map[string]string{BridgeNameOption: tc.bridge}})
		if err != nil {
			t.Fatal(err)
		}
		body, err := os.ReadFile(s.confPath(n.Name))
		if err != nil {
			t.Fatal(err)
		}
		list, err := libcni.NetworkConfFromBytes(body)
		if err != nil {
			t.Fatalf("libcni cannot read the conflist: %v", err)
		}
		var types []string
		for _, p := range list.Plugins {
			types = append(types, p.Network.Type)
		}
		if list.Name != n.Name || list.CNIVersion != cniVersion || !reflect.DeepEqual(types, []string{"bridge", "portmap"}) {
			t.Fatalf("conflist %s %s %v", list.Name, list.CNIVersion, types)
		}
		var br bridgePlugin
		if err := json.Unmarshal(list.Plugins[0].Bytes, &br); err != nil {
			t.Fatal(err)
		}
		if br.Bridge != tc.bridge || !br.IsGateway || br.IPMasq || !br.HairpinMode || !br.Capabilities["ips"] || !br.Capabilities["mac"] ||
			br.IPAM.Type != "host-local" || br.IPAM.DataDir != s.ipamDir() {
			t.Fatalf("bridge plugin: %+v", br)
		}
		if hasDefault := len(br.IPAM.Routes) == 1 && br.IPAM.Routes[0].Dst == "0.0.0.0/0"; hasDefault == internal {
			t.Fatalf("internal=%v: routes %+v", internal, br.IPAM.Routes)
		}
		if !strings.Contains(string(list.Plugins[1].Bytes), `"portMappings":true`) {
			t.Fatalf("portmap plugin: %s", list.Plugins[1].Bytes)
		}
	}
}

func TestStoreRemove(t *testing.T) {
	ctx := context.Background()
	s, h := newTestStore(t)
	if _, err := s.Create(ctx, CreateOptions{Name: "web", Subnet: "10.213.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.ipamDir(), "web"), 0o700); err != nil {
		t.Fatal(err)
	}

	err := s.Remove(ctx, "web", users{"web": {"db", "app"}})
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "containers: app, db") {
		t.Fatalf("rm of a network in use: %v", err)
	}
	// An endpoint still recorded counts too, labels or not.
	if err := s.writeEndpoint(&Attachment{ContainerID: "c1", ContainerName: "lost", Network: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "web", users{}); err == nil || !strings.Contains(err.Error(), "containers: lost") {
		t.Fatalf("rm of a network with an endpoint: %v", err)
	}
	if err := s.removeEndpoint("web", "c1"); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"bridge", "host", "none"} {
		if err := s.Remove(ctx, name, users{}); !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "pre-defined network") {
			t.Fatalf("rm %s: %v", name, err)
		}
	}

	h.failTear = errors.New("iptables broke")
	if err := s.Remove(ctx, "web", users{}); err == nil {
		t.Fatal("rm should fail when the host's teardown does")
	}
	if _, err := s.Get(ctx, "web"); err != nil {
		t.Fatalf("a failed rm must keep the network to retry: %v", err)
	}
	h.failTear = nil
	if err := s.Remove(ctx, "web", users{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.tornDown, []string{"web"}) {
		t.Fatalf("torn down: %v", h.tornDown)
	}
	if _, err := os.Stat(filepath.Join(s.ipamDir(), "web")); !os.IsNotExist(err) {
		t.Fatalf("IPAM dir left: %v", err)
	}
	if _, err := s.Get(ctx, "web"); !errdefs.IsNotFound(err) {
		t.Fatalf("Get after rm: %v", err)
	}
	if err := s.Remove(ctx, "web", users{}); !errdefs.IsNotFound(err) {
		t.Fatalf("rm of a missing network: %v", err)
	}
}

func TestStorePrune(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	for i, name := range []string{"a", "b", "c"} {
		labels := map[string]string{}
		if name != "c" {
			labels["keep"] = "no"
		}
		if _, err := s.Create(ctx, CreateOptions{Name: name, Labels: labels, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 24).String()}); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.Prune(ctx, PruneOptions{Labels: []string{"keep=no"}}, users{"a": {"x"}})
	if err != nil || !reflect.DeepEqual(deleted, []string{"b"}) {
		t.Fatalf("prune label=keep=no with a in use: %v, %v", deleted, err)
	}
	deleted, err = s.Prune(ctx, PruneOptions{}, users{})
	if err != nil || !reflect.DeepEqual(deleted, []string{"a", "c"}) {
		t.Fatalf("prune: %v, %v", deleted, err)
	}
	if nets, _ := s.List(ctx); len(nets) != 3 {
		t.Fatalf("after prune: %d networks, want the predefined 3", len(nets))
	}
}

func TestFilter(t *testing.T) {
	web := Network{Name: "web-front", ID: "abcdef", Driver: "bridge", Labels: map[string]string{"tier": "front"}}
	host := predefined("host")
	for _, tc := range []struct {
		f         Filter
		web, host bool
	}{
		{Filter{}, true, true},
		{Filter{"name": {"front"}}, true, false},
		{Filter{"id": {"abc"}}, true, false},
		{Filter{"label": {"tier"}}, true, false},
		{Filter{"label": {"tier=back"}}, false, false},
		{Filter{"driver": {"bridge", "host"}}, true, true},
		{Filter{"type": {"custom"}}, true, false},
		{Filter{"type": {"builtin"}}, false, true},
		{Filter{"type": {"custom"}, "name": {"nosuch"}}, false, false},
	} {
		if got := tc.f.Match(&web); got != tc.web {
			t.Errorf("%v on web: %v", tc.f, got)
		}
		if got := tc.f.Match(&host); got != tc.host {
			t.Errorf("%v on host: %v", tc.f, got)
		}
	}
}

func TestPluginDirs(t *testing.T) {
	const def = "/usr/local/libexec/berth/cni"
	for _, tc := range []struct {
		configured, self string
		want             []string
	}{
		{def, "/opt/berth/bin/berth", []string{def, "/opt/berth/libexec/berth/cni", "/opt/berth/bin/cni"}},
		{"/srv/cni", "/opt/berth/bin/berth", []string{"/srv/cni"}},
		{def, "", []string{def}},
	} {
		if got := PluginDirs(tc.configured, def, tc.self); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PluginDirs(%s, %s) = %v, want %v", tc.configured, tc.self, got, tc.want)
		}
	}
}
