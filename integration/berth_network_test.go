package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/coreos/go-iptables/iptables"

	"github.com/berthrt/berth/cni"
)

// The network tests attach network namespaces they make themselves and
// send traffic only to those and to loopback (HOST.md). Each test has its
// own networks, bridges (bt<test>…) and 10.213.x.0/24 subnets, so that
// they never meet another test's.

// netFixture is one test's network store under a temp dir, with the
// plugins `make build` put beside berth-runtime.
type netFixture struct {
	t     *testing.T
	dir   string
	store *cni.Store
}

func newNetFixture(t *testing.T) *netFixture {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("networks need iptables: %v (hack/deps.sh installs it)", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatalf("no /bin/busybox for ping and httpd: %v (hack/deps.sh installs it)", err)
	}
	plugins := filepath.Join(filepath.Dir(runtimeBin), "cni")
	if _, err := os.Stat(filepath.Join(plugins, "bridge")); err != nil {
		t.Fatalf("CNI plugins not found in %s: run `make build`", plugins)
	}
	dir, err := os.MkdirTemp("/run", "bn-")
	if err != nil {
		t.Fatal(err)
	}
	f := &netFixture{t: t, dir: dir, store: cni.NewStore(cni.Config{
		ConfDir: filepath.Join(dir, "net.d"), PluginDirs: []string{plugins}, DataRoot: filepath.Join(dir, "data"),
	})}
	t.Cleanup(func() {
		// Whatever the test left: its networks' bridges and rules go with
		// rm, which refuses while a record remains, so detach those first.
		nets, _ := f.store.List(context.Background())
		for _, n := range nets {
			for id := range n.Containers {
				if err := f.store.Detach(context.Background(), id, n.Name); err != nil {
					t.Errorf("cleanup: detach %s from %s: %v", id, n.Name, err)
				}
			}
			if !n.Predefined() {
				if err := f.store.Remove(context.Background(), n.Name, noUsers{}); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		os.RemoveAll(dir)
	})
	return f
}

type noUsers struct{}

func (noUsers) NetworkUsers(context.Context) (map[string][]string, error) {
	return map[string][]string{}, nil
}

// netns makes a network namespace for the test, removed at its end.
func (f *netFixture) netns(name string) string {
	path := filepath.Join(f.dir, "ns-"+name)
	if err := cni.NewNetNS(path); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		if err := cni.RemoveNetNS(path); err != nil {
			f.t.Errorf("cleanup: %v", err)
		}
	})
	return path
}

// create makes a network and fails the test if it cannot.
func (f *netFixture) create(o cni.CreateOptions) cni.Network {
	f.t.Helper()
	n, err := f.store.Create(context.Background(), o)
	if err != nil {
		f.t.Fatalf("create network %s: %v", o.Name, err)
	}
	return n
}

func (f *netFixture) attach(netns, id, network string, o cni.AttachOptions) cni.Attachment {
	f.t.Helper()
	a, err := f.store.Attach(context.Background(), netns, id, network, o)
	if err != nil {
		f.t.Fatalf("attach %s to %s: %v", id, network, err)
	}
	return a
}

// inNetNS runs a command in the namespace at path, for at most 20s.
func inNetNS(path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// ping sends one ping from the namespace at path to ip.
func ping(path string, ip netip.Addr) error {
	out, err := inNetNS(path, "/bin/busybox", "ping", "-c", "1", "-W", "2", ip.String())
	if err != nil {
		return fmt.Errorf("ping %s: %w: %s", ip, err, out)
	}
	return nil
}

// iptablesLines returns the lines of iptables-save that mention any of
// words.
func iptablesLines(t *testing.T, words ...string) []string {
	t.Helper()
	var lines []string
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("iptables-save -t %s: %v", table, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			for _, w := range words {
				if strings.Contains(sc.Text(), w) {
					lines = append(lines, sc.Text())
					break
				}
			}
		}
	}
	return lines
}

