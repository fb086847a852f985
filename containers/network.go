package containers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/cni"
)

// The network step runs between the rootfs snapshot and the spec: it
// gives the container its network namespace and the files that describe
// it (/etc/hosts, /etc/hostname, /etc/resolv.conf). --net none gets a
// namespace of the runtime's with only lo; host, the host's; container:X,
// X's. On networks (bridge, user networks) the container gets a cni.Plan:
// its namespace is made and attached when its task starts (Start, or the
// restart monitor) and taken down when the task ends, so a stopped
// container holds no veth and no address.

// networkRequest is what the network step needs of the container.
type networkRequest struct {
	client                  *containerd.Client
	id, name, dir, hostname string
	dataRoot                string
	cfg                     Config
	hc                      HostConfig
	image                   ocispec.ImageConfig
	// store and netnsDir say where networks and namespaces live.
	store    cni.Config
	netnsDir string
}

// networkSetup is the step's result: spec options, and the plan of a
// container on networks.
type networkSetup struct {
	opts     []oci.SpecOpts
	plan     *cni.Plan
	hostname string // a container:X joiner has X's
}

func prepareNetwork(ctx context.Context, r networkRequest) (networkSetup, error) {
	mode := r.hc.NetworkMode
	switch {
	case mode == "none":
		files, err := writeNetworkFiles(r.dir, r.hostname, localhostLines(r.hc.ExtraHosts), r.hc)
		return networkSetup{opts: []oci.SpecOpts{oci.WithMounts(files)}, hostname: r.hostname}, err
	case mode == "host":
		return hostSetup(r.dir, r.hostname, r.hc)
	case strings.HasPrefix(mode, "container:"):
		return joinSetup(ctx, r, strings.TrimPrefix(mode, "container:"))
	}
	return networksSetup(ctx, r)
}

// hostSetup is the host's namespace, with copies of its files.
func hostSetup(dir, hostname string, hc HostConfig) (networkSetup, error) {
	hc.NetworkMode = "host" // also for a joiner of a host-networked container: the host's loopback resolvers are in reach
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		return networkSetup{}, fmt.Errorf("--net host: read the host's /etc/hosts: %w", err)
	}
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	files, err := writeNetworkFiles(dir, hostname, string(hosts)+extraLines(hc.ExtraHosts), hc)
	if err != nil {
		return networkSetup{}, err
	}
	return networkSetup{opts: []oci.SpecOpts{oci.WithHostNamespace(specs.NetworkNamespace), oci.WithMounts(files)}, hostname: hostname}, nil
}

// joinSetup shares the namespace and files of container ref.
func joinSetup(ctx context.Context, r networkRequest, ref string) (networkSetup, error) {
	other, err := Resolve(ctx, r.client, ref)
	if err != nil {
		return networkSetup{}, fmt.Errorf("--net container:%s: %w", ref, err)
	}
	info, err := other.Info(ctx)
	if err != nil {
		return networkSetup{}, fmt.Errorf("--net container:%s: %w", ref, err)
	}
	var rec stored
	if err := readStored(info, &rec); err != nil {
		return networkSetup{}, fmt.Errorf("--net container:%s: not a container of berth's: %w", ref, err)
	}
	otherMode := rec.HostConfig.NetworkMode
	if otherMode == "host" {
		return hostSetup(r.dir, rec.Config.Hostname, r.hc)
	}
	plan, err := cni.ReadPlan(info)
	if err != nil {
		return networkSetup{}, err
	}
	if plan == nil {
		return networkSetup{}, fmt.Errorf("--net container:%s: that container has --net %s, no namespace that outlives its task to share: give it a network (--net bridge), or use --net none: %w",
			ref, otherMode, errdefs.ErrInvalidArgument)
	}
	dir := containerDir(r.dataRoot, info.ID)
	var mounts []specs.Mount
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		mounts = append(mounts, fileMount(filepath.Join(dir, name), name))
	}
	return networkSetup{
		opts: []oci.SpecOpts{
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: plan.NetNS}),
			oci.WithMounts(mounts),
		},
		hostname: rec.Config.Hostname,
	}, nil
}

// networksSetup plans the container's networks: each must exist; the
// published ports go on the first.
func networksSetup(ctx context.Context, r networkRequest) (networkSetup, error) {
	store := cni.NewStore(r.store)
	plan := &cni.Plan{
		Store: r.store, NetNS: filepath.Join(r.netnsDir, r.id), Name: r.name, Hostname: r.hostname,
		Hosts: filepath.Join(r.dir, "hosts"), ExtraHosts: extraHostLines(r.hc.ExtraHosts),
	}
	for i, e := range r.hc.Endpoints {
		n, err := store.Get(ctx, e.Network)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return networkSetup{}, fmt.Errorf("network %s not found: create it (berth network create %s) or pick one of berth network ls: %w", e.Network, e.Network, err)
			}
			return networkSetup{}, err
		}
		if n.Driver != "bridge" {
			return networkSetup{}, fmt.Errorf("--net %s: a mode cannot be joined as a network beside others: %w", n.Name, errdefs.ErrInvalidArgument)
		}
		pn := cni.PlanNetwork{Name: n.Name, Aliases: e.Aliases, MAC: e.MAC}
		if e.IP != "" {
			pn.IP, _ = netip.ParseAddr(e.IP) // checked by the flags
		}
		if i == 0 {
			ports, err := publishedPorts(r.cfg, r.hc, r.image)
			if err != nil {
				return networkSetup{}, err
			}
			pn.Ports = ports
		}
		plan.Networks = append(plan.Networks, pn)
	}
	files, err := writeNetworkFiles(r.dir, r.hostname, localhostLines(r.hc.ExtraHosts), r.hc)
	if err != nil {
		return networkSetup{}, err
	}
	return networkSetup{
		opts: []oci.SpecOpts{
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: plan.NetNS}),
			oci.WithMounts(files),
		},
		plan:     plan,
		hostname: r.hostname,
	}, nil
}

