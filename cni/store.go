package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Config is where the networks live: berth.toml's [cni] table and data
// root.
type Config struct {
	// ConfDir holds one conflist per network.
	ConfDir string
	// PluginDirs are searched for the plugin binaries, in order.
	PluginDirs []string
	// DataRoot is berth's data root: IPAM state, libcni's cache and the
	// endpoints go under DataRoot/network.
	DataRoot string
}

// Store is the networks of one config dir and data root.
type Store struct {
	confDir    string
	root       string // <DataRoot>/network
	pluginDirs []string
	host       host
}

// NewStore returns the store of c.
func NewStore(c Config) *Store {
	return &Store{
		confDir: c.ConfDir, root: filepath.Join(c.DataRoot, "network"),
		pluginDirs: c.PluginDirs, host: linuxHost{},
	}
}

// Where a store keeps its state under <DataRoot>/network.
func (s *Store) ipamDir() string     { return filepath.Join(s.root, "ipam") }
func (s *Store) cacheDir() string    { return filepath.Join(s.root, "cache") }
func (s *Store) endpointDir() string { return filepath.Join(s.root, "endpoints") }

// confPath is the conflist of the network called name.
func (s *Store) confPath(name string) string {
	return filepath.Join(s.confDir, "berth-"+name+".conflist")
}