// linkExists says whether the host has a network device called name.
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// ipamEntries lists the addresses host-local has handed out on network.
func (f *netFixture) ipamEntries(network string) []string {
	entries, _ := os.ReadDir(filepath.Join(f.dir, "data", "network", "ipam", network))
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// assertDetached checks that nothing of a is left on the host: its veth,
// its address in IPAM, and any iptables rule that names its address or
// its container.
func (f *netFixture) assertDetached(a cni.Attachment) {
	f.t.Helper()
	// A namespace's devices go with it a little after its last user (the
	// kernel's cleanup_net work): poll.
	for deadline := time.Now().Add(10 * time.Second); a.HostInterface != "" && linkExists(a.HostInterface); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Errorf("veth %s of %s is still there", a.HostInterface, a.ContainerID)
			break
		}
	}
	for _, ip := range f.ipamEntries(a.Network) {
		if ip == a.IP.Addr().String() {
			f.t.Errorf("IPAM still holds %s of %s", ip, a.ContainerID)
		}
	}
	if lines := iptablesLines(f.t, a.ContainerID, a.IP.Addr().String()+"/"); len(lines) > 0 {
		f.t.Errorf("iptables rules of %s are left:\n%s", a.ContainerID, strings.Join(lines, "\n"))
	}
}

