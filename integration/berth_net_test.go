package integration

// `berth run` on networks: the course's network chapter and labs (modes,
// a user network where containers find each other by name, published
// ports, connect/disconnect, isolation), and that nothing of a network is
// left behind however a container ends.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// newNetworkedBusybox is a networked berth (default network bridge) with
// the busybox image.
func newNetworkedBusybox(t *testing.T) (*berthCLI, string) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	b, dir := newNetworkedBerth(t)
	withBusybox(t, b, dir)
	return b, dir
}

// nsInode is the inode of a process's network namespace, as readlink
// shows it: "net:[4026531840]".
func nsInode(t *testing.T, pid string) string {
	t.Helper()
	link, err := os.Readlink("/proc/" + strings.TrimSpace(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return link
}

func TestBerthNetworkModes(t *testing.T) {
	b, _ := newNetworkedBusybox(t)
	if res := b.mustRun("run", "--rm", "--net", "none", busyboxRef, "ip", "-o", "link"); !regexp.MustCompile(`^1: lo: [^\n]*\n$`).MatchString(res.stdout) {
		t.Errorf("--net none: links %q, want lo alone", res.stdout)
	}
	host := nsInode(t, "self")
	if res := b.mustRun("run", "--rm", "--net", "host", busyboxRef, "readlink", "/proc/self/ns/net"); strings.TrimSpace(res.stdout) != host {
		t.Errorf("--net host: namespace %q, want the host's %q", res.stdout, host)
	}
	b.mustRun("run", "-d", "--name", "holder", busyboxRef, "sleep", "300")
	xNet := nsInode(t, b.mustRun("inspect", "-f", "{{.State.Pid}}", "holder").stdout)
	if res := b.mustRun("run", "--rm", "--net", "container:holder", busyboxRef, "readlink", "/proc/self/ns/net"); strings.TrimSpace(res.stdout) != xNet {
		t.Errorf("--net container:holder: namespace %q, want holder's %q", res.stdout, xNet)
	}
	// The default network: an address on berth0's subnet, a default route.
	res := b.mustRun("run", "--rm", busyboxRef, "sh", "-c", "ip -4 -o addr show eth0; ip route")
	if !strings.Contains(res.stdout, "inet 10.88.") || !strings.Contains(res.stdout, "default via 10.88.0.1") {
		t.Errorf("default network: %q, want an address in 10.88.0.0/16 and a default route", res.stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--net", "nosuch"}, "network nosuch not found"},
		{[]string{"--net", "none", "--net", "bridge"}, "conflicting options"},
		{[]string{"--net", "container:nosuch"}, "No such container: nosuch"},
		{[]string{"--network-alias", "a"}, "only supported for user-defined networks"},
	} {
		if res := b.run(append(append([]string{"run", "--rm"}, tc.args...), busyboxRef, "true")...); res.code != 125 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("run %s: exit %d, stderr %q; want 125 and %q", strings.Join(tc.args, " "), res.code, res.stderr, tc.want)
		}
	}
	b.mustRun("stop", "-t", "0", "holder")
	if res := b.run("run", "--rm", "--net", "container:holder", busyboxRef, "true"); res.code != 125 || !strings.Contains(res.stderr, "non running container") {
		t.Errorf("--net container:holder of a stopped holder: exit %d, stderr %q", res.code, res.stderr)
	}
}

// The course's user network: ct2 pings ct1 by name, and back; names of
// containers that come later, and aliases, resolve too.
func TestBerthUserNetworkNames(t *testing.T) {
	b, _ := newNetworkedBusybox(t)
	b.mustRun("network", "create", "--subnet", "10.213.20.0/24", "bt-names")
	b.mustRun("run", "-d", "--name", "ct1", "--net", "bt-names", busyboxRef, "sleep", "300")
	b.mustRun("run", "-d", "--name", "ct2", "--net", "bt-names", "--network-alias", "second", busyboxRef, "sleep", "300")
	for _, tc := range [][]string{{"ct2", "ct1"}, {"ct1", "ct2"}, {"ct1", "second"}} {
		if res := b.run("exec", tc[0], "ping", "-c", "1", "-W", "5", tc[1]); res.code != 0 {
			t.Errorf("%s: ping %s: exit %d\n%s%s", tc[0], tc[1], res.code, res.stdout, res.stderr)
		}
	}
	// A container that stops loses its name; started again, it has it.
	b.mustRun("stop", "-t", "0", "ct2")
	if res := b.run("exec", "ct1", "ping", "-c", "1", "-W", "1", "ct2"); res.code == 0 {
		t.Errorf("ct1 still reaches ct2 after ct2 stopped")
	}
	b.mustRun("start", "ct2")
	if res := b.run("exec", "ct1", "ping", "-c", "1", "-W", "5", "ct2"); res.code != 0 {
		t.Errorf("ct1: ping ct2 after its restart: exit %d\n%s", res.code, res.stderr)
	}
	// The default bridge network has no names, as docker's.
	b.mustRun("run", "-d", "--name", "plain1", busyboxRef, "sleep", "300")
	if res := b.run("run", "--rm", busyboxRef, "ping", "-c", "1", "-W", "1", "plain1"); res.code == 0 {
		t.Errorf("a container on the default network resolved plain1")
	}
}

// fetchFromHost fetches url from the host, retrying while the server
// starts.
func fetchFromHost(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The course's -p and -P: busybox httpd in a container, fetched from the
// host on 127.0.0.1; a taken host port fails run with nothing left.
func TestBerthPublishedPorts(t *testing.T) {
	b, dir := newNetworkedBusybox(t)
	port := freePort(t)
	web := []string{busyboxRef, "sh", "-c", "echo served-by-$(hostname) > /tmp/index.html; exec httpd -f -p 80 -h /tmp"}
	id := strings.TrimSpace(b.mustRun(append([]string{"run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", port)}, web...)...).stdout)
	if got := fetchFromHost(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "served-by-"+id[:12]+"\n" {
		t.Errorf("-p %d:80: got %q", port, got)
	}
	// From another container, through the host's port on its gateway
	// (the bridge's address, the test's own). busybox wget without -T:
	// Debian's static build crashes with it.
	gw := strings.TrimSpace(b.mustRun("inspect", "-f", "{{.NetworkSettings.Gateway}}", "web").stdout)
	if res := b.run("run", "--rm", busyboxRef, "timeout", "10", "wget", "-qO-", fmt.Sprintf("http://%s:%d/", gw, port)); res.stdout != "served-by-"+id[:12]+"\n" {
		t.Errorf("-p %d:80 from another container through %s: exit %d, %q %q", port, gw, res.code, res.stdout, res.stderr)
	}
	if res := b.mustRun("port", "web"); res.stdout != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n", port) {
		t.Errorf("port web: %q", res.stdout)
	}
	if res := b.mustRun("ps", "--format", "{{.Ports}}", "--filter", "name=web"); res.stdout != fmt.Sprintf("0.0.0.0:%d->80/tcp\n", port) {
		t.Errorf("ps PORTS: %q", res.stdout)
	}
	// -P: every exposed port on a host port of its own.
	b.mustRun(append([]string{"run", "-d", "--name", "webp", "--expose", "80", "-P"}, web...)...)
	line := strings.TrimSpace(b.mustRun("port", "webp", "80").stdout)
	host := regexp.MustCompile(`^0\.0\.0\.0:(\d+)$`).FindStringSubmatch(line)
	if host == nil {
		t.Fatalf("port webp 80: %q", line)
	}
	if got := fetchFromHost(t, "http://127.0.0.1:"+host[1]+"/"); !strings.HasPrefix(got, "served-by-") {
		t.Errorf("-P: got %q", got)
	}
	// A taken host port: a clear error, and nothing of the network left.
	before := netCounts(t, dir)
	res := b.run("run", "-d", "--name", "clash", "-p", fmt.Sprintf("%d:80", port), busyboxRef, "sleep", "300")
	if res.code == 0 || !strings.Contains(res.stderr, "port is already allocated") || !strings.Contains(res.stderr, "web") {
		t.Errorf("run on a taken port: exit %d, stderr %q", res.code, res.stderr)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res = b.run("run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", l.Addr().(*net.TCPAddr).Port), busyboxRef, "sleep", "300")
	if res.code == 0 || !strings.Contains(res.stderr, "port is already allocated (by a process on the host)") {
		t.Errorf("run on a port a host process has: exit %d, stderr %q", res.code, res.stderr)
	}
	if after := netCounts(t, dir); after != before {
		t.Errorf("refused runs left network state: before %+v, after %+v", before, after)
	}
}

func TestBerthNetworkConnect(t *testing.T) {
	b, _ := newNetworkedBusybox(t)
	b.mustRun("network", "create", "--subnet", "10.213.21.0/24", "bt-front")
	b.mustRun("network", "create", "--subnet", "10.213.22.0/24", "bt-back")
	b.mustRun("run", "-d", "--name", "app", "--net", "bt-front", busyboxRef, "sleep", "300")
	b.mustRun("run", "-d", "--name", "db", "--net", "bt-back", busyboxRef, "sleep", "300")
	if res := b.run("exec", "app", "ping", "-c", "1", "-W", "1", "db"); res.code == 0 {
		t.Fatalf("app reaches db across networks before connect")
	}
	b.mustRun("network", "connect", "--alias", "api", "--ip", "10.213.22.50", "bt-back", "app")
	if res := b.mustRun("exec", "app", "ip", "-4", "-o", "addr", "show", "eth1"); !strings.Contains(res.stdout, "10.213.22.50/24") {
		t.Errorf("after connect: eth1 %q", res.stdout)
	}
	for _, tc := range [][]string{{"app", "db"}, {"db", "app"}, {"db", "api"}} {
		if res := b.run("exec", tc[0], "ping", "-c", "1", "-W", "5", tc[1]); res.code != 0 {
			t.Errorf("after connect: %s: ping %s: exit %d %s", tc[0], tc[1], res.code, res.stderr)
		}
	}
	if res := b.mustRun("inspect", "-f", `{{(index .NetworkSettings.Networks "bt-back").IPAddress}}`, "app"); strings.TrimSpace(res.stdout) != "10.213.22.50" {
		t.Errorf("inspect after connect: %q", res.stdout)
	}
	if res := b.run("network", "connect", "bt-back", "app"); res.code != 125 || !strings.Contains(res.stderr, "already exists in network bt-back") {
		t.Errorf("connect twice: exit %d, stderr %q", res.code, res.stderr)
	}
	// Connected for good: a restart keeps it.
	b.mustRun("restart", "-t", "0", "app")
	if res := b.run("exec", "app", "ping", "-c", "1", "-W", "5", "db"); res.code != 0 {
		t.Errorf("after restart: app cannot reach db: %s", res.stderr)
	}
	b.mustRun("network", "disconnect", "bt-back", "app")
	if res := b.run("exec", "app", "ip", "-o", "link", "show", "eth1"); res.code == 0 {
		t.Errorf("after disconnect, app still has eth1: %s", res.stdout)
	}
	if res := b.run("exec", "app", "ping", "-c", "1", "-W", "1", "db"); res.code == 0 {
		t.Errorf("after disconnect, app still reaches db")
	}
	if res := b.run("network", "disconnect", "bt-back", "app"); res.code != 125 || !strings.Contains(res.stderr, "is not connected to network bt-back") {
		t.Errorf("disconnect twice: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.run("network", "rm", "bt-front"); res.code != 125 || !strings.Contains(res.stderr, "app") {
		t.Errorf("rm of a network in use: exit %d, stderr %q", res.code, res.stderr)
	}
}

// Two user networks cannot reach each other; an --internal one has no
// way out (no default route).
func TestBerthNetworkIsolation(t *testing.T) {
	b, _ := newNetworkedBusybox(t)
	b.mustRun("network", "create", "--subnet", "10.213.23.0/24", "bt-iso1")
	b.mustRun("network", "create", "--subnet", "10.213.24.0/24", "bt-iso2")
	b.mustRun("network", "create", "--internal", "--subnet", "10.213.25.0/24", "bt-int")
	b.mustRun("run", "-d", "--name", "one", "--net", "bt-iso1", busyboxRef, "sleep", "300")
	ip := strings.TrimSpace(b.mustRun("inspect", "-f", `{{(index .NetworkSettings.Networks "bt-iso1").IPAddress}}`, "one").stdout)
	if res := b.run("run", "--rm", "--net", "bt-iso2", busyboxRef, "ping", "-c", "1", "-W", "2", ip); res.code == 0 {
		t.Errorf("a container on bt-iso2 reached %s on bt-iso1", ip)
	}
	if res := b.mustRun("run", "--rm", "--net", "bt-iso1", busyboxRef, "ping", "-c", "1", "-W", "5", ip); res.code != 0 {
		t.Errorf("a container on bt-iso1 cannot reach %s on it", ip)
	}
	res := b.mustRun("run", "--rm", "--net", "bt-int", busyboxRef, "ip", "route")
	if strings.Contains(res.stdout, "default") {
		t.Errorf("--internal network: routes %q, want no default route", res.stdout)
	}
	if res := b.run("run", "--rm", "--net", "bt-int", busyboxRef, "ping", "-c", "1", "-W", "2", ip); res.code == 0 {
		t.Errorf("a container on an internal network reached %s on bt-iso1", ip)
	}
}

// netState is what networking holds on the host: what must be the same
// before and after any number of containers came and went.
type netState struct {
	Veths, Rules, Addresses, Namespaces, Endpoints int
}

// netCounts counts the host's veths and iptables rules of CNI and berth,
// and the test berth's IPAM allocations, bound namespaces and endpoints.
func netCounts(t *testing.T, dir string) netState {
	t.Helper()
	var s netState
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	s.Veths = strings.Count(string(out), "\n")
	out, err = exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A") && (strings.Contains(l, "CNI") || strings.Contains(l, "berth")) {
			s.Rules++
		}
	}
	ipam, _ := filepath.Glob(filepath.Join(dir, "data", "network", "ipam", "*", "*"))
	for _, p := range ipam {
		if net.ParseIP(filepath.Base(p)) != nil {
			s.Addresses++
		}
	}
	ns, _ := filepath.Glob(filepath.Join(dir, "netns", "*"))
	for _, p := range ns {
		if !strings.HasSuffix(p, ".lock") {
			s.Namespaces++
		}
	}
	eps, _ := filepath.Glob(filepath.Join(dir, "data", "network", "endpoints", "*", "*.json"))
	s.Endpoints = len(eps)
	return s
}

// The leak test of the issue: 200 create/start/rm cycles on a user network
// with a published port, one in ten ended by kill -9 of the container's
// process or of its shim first; the host's counts are the same after.
func TestBerthNetworkLeaks(t *testing.T) {
	b, dir := newNetworkedBusybox(t)
	b.mustRun("network", "create", "--subnet", "10.213.26.0/24", "bt-leak")
	// Warm: the network's bridge and its once-made chains are there
	// before the count.
	b.mustRun("run", "--rm", "--net", "bt-leak", "-p", "80", busyboxRef, "true")
	before := netCounts(t, dir)
	cycles := 200
	if testing.Short() {
		cycles = 20
	}
	for i := range cycles {
		name := fmt.Sprintf("leak%d", i)
		b.mustRun("create", "--name", name, "--net", "bt-leak", "-p", "80", busyboxRef, "sleep", "300")
		b.mustRun("start", name)
		switch {
		case i%10 == 3:
			pid := strings.TrimSpace(b.mustRun("inspect", "-f", "{{.State.Pid}}", name).stdout)
			exec.Command("kill", "-9", pid).Run()
			waitStatus(t, b, name, "exited")
		case i%10 == 7:
			pid := strings.TrimSpace(b.mustRun("inspect", "-f", "{{.State.Pid}}", name).stdout)
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				t.Fatal(err)
			}
			// The shim is the container's parent (field 4 of stat, after
			// the command in parentheses).
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			exec.Command("kill", "-9", fields[1]).Run()
			waitStatus(t, b, name, "exited")
		}
		b.mustRun("rm", "-f", name)
	}
	if after := netCounts(t, dir); after != before {
		t.Errorf("after %d cycles: %+v, before: %+v", cycles, after, before)
	}
}

