package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/cni"
)

// hostState is what attachments leave on the host, counted for one test's
// network so that other tests at the same time do not count: the veths
// on its bridge, the iptables lines of CNI and berth that name its
// bridge, subnet or containers (and the per-container chains those jump
// to), host-local's entries in its store, and the network namespaces
// bound under its dir.
type hostState struct {
	veths, rules, ipam, netns int
}

func (f *netFixture) hostCounts(network, bridge, subnetPrefix, idPrefix string) hostState {
	f.t.Helper()
	var c hostState
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		f.t.Fatalf("ip link: %v", err)
	}
	c.veths = strings.Count(string(out), "master "+bridge+" ")
	var all []string
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			f.t.Fatalf("iptables-save: %v", err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "CNI") || strings.Contains(l, "BERTH") || strings.Contains(l, "berth") {
				all = append(all, l)
			}
		}
	}
	chains := map[string]bool{}
	for _, l := range all {
		if strings.Contains(l, bridge) || strings.Contains(l, subnetPrefix) || strings.Contains(l, idPrefix) {
			c.rules++
			for _, w := range strings.Fields(l) {
				if strings.HasPrefix(w, "CNI-DN-") || strings.HasPrefix(w, "CNI-SN-") {
					chains[w] = true
				}
			}
		}
	}
	for _, l := range all {
		if !(strings.Contains(l, bridge) || strings.Contains(l, subnetPrefix) || strings.Contains(l, idPrefix)) {
			for ch := range chains {
				if strings.Contains(l, ch) {
					c.rules++
					break
				}
			}
		}
	}
	c.ipam = len(f.ipamEntries(network))
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, " nsfs ") && strings.Contains(l, " "+f.dir+"/") {
			c.netns++
		}
	}
	return c
}

// TestNetworkTeardownLeavesNothing: 30 attach/detach cycles with a
// published port leave the host as it was, whichever way they end: the
// namespace removed before the detach (Release), a process in it killed
// with SIGKILL and the detach run twice (the second says NotFound), or
// detach then removal.
func TestNetworkTeardownLeavesNothing(t *testing.T) {
	keepHostNetwork(t)
	f := newNetFixture(t)
	const bridge, subnet = "btleak0", "10.213.11."
	n := f.create(cni.CreateOptions{Name: "bt-leak", Subnet: subnet + "0/24", Options: map[string]string{cni.BridgeNameOption: bridge}})
	ctx := context.Background()
	cycle := func(i int) {
		id := fmt.Sprint("bt-leak-", i)
		path := filepath.Join(f.dir, "ns-leak")
		if err := cni.NewNetNS(path); err != nil {
			t.Fatal(err)
		}
		f.attach(path, id, n.Name, cni.AttachOptions{ContainerName: id, Ports: []cni.PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80}}})
		switch i % 3 {
		case 0:
			if err := f.store.Release(ctx, id, path); err != nil {
				t.Fatalf("release %s: %v", id, err)
			}
			if err := f.store.Release(ctx, id, path); err != nil {
				t.Fatalf("second release of %s: %v", id, err)
			}
		case 1:
			cmd := exec.Command("nsenter", "--net="+path, "--", "/bin/busybox", "sleep", "60")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			if err := f.store.Detach(ctx, id, n.Name); err != nil {
				t.Fatalf("detach %s: %v", id, err)
			}
			if err := f.store.Detach(ctx, id, n.Name); !errdefs.IsNotFound(err) {
				t.Fatalf("second detach of %s: %v, want NotFound", id, err)
			}
			if err := cni.RemoveNetNS(path); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := f.store.Detach(ctx, id, n.Name); err != nil {
				t.Fatalf("detach %s: %v", id, err)
			}
			if err := cni.RemoveNetNS(path); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The network's own rules come with its first attach: counted after.
	cycle(2)
	counts := func() hostState { return f.hostCounts(n.Name, bridge, subnet, "bt-leak-") }
	before := counts()
	if before.ipam != 0 || before.veths != 0 || before.netns != 0 {
		t.Fatalf("after one cycle: %+v", before)
	}
	// Seen while attached, so that the counts below could see a leak.
	path := f.netns("seen")
	f.attach(path, "bt-leak-seen", n.Name, cni.AttachOptions{Ports: []cni.PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80}}})
	if c := counts(); c.veths != 1 || c.ipam != 1 || c.rules <= before.rules || c.netns != 1 {
		t.Fatalf("while attached: %+v (before %+v)", c, before)
	}
	if err := f.store.Release(ctx, "bt-leak-seen", path); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		cycle(i)
	}
	// Veths of removed namespaces go a moment later (the kernel's cleanup
	// work): poll.
	after := counts()
	for deadline := time.Now().Add(10 * time.Second); after != before && time.Now().Before(deadline); after = counts() {
		time.Sleep(50 * time.Millisecond)
	}
	if after != before {
		t.Fatalf("30 cycles left the host with %+v, was %+v", after, before)
	}
}