// TestNetworkAttachPingDetach: two namespaces on a user network reach
// each other; a published port reaches the container from the host's
// loopback; detach leaves no veth, address or rule behind, also for a
// container whose namespace was gone first; `network rm` then takes the
// bridge and every rule of the network.
func TestNetworkAttachPingDetach(t *testing.T) {
	keepHostNetwork(t)
	f := newNetFixture(t)
	const bridge = "btping0"
	n := f.create(cni.CreateOptions{Name: "bt-ping", Subnet: "10.213.1.0/24", Options: map[string]string{cni.BridgeNameOption: bridge}})
	if len(iptablesLines(t, bridge, "10.213.1.")) != 0 {
		t.Fatalf("rules for the network before anything is attached:\n%s", strings.Join(iptablesLines(t, bridge, "10.213.1."), "\n"))
	}

	nsA, nsB := f.netns("a"), f.netns("b")
	port := freePort(t)
	a := f.attach(nsA, "bt-ping-a", n.Name, cni.AttachOptions{ContainerName: "pa", Ports: []cni.PortMapping{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80}}})
	b := f.attach(nsB, "bt-ping-b", n.Name, cni.AttachOptions{ContainerName: "pb", IP: netip.MustParseAddr("10.213.1.77"), MAC: "02:42:0a:d5:01:4d"})
	if !a.IP.IsValid() || a.IP.Bits() != 24 || a.Gateway != netip.MustParseAddr("10.213.1.1") || a.MAC == "" {
		t.Fatalf("attachment a: %+v", a)
	}
	if b.IP != netip.MustParsePrefix("10.213.1.77/24") || b.MAC != "02:42:0a:d5:01:4d" {
		t.Fatalf("attachment b did not get the IP and MAC asked for: %+v", b)
	}
	if err := ping(nsA, b.IP.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := ping(nsB, a.IP.Addr()); err != nil {
		t.Fatal(err)
	}

	// inspect lists both, as docker's does.
	got, err := f.store.Get(context.Background(), n.Name)
	if err != nil {
		t.Fatal(err)
	}
	if ep := got.Containers["bt-ping-b"]; ep.Name != "pb" || ep.IPv4Address != "10.213.1.77/24" || ep.MacAddress != b.MAC {
		t.Fatalf("inspect's containers: %+v", got.Containers)
	}

	// The published port, from the host's loopback.
	stopHTTP := serveHTTP(t, nsA)
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "berth network test") {
		t.Fatalf("published port: %q", body)
	}

	// A host port that a container publishes, or a process holds, fails
	// the attach with a clear error and nothing set up.
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	nsC := f.netns("c")
	refused := func(what string, o cni.AttachOptions, want string) {
		t.Helper()
		_, err := f.store.Attach(context.Background(), nsC, "bt-ping-c", n.Name, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("attach with %s: %v; want an error with %q", what, err, want)
		}
		if ips := f.ipamEntries(n.Name); len(ips) != 2 {
			t.Fatalf("attach with %s left IPAM entries: %v", what, ips)
		}
		if out, _ := inNetNS(nsC, "ip", "-o", "link", "show"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Fatalf("attach with %s left devices in the namespace:\n%s", what, out)
		}
		if got, _ := f.store.Attachments("bt-ping-c"); len(got) != 0 {
			t.Fatalf("attach with %s was recorded: %+v", what, got)
		}
	}
	refused("a host port a container publishes", cni.AttachOptions{Ports: []cni.PortMapping{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80}}},
		"port is already allocated (by pa)")
	refused("a host port a process holds", cni.AttachOptions{Ports: []cni.PortMapping{{HostIP: "127.0.0.1", HostPort: uint16(held.Addr().(*net.TCPAddr).Port), ContainerPort: 80}}},
		"port is already allocated (by a process on the host)")
	// Refused by the plugins (host-local), after the bridge plugin made
	// the veth: undone.
	refused("an address outside the subnet", cni.AttachOptions{IP: netip.MustParseAddr("10.213.9.9")}, "10.213.9.9")

	// The rules that detach must take away are there now (portmap's for
	// a's port): the checks below would see them. b publishes nothing and
	// has no rule of its own: the network's rules serve it.
	if len(iptablesLines(t, a.ContainerID, a.IP.Addr().String()+"/")) == 0 {
		t.Fatalf("no iptables rule names %s or %s while it publishes a port", a.ContainerID, a.IP.Addr())
	}
	if lines := iptablesLines(t, b.ContainerID, b.IP.Addr().String()+"/"); len(lines) != 0 {
		t.Fatalf("rules for %s, which publishes nothing:\n%s", b.ContainerID, strings.Join(lines, "\n"))
	}
	for _, at := range []cni.Attachment{a, b} {
		if !linkExists(at.HostInterface) {
			t.Fatalf("no veth %s on the host for %s", at.HostInterface, at.ContainerID)
		}
	}

	// The network masquerades, with one rule of berth's.
	if lines := iptablesLines(t, "-s 10.213.1.0/24 ! -o "+bridge+" -m comment --comment \"berth network bt-ping\" -j MASQUERADE"); len(lines) != 1 {
		t.Fatalf("masquerade rules of the network: %q", lines)
	}

	// rm is refused while containers are attached, naming them.
	if err := f.store.Remove(context.Background(), n.Name, noUsers{}); err == nil || !strings.Contains(err.Error(), "pa, pb") {
		t.Fatalf("rm of a network in use: %v", err)
	}

	if err := f.store.Detach(context.Background(), "bt-ping-b", n.Name); err != nil {
		t.Fatal(err)
	}
	f.assertDetached(b)
	// a's namespace goes before its detach (a container that died and
	// took it along): its address and port rules must go all the same.
	stopHTTP()
	if err := cni.RemoveNetNS(nsA); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Detach(context.Background(), "bt-ping-a", n.Name); err != nil {
		t.Fatal(err)
	}
	f.assertDetached(a)
	if ips := f.ipamEntries(n.Name); len(ips) != 0 {
		t.Fatalf("IPAM entries left: %v", ips)
	}
	if err := f.store.Detach(context.Background(), "bt-ping-a", n.Name); err == nil {
		t.Fatal("a second detach should say the container is not attached")
	}

	if err := f.store.Remove(context.Background(), n.Name, noUsers{}); err != nil {
		t.Fatal(err)
	}
	if lines := iptablesLines(t, bridge, "10.213.1."); len(lines) != 0 {
		t.Fatalf("rules of the removed network are left:\n%s", strings.Join(lines, "\n"))
	}
	if linkExists(bridge) {
		t.Fatalf("bridge %s is left after network rm", bridge)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "network", "ipam", n.Name)); !os.IsNotExist(err) {
		t.Fatalf("IPAM state of the removed network: %v", err)
	}
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) uint16 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// serveHTTP runs busybox httpd on port 80 in the namespace at path until
// stopped or the test ends, and waits until it answers there.
func serveHTTP(t *testing.T, path string) (stop func()) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("berth network test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+path, "--", "/bin/busybox", "httpd", "-f", "-p", "80", "-h", root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
			stopped = true
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := inNetNS(path, "/bin/busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:80/")
		if err == nil && strings.Contains(out, "berth network test") {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd in the namespace never answered: %v: %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestNetworkIsolation: containers on two user networks cannot reach each
// other; an --internal network has no route out, and its containers still
// reach each other.
func TestNetworkIsolation(t *testing.T) {
	keepHostNetwork(t)
	f := newNetFixture(t)
	one := f.create(cni.CreateOptions{Name: "bt-iso1", Subnet: "10.213.2.0/24", Options: map[string]string{cni.BridgeNameOption: "btiso1"}})
	two := f.create(cni.CreateOptions{Name: "bt-iso2", Subnet: "10.213.3.0/24", Options: map[string]string{cni.BridgeNameOption: "btiso2"}})
	internal := f.create(cni.CreateOptions{Name: "bt-isoint", Subnet: "10.213.4.0/24", Internal: true, Options: map[string]string{cni.BridgeNameOption: "btisoint"}})

	ns1, ns2, nsI, nsJ := f.netns("1"), f.netns("2"), f.netns("i"), f.netns("j")
	a1 := f.attach(ns1, "bt-iso-1", one.Name, cni.AttachOptions{})
	a2 := f.attach(ns2, "bt-iso-2", two.Name, cni.AttachOptions{})
	aI := f.attach(nsI, "bt-iso-i", internal.Name, cni.AttachOptions{})
	aJ := f.attach(nsJ, "bt-iso-j", internal.Name, cni.AttachOptions{})

	// Each reaches its own gateway, so a failure below is isolation.
	if err := ping(ns1, a1.Gateway); err != nil {
		t.Fatal(err)
	}
	if err := ping(ns2, a2.Gateway); err != nil {
		t.Fatal(err)
	}
	if err := ping(ns1, a2.IP.Addr()); err == nil {
		t.Fatalf("%s on %s reached %s on %s", a1.IP, one.Name, a2.IP, two.Name)
	}
	if err := ping(ns2, a1.IP.Addr()); err == nil {
		t.Fatalf("%s on %s reached %s on %s", a2.IP, two.Name, a1.IP, one.Name)
	}

	if err := ping(nsI, aJ.IP.Addr()); err != nil {
		t.Fatalf("containers of an internal network: %v", err)
	}
	routes, err := inNetNS(nsI, "ip", "route", "show")
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, routes)
	}
	if strings.Contains(routes, "default") {
		t.Fatalf("a container of an --internal network has a default route:\n%s", routes)
	}
	if err := ping(nsI, a1.IP.Addr()); err == nil {
		t.Fatalf("%s on the internal network reached %s", aI.IP, a1.IP)
	}
	// Even with a default route of its own, nothing leaves the bridge.
	if out, err := inNetNS(nsI, "ip", "route", "add", "default", "via", aI.Gateway.String()); err != nil {
		t.Fatalf("add a default route: %v: %s", err, out)
	}
	if err := ping(nsI, a1.IP.Addr()); err == nil {
		t.Fatalf("%s on the internal network reached %s through its own default route", aI.IP, a1.IP)
	}
	if err := ping(ns1, aI.IP.Addr()); err == nil {
		t.Fatalf("%s reached %s on the internal network", a1.IP, aI.IP)
	}
}