// publishedPorts are -p's mappings, and with -P every exposed port (the
// image's and --expose) on a free host port.
func publishedPorts(cfg Config, hc HostConfig, img ocispec.ImageConfig) ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	bound := map[string]bool{}
	keys := make([]string, 0, len(hc.PortBindings))
	for k := range hc.PortBindings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		port, proto, err := splitPort(k)
		if err != nil {
			return nil, err
		}
		bound[k] = true
		for _, b := range hc.PortBindings[k] {
			var host uint64
			if b.HostPort != "" {
				if host, err = strconv.ParseUint(b.HostPort, 10, 16); err != nil {
					return nil, fmt.Errorf("invalid -p host port %q for %s: want 1 to 65535", b.HostPort, k)
				}
			}
			out = append(out, cni.PortMapping{HostIP: b.HostIP, HostPort: uint16(host), ContainerPort: port, Protocol: proto})
		}
	}
	if !hc.PublishAllPorts {
		return out, nil
	}
	exposed := map[string]struct{}{}
	for k := range img.ExposedPorts {
		exposed[k] = struct{}{}
	}
	for k := range cfg.ExposedPorts {
		exposed[k] = struct{}{}
	}
	var all []string
	for k := range exposed {
		if !bound[k] {
			all = append(all, k)
		}
	}
	sort.Strings(all)
	for _, k := range all {
		port, proto, err := splitPort(k)
		if err != nil {
			return nil, err
		}
		out = append(out, cni.PortMapping{ContainerPort: port, Protocol: proto})
	}
	return out, nil
}

// splitPort reads "80/tcp" (or "80", tcp).
func splitPort(s string) (uint16, string, error) {
	num, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	p, err := strconv.ParseUint(num, 10, 16)
	if err != nil || p == 0 || (proto != "tcp" && proto != "udp") {
		return 0, "", fmt.Errorf("invalid exposed port %q: want PORT/tcp or PORT/udp", s)
	}
	return uint16(p), proto, nil
}

// localhostLines is a hosts file before the container has an address.
func localhostLines(extra []string) string {
	return cni.LocalhostLines + extraLines(extra)
}

// extraHostLines are --add-host's NAME:IP as hosts lines.
func extraHostLines(extra []string) []string {
	var out []string
	for _, h := range extra {
		name, ip, _ := strings.Cut(h, ":")
		out = append(out, ip+"\t"+name)
	}
	return out
}

func extraLines(extra []string) string {
	var b strings.Builder
	for _, l := range extraHostLines(extra) {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// writeNetworkFiles writes hosts, hostname and resolv.conf into dir and
// returns their bind mounts.
func writeNetworkFiles(dir, hostname, hosts string, hc HostConfig) ([]specs.Mount, error) {
	resolv, err := resolvConf(hc)
	if err != nil {
		return nil, err
	}
	files := []struct{ name, body string }{
		{"hosts", hosts}, {"hostname", hostname + "\n"}, {"resolv.conf", resolv},
	}
	var mounts []specs.Mount
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.body), 0o644); err != nil {
			return nil, fmt.Errorf("write the container's %s: %w", f.name, err)
		}
		mounts = append(mounts, fileMount(path, f.name))
	}
	return mounts, nil
}

func fileMount(source, name string) specs.Mount {
	return specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: source, Options: []string{"rbind", "rprivate", "rw"}}
}

// defaultNameservers are docker's, for a container whose host has only a
// resolver on its own loopback, which the container cannot reach.
var defaultNameservers = []string{"8.8.8.8", "8.8.4.4"}

// resolvConf is the container's resolv.conf: the host's, without name
// servers on loopback (the container's loopback is its own) unless the
// container shares the host's network (--net host: a resolver on the
// host's loopback, systemd-resolved's 127.0.0.53, answers it), and
// --dns, --dns-search and --dns-option in place of the host's lines.
func resolvConf(hc HostConfig) (string, error) {
	body, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read the host's /etc/resolv.conf: %w", err)
	}
	return containerResolvConf(string(body), hc), nil
}

// containerResolvConf is resolvConf from the host's file's content.
func containerResolvConf(body string, hc HostConfig) string {
	var servers, search, options, other []string
	for _, line := range strings.Split(body, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if ip, err := netip.ParseAddr(fields[1]); err == nil && (!ip.IsLoopback() || hc.NetworkMode == "host") {
				servers = append(servers, fields[1])
			}
		case "search", "domain":
			search = fields[1:]
		case "options":
			options = append(options, fields[1:]...)
		default:
			if !strings.HasPrefix(fields[0], "#") && !strings.HasPrefix(fields[0], ";") {
				other = append(other, line)
			}
		}
	}
	if len(hc.DNS) > 0 {
		servers = hc.DNS
	} else if len(servers) == 0 {
		servers = defaultNameservers
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	var b strings.Builder
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	for _, l := range other {
		b.WriteString(l + "\n")
	}
	return b.String()
}