// lock serialises the changes to the set of networks (so that two creates
// cannot take one subnet or bridge) across berth processes.
func (s *Store) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network store lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("network store lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Create makes a network. A subnet that overlaps another network's, or a
// name or bridge device another network has, is refused.
func (s *Store) Create(ctx context.Context, o CreateOptions) (Network, error) {
	if err := o.validate(); err != nil {
		return Network{}, err
	}
	if err := s.ensureDefault(); err != nil {
		return Network{}, err
	}
	unlock, err := s.lock()
	if err != nil {
		return Network{}, err
	}
	defer unlock()
	existing, err := s.load()
	if err != nil {
		return Network{}, err
	}
	n := Network{
		Name: o.Name, ID: newID(), Created: time.Now().UTC(), Scope: "local", Driver: "bridge",
		Internal: o.Internal, Attachable: false, Labels: o.Labels, Options: map[string]string{},
	}
	for k, v := range o.Options {
		n.Options[k] = v
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Bridge() == "" {
		n.Options[BridgeNameOption] = "br-" + n.ID[:12]
	}
	for _, e := range existing {
		if e.Name == n.Name {
			return Network{}, fmt.Errorf("create network %s: %w: network with name %s already exists", n.Name, errdefs.ErrAlreadyExists, n.Name)
		}
		if e.Bridge() == n.Bridge() {
			return Network{}, fmt.Errorf("create network %s: %w: bridge %s is network %s's", n.Name, errdefs.ErrAlreadyExists, n.Bridge(), e.Name)
		}
	}
	a, err := s.addressingFor(o, existing)
	if err != nil {
		return Network{}, err
	}
	n.IPAM = IPAM{Driver: "default", Options: map[string]string{}, Config: []IPAMConfig{{
		Subnet: a.subnet.String(), IPRange: prefixString(a.ipRange), Gateway: a.gateway.String(),
	}}}
	if err := s.write(&n, a); err != nil {
		return Network{}, err
	}
	n.Containers = map[string]Endpoint{}
	return n, nil
}

// addressingFor works out the new network's subnet: the one asked for,
// refused when it overlaps another network's, or the first free pool.
func (s *Store) addressingFor(o CreateOptions, existing []Network) (addressing, error) {
	if o.Subnet != "" {
		a, err := parseAddressing(o.Name, o.Subnet, o.Gateway, o.IPRange)
		if err != nil {
			return a, err
		}
		for _, e := range existing {
			if sub, err := e.subnet(); err == nil && overlaps(sub, a.subnet) {
				return a, fmt.Errorf("create network %s: %w: subnet %s overlaps network %s's subnet %s: choose another --subnet",
					o.Name, errdefs.ErrConflict, a.subnet, e.Name, sub)
			}
		}
		return a, nil
	}
	used, err := s.host.routes()
	if err != nil {
		return addressing{}, fmt.Errorf("create network %s: %w", o.Name, err)
	}
	used = append(used, subnets(existing)...)
	p, ok := pickSubnet(defaultPools(), used)
	if !ok {
		return addressing{}, fmt.Errorf("create network %s: %w: all of berth's default address pools are in use: give --subnet", o.Name, errdefs.ErrUnavailable)
	}
	return parseAddressing(o.Name, p.String(), "", "")
}

// write stores n's conflist, whole or not at all.
func (s *Store) write(n *Network, a addressing) error {
	body, err := renderConfList(n, a, s.ipamDir())
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if err := os.MkdirAll(s.confDir, 0o755); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	tmp, err := os.CreateTemp(s.confDir, ".berth-"+n.Name+"-*")
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(body, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.confPath(n.Name))
	}
	if err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	return nil
}

// ensureDefault makes the default network on first use.
func (s *Store) ensureDefault() error {
	if _, err := os.Stat(s.confPath(DefaultNetwork)); err == nil {
		return nil
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(s.confPath(DefaultNetwork)); err == nil {
		return nil
	}
	a, err := parseAddressing(DefaultNetwork, DefaultSubnet, "", "")
	if err != nil {
		return err
	}
	n := Network{
		Name: DefaultNetwork, ID: fixedID(DefaultNetwork), Created: time.Now().UTC(), Scope: "local", Driver: "bridge",
		IPAM:    IPAM{Driver: "default", Options: map[string]string{}, Config: []IPAMConfig{{Subnet: a.subnet.String(), Gateway: a.gateway.String()}}},
		Options: map[string]string{BridgeNameOption: DefaultBridge, defaultBridgeOption: "true"},
		Labels:  map[string]string{},
	}
	return s.write(&n, a)
}

// read loads the network whose conflist is at path; a conflist that is
// not berth's is ErrNotFound.
func readNetwork(path string) (Network, error) {
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Network{}, errdefs.ErrNotFound
	}
	if err != nil {
		return Network{}, err
	}
	var c confList
	if err := json.Unmarshal(body, &c); err != nil {
		return Network{}, fmt.Errorf("%s: %w", path, err)
	}
	if c.Berth == nil || c.Berth.Name != c.Name {
		return Network{}, errdefs.ErrNotFound
	}
	return *c.Berth, nil
}

// load returns every network of berth in the config dir.
func (s *Store) load() ([]Network, error) {
	paths, err := filepath.Glob(filepath.Join(s.confDir, "berth-*.conflist"))
	if err != nil {
		return nil, err
	}
	var nets []Network
	for _, p := range paths {
		n, err := readNetwork(p)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read networks: %w", err)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// List returns every network, by name, with host and none, as docker's
// `network ls` shows them. The default network is made on first use.
func (s *Store) List(ctx context.Context) ([]Network, error) {
	if err := s.ensureDefault(); err != nil {
		return nil, err
	}
	nets, err := s.load()
	if err != nil {
		return nil, err
	}
	nets = append(nets, predefined("host"), predefined("none"))
	for i := range nets {
		if err := s.fillEndpoints(&nets[i]); err != nil {
			return nil, err
		}
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	return nets, nil
}

// Get returns the network called, or with the id (or unique id prefix),
// ref, with its containers.
func (s *Store) Get(ctx context.Context, ref string) (Network, error) {
	n, err := s.find(ref)
	if err != nil {
		return n, err
	}
	return n, s.fillEndpoints(&n)
}

func (s *Store) find(ref string) (Network, error) {
	notFound := fmt.Errorf("network %s: %w: no such network", ref, errdefs.ErrNotFound)
	if ref == "host" || ref == "none" {
		return predefined(ref), nil
	}
	if ref == DefaultNetwork {
		if err := s.ensureDefault(); err != nil {
			return Network{}, err
		}
	}
	if validName.MatchString(ref) {
		n, err := readNetwork(s.confPath(ref))
		if err == nil {
			return n, nil
		}
		if !errdefs.IsNotFound(err) {
			return Network{}, fmt.Errorf("network %s: %w", ref, err)
		}
	}
	nets, err := s.load()
	if err != nil {
		return Network{}, err
	}
	nets = append(nets, predefined("host"), predefined("none"))
	var found []Network
	for _, n := range nets {
		if n.ID == ref {
			return n, nil
		}
		if len(ref) > 0 && strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return Network{}, notFound
	case 1:
		return found[0], nil
	}
	return Network{}, fmt.Errorf("network %s: %w: the id prefix matches %d networks: give more of it", ref, errdefs.ErrInvalidArgument, len(found))
}

// subnets lists the networks' subnets.
func subnets(nets []Network) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		if p, err := n.subnet(); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// PluginDirs is where libcni looks for the plugins: the configured dir;
// when that is the default, also where `make install` puts them beside
// this berth (<prefix>/libexec/berth/cni from <prefix>/bin/berth) and a
// development tree's bin/cni beside bin/berth.
func PluginDirs(configured, defaultDir, self string) []string {
	if configured != defaultDir || self == "" {
		return []string{configured}
	}
	bin := filepath.Dir(self)
	return []string{configured, filepath.Join(bin, "..", "libexec", "berth", "cni"), filepath.Join(bin, "cni")}
}

// Filter is `network ls --filter`: every key given must match, a key's
// values are alternatives (docker's rule).
type Filter map[string][]string

// FilterKeys are the keys Filter knows.
var FilterKeys = []string{"name", "id", "label", "driver", "type"}

// Match says whether n passes the filter.
func (f Filter) Match(n *Network) bool {
	for key, values := range f {
		ok := false
		for _, want := range values {
			ok = ok || matchOne(key, want, n)
		}
		if !ok {
			return false
		}
	}
	return true
}

func matchOne(key, want string, n *Network) bool {
	switch key {
	case "name":
		return strings.Contains(n.Name, want)
	case "id":
		return strings.HasPrefix(n.ID, want)
	case "label":
		return hasLabels(n, []string{want})
	case "driver":
		return n.Driver == want
	case "type":
		return (want == "builtin") == n.Predefined()
	}
	return false
}