// TestNetworkConcurrentAttach: namespaces attached to one network at once
// get distinct addresses and all reach the gateway; detached at once, or
// as stale once their namespaces are gone, they leave IPAM empty.
func TestNetworkConcurrentAttach(t *testing.T) {
	keepHostNetwork(t)
	f := newNetFixture(t)
	n := f.create(cni.CreateOptions{Name: "bt-many", Subnet: "10.213.5.0/24", Options: map[string]string{cni.BridgeNameOption: "btmany0"}})
	const count = 16
	paths := make([]string, count)
	for i := range paths {
		paths[i] = f.netns(fmt.Sprint("m", i))
	}
	results := make([]cni.Attachment, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() {
			results[i], errs[i] = f.store.Attach(context.Background(), paths[i], fmt.Sprint("bt-many-", i), n.Name, cni.AttachOptions{})
		})
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i, a := range results {
		if errs[i] != nil {
			t.Fatalf("attach %d: %v", i, errs[i])
		}
		if j, dup := seen[a.IP.Addr()]; dup {
			t.Fatalf("%d and %d both got %s", i, j, a.IP)
		}
		seen[a.IP.Addr()] = i
	}
	for i, a := range results {
		if err := ping(paths[i], a.Gateway); err != nil {
			t.Fatalf("namespace %d: %v", i, err)
		}
	}
	// The network's rules (isolation, forwarding, masquerade: five), each
	// once, however many attaches raced to add them.
	// (Another test's network of the name, on another bridge, is not this one.)
	rules := slices.DeleteFunc(iptablesLines(t, "berth network bt-many"), func(l string) bool { return !strings.Contains(l, "btmany0") })
	if len(rules) != 5 || len(slices.Compact(slices.Sorted(slices.Values(rules)))) != 5 {
		t.Fatalf("16 attaches at once left %d rules for the network, want its five, once each: %q", len(rules), rules)
	}
	if masq := iptablesLines(t, "-s 10.213.5.0/24 ! -o btmany0 -m comment --comment \"berth network bt-many\" -j MASQUERADE"); len(masq) != 1 {
		t.Fatalf("masquerade rules of the network: %q", masq)
	}
	// Half detached one by one, at once; the other half as stale (their
	// containers gone without a detach), their namespaces gone first.
	for i := range count / 2 {
		wg.Go(func() { errs[i] = f.store.Detach(context.Background(), fmt.Sprint("bt-many-", i), n.Name) })
	}
	wg.Wait()
	for i, err := range errs[:count/2] {
		if err != nil {
			t.Fatalf("detach %d: %v", i, err)
		}
	}
	var stale []string
	for i := count / 2; i < count; i++ {
		if err := cni.RemoveNetNS(paths[i]); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, fmt.Sprint("bt-many-", i))
	}
	gone, err := f.store.DetachStale(context.Background(), func(id string) bool { return id == "bt-many-0" })
	sort.Strings(stale)
	if err != nil || !slices.Equal(gone, stale) {
		t.Fatalf("DetachStale = %v, %v; want %v", gone, err, stale)
	}
	if ips := f.ipamEntries(n.Name); len(ips) != 0 {
		t.Fatalf("IPAM entries left: %v", ips)
	}
	for _, a := range results {
		f.assertDetached(a)
	}
}