// waitStatus waits until container name's state is want.
func waitStatus(t *testing.T, b *berthCLI, name, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := b.run("inspect", "-f", "{{.State.Status}}", name)
		if strings.TrimSpace(res.stdout) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %q, want %s", name, res.stdout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 50 containers started at once on one network get 50 addresses, and
// each reaches the gateway.
func TestBerthNetworkConcurrentRuns(t *testing.T) {
	b, _ := newNetworkedBusybox(t)
	b.mustRun("network", "create", "--subnet", "10.213.27.0/24", "--gateway", "10.213.27.1", "bt-many")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("many%d", i)
			if res := b.run("run", "-d", "--name", name, "--net", "bt-many", busyboxRef, "sleep", "300"); res.code != 0 {
				errs <- fmt.Sprintf("run %s: %s", name, res.stderr)
				return
			}
			if res := b.run("exec", name, "ping", "-c", "1", "-W", "5", "10.213.27.1"); res.code != 0 {
				errs <- fmt.Sprintf("%s cannot reach the gateway: %s%s", name, res.stdout, res.stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	seen := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("many%d", i)
		ip := strings.TrimSpace(b.mustRun("inspect", "-f", `{{(index .NetworkSettings.Networks "bt-many").IPAddress}}`, name).stdout)
		if ip == "" {
			t.Errorf("%s has no address", name)
		} else if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both have %s", name, other, ip)
		}
		seen[ip] = name
	}
}

// A stopped container holds no veth and no address, whoever saw it stop:
// berth stop, the monitor after a kill -9 with no berth running, or the
// monitor's reconcile after a containerd restart that missed the exit. A
// restart policy brings the network back.
func TestBerthNetworkTeardown(t *testing.T) {
	b, dir := newNetworkedBusybox(t)
	b.mustRun("network", "create", "--subnet", "10.213.28.0/24", "--gateway", "10.213.28.1", "bt-down")
	// The bridge and the chains portmap makes once for the host.
	b.mustRun("run", "--rm", "--net", "bt-down", "-p", "80", busyboxRef, "true")
	idle := netCounts(t, dir)
	up := func(name string) {
		t.Helper()
		if res := b.run("exec", name, "ping", "-c", "1", "-W", "5", "10.213.28.1"); res.code != 0 {
			t.Errorf("%s cannot reach its gateway: %s", name, res.stderr)
		}
	}
	down := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for netCounts(t, dir) != idle {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v, want the idle %+v", what, netCounts(t, dir), idle)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pidOf := func(name string) string {
		return strings.TrimSpace(b.mustRun("inspect", "-f", "{{.State.Pid}}", name).stdout)
	}
	b.mustRun("run", "-d", "--name", "td", "--net", "bt-down", "-p", "80", busyboxRef, "sleep", "300")
	up("td")
	b.mustRun("stop", "-t", "0", "td")
	if got := netCounts(t, dir); got != idle {
		t.Errorf("after stop: %+v, want %+v", got, idle)
	}
	b.mustRun("start", "td")
	up("td")
	exec.Command("kill", "-9", pidOf("td")).Run()
	down("after kill -9, no berth running")

	// The exit happens while containerd is down.
	b.mustRun("start", "td")
	pid := pidOf("td")
	b.mustRun("system", "stop")
	exec.Command("kill", "-9", pid).Run()
	b.mustRun("system", "start")
	down("after a kill -9 while containerd was down")

	// A restart policy: the monitor brings the network up again.
	b.mustRun("run", "-d", "--name", "tr", "--restart", "always", "--net", "bt-down", busyboxRef, "sleep", "300")
	first := pidOf("tr")
	exec.Command("kill", "-9", first).Run()
	deadline := time.Now().Add(20 * time.Second)
	for pidOf("tr") == first || pidOf("tr") == "0" {
		if time.Now().After(deadline) {
			t.Fatal("tr was not restarted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	up("tr")
	b.mustRun("rm", "-f", "tr", "td")
	down("after rm -f")
}