// TestBerthNetworkCommands drives `berth network` as a user would:
// create (an overlapping subnet refused), ls with its filters, inspect in
// docker's shape, rm refused for a predefined network and for one a
// container's labels name (naming it), rm, prune.
func TestBerthNetworkCommands(t *testing.T) {
	b, dir := newNetworkedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })

	res := b.mustRun("network", "create", "--subnet", "10.213.6.0/24", "--gateway", "10.213.6.254", "--ip-range", "10.213.6.0/25",
		"--label", "tier=db", "-o", "com.docker.network.bridge.name=btcli0", "bt-cli")
	id := strings.TrimSpace(res.stdout)
	if len(id) != 64 {
		t.Fatalf("network create printed %q, want the id", res.stdout)
	}
	if res := b.run("network", "create", "--subnet", "10.213.6.128/25", "bt-cli2"); res.code != 125 || !strings.Contains(res.stderr, "overlaps network bt-cli's subnet 10.213.6.0/24") {
		t.Fatalf("overlapping create: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.run("network", "create", "-d", "overlay", "bt-cli2"); res.code != 125 || !strings.Contains(res.stderr, `driver "overlay"`) {
		t.Fatalf("create -d overlay: exit %d, stderr %q", res.code, res.stderr)
	}

	res = b.mustRun("network", "ls")
	want := regexp.MustCompile(`^NETWORK ID +NAME +DRIVER +SCOPE\n[0-9a-f]{12} +bridge +bridge +local\n` + id[:12] + ` +bt-cli +bridge +local\n[0-9a-f]{12} +host +host +local\n[0-9a-f]{12} +none +null +local\n$`)
	if !want.MatchString(res.stdout) {
		t.Fatalf("network ls:\n%s", res.stdout)
	}
	if res := b.mustRun("network", "ls", "-q", "--no-trunc", "--filter", "label=tier=db"); res.stdout != id+"\n" {
		t.Fatalf("network ls -q --filter label=tier=db: %q", res.stdout)
	}
	if res := b.mustRun("network", "ls", "--format", "{{.Name}}", "--filter", "type=builtin"); res.stdout != "bridge\nhost\nnone\n" {
		t.Fatalf("network ls --filter type=builtin: %q", res.stdout)
	}

	var inspected []struct {
		Name, Driver, Scope string
		ID                  string `json:"Id"`
		Internal            bool
		IPAM                struct {
			Config []struct{ Subnet, Gateway, IPRange string }
		}
		Options, Labels map[string]string
		Containers      map[string]any
	}
	res = b.mustRun("network", "inspect", id[:8])
	if err := json.Unmarshal([]byte(res.stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("network inspect: %v\n%s", err, res.stdout)
	}
	if n := inspected[0]; n.Name != "bt-cli" || n.ID != id || len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet != "10.213.6.0/24" ||
		n.IPAM.Config[0].Gateway != "10.213.6.254" || n.IPAM.Config[0].IPRange != "10.213.6.0/25" ||
		n.Labels["tier"] != "db" || n.Options["com.docker.network.bridge.name"] != "btcli0" || n.Containers == nil {
		t.Fatalf("network inspect: %s", res.stdout)
	}
	if res := b.mustRun("network", "inspect", "-f", "{{.Driver}} {{(index .IPAM.Config 0).Subnet}}", "bridge"); res.stdout != "bridge 10.88.0.0/16\n" {
		t.Fatalf("inspect of the default network: %q", res.stdout)
	}
	if res := b.run("network", "inspect", "nosuch"); res.code != 125 || !strings.Contains(res.stderr, "no such network") {
		t.Fatalf("inspect nosuch: exit %d, stderr %q", res.code, res.stderr)
	}

	if res := b.run("network", "rm", "bridge"); res.code != 125 || !strings.Contains(res.stderr, "bridge is a pre-defined network and cannot be removed") {
		t.Fatalf("rm bridge: exit %d, stderr %q", res.code, res.stderr)
	}
	client, err := containerd.New(filepath.Join(dir, "st", "c.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "default")
	_, err = client.ContainerService().Create(ctx, containers.Container{
		ID: "uses-bt-cli", Runtime: containers.RuntimeInfo{Name: "io.containerd.berth.v2"},
		Labels: map[string]string{"berth/networks": "bridge,bt-cli", "berth/name": "webapp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.ContainerService().Delete(ctx, "uses-bt-cli") })
	if res := b.run("network", "rm", "bt-cli"); res.code != 125 || !strings.Contains(res.stderr, "has active endpoints (containers: webapp)") {
		t.Fatalf("rm of a network in use: exit %d, stderr %q", res.code, res.stderr)
	}
	b.mustRun("network", "create", "--subnet", "10.213.8.0/24", "bt-cli3")
	if res := b.mustRun("network", "prune", "-f"); res.stdout != "Deleted Networks:\nbt-cli3\n" {
		t.Fatalf("network prune -f: %q (bt-cli is in use)", res.stdout)
	}
	if err := client.ContainerService().Delete(ctx, "uses-bt-cli"); err != nil {
		t.Fatal(err)
	}
	if res := b.run("network", "rm", "bt-cli", "nosuch"); res.code != 125 || res.stdout != "bt-cli\n" || !strings.Contains(res.stderr, "no such network") {
		t.Fatalf("network rm bt-cli nosuch: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	b.mustRun("network", "rm", "-f", "nosuch")
	if res := b.mustRun("network", "ls", "-q", "--filter", "type=custom"); res.stdout != "" {
		t.Fatalf("custom networks left: %q", res.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "net.d", "berth-bt-cli.conflist")); !os.IsNotExist(err) {
		t.Fatalf("conflist left after rm: %v", err)
	}
}

// keepHostNetwork puts back after t what attaching to a network changes
// on the host for good, as it would under docker too: net.ipv4.ip_forward,
// which the bridge plugin turns on, the chains the portmap plugin (and
// the firewall plugin an older berth ran) makes once (CNI-HOSTPORT-DNAT,
// …) and shares with every CNI user of the host, and berth's own shared
// chains, once no network's rule is left in them. The tests leave the host as they found
// it (TestProcWritesReachContainer needs ip_forward off).
func keepHostNetwork(t *testing.T) {
	const key = "/proc/sys/net/ipv4/ip_forward"
	was, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	berthChains, err := cni.SharedChainsExist()
	if err != nil {
		t.Fatal(err)
	}
	tables := []string{"filter", "nat"}
	before := map[string][]string{}
	for _, table := range tables {
		if before[table], err = ipt.ListChains(table); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := os.WriteFile(key, was, 0o644); err != nil {
			t.Errorf("restore %s: %v", key, err)
		}
		for _, table := range tables {
			if err := removeNewCNIChains(ipt, table, before[table]); err != nil {
				t.Errorf("cleanup: the CNI chains of table %s: %v", table, err)
			}
		}
		if !berthChains {
			if err := cni.RemoveSharedChains(); err != nil {
				t.Errorf("cleanup: berth's chains: %v", err)
			}
		}
	})
}

// removeNewCNIChains removes the CNI-* chains of table that are not in
// before, and the rules that jump to them.
func removeNewCNIChains(ipt *iptables.IPTables, table string, before []string) error {
	chains, err := ipt.ListChains(table)
	if err != nil {
		return err
	}
	var made []string
	for _, c := range chains {
		if strings.HasPrefix(c, "CNI-") && !slices.Contains(before, c) {
			made = append(made, c)
		}
	}
	if len(made) == 0 {
		return nil
	}
	// Emptied first, so that no chain is referenced by another of them.
	for _, c := range made {
		if err := ipt.ClearChain(table, c); err != nil {
			return err
		}
	}
	for _, c := range chains {
		rules, err := ipt.List(table, c)
		if err != nil {
			return err
		}
		// Rule i is at position i (line 0 is the chain's -N or -P); from
		// the end, so that the earlier positions hold.
		for i := len(rules) - 1; i >= 1; i-- {
			f := strings.Fields(rules[i])
			if j := slices.Index(f, "-j"); j >= 0 && j+1 < len(f) && slices.Contains(made, f[j+1]) {
				if err := ipt.DeleteById(table, c, i); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range made {
		if err := ipt.DeleteChain(table, c); err != nil {
			return err
		}
	}
	return nil
}
