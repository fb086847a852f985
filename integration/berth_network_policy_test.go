package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/cni"
)

// TestNetworkForwardPolicyDrop: on a host whose FORWARD policy is DROP,
// berth's rules still let a network's containers out (and the replies
// in), as the firewall plugin's did; without them nothing passes. The
// "host" is a network namespace of the test, with an "outside" namespace
// behind a veth, so that the real host's policy is never touched; all of
// it goes with the namespaces.
func TestNetworkForwardPolicyDrop(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("networks need iptables: %v", err)
	}
	plugins := filepath.Join(filepath.Dir(runtimeBin), "cni")
	dir, err := os.MkdirTemp("/run", "bn-fwd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	hostNS, outNS, ctrNS := filepath.Join(dir, "host"), filepath.Join(dir, "out"), filepath.Join(dir, "ctr")
	for _, p := range []string{hostNS, outNS, ctrNS} {
		if err := cni.NewNetNS(p); err != nil {
			t.Fatal(err)
		}
		defer cni.RemoveNetNS(p)
	}
	store := cni.NewStore(cni.Config{ConfDir: filepath.Join(dir, "net.d"), PluginDirs: []string{plugins}, DataRoot: filepath.Join(dir, "data")})

	// All of berth's work runs on a thread in hostNS: its netlink calls,
	// its /proc/sys writes and the iptables it runs act there. The thread
	// is never unlocked: it ends with the goroutine, and no other
	// goroutine runs in hostNS.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- inHostNS(hostNS, func() error { return forwardDropScenario(store, outNS, ctrNS) })
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func inHostNS(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter the host namespace: %w", err)
	}
	return fn()
}

// forwardDropScenario, in the host namespace: the outside at 10.213.12.2
// behind up0, FORWARD's policy DROP, a network and a container on it,
// which must reach the outside; with FORWARD's jump to berth's chains
// gone, it must not.
func forwardDropScenario(store *cni.Store, outNS, ctrNS string) error {
	out, err := os.Open(outNS)
	if err != nil {
		return err
	}
	defer out.Close()
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0", Flags: net.FlagUp}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(out.Fd()))}
	if err := netlink.LinkAdd(up); err != nil {
		return fmt.Errorf("veth to the outside: %w", err)
	}
	addr, _ := netlink.ParseAddr("10.213.12.1/24")
	if err := netlink.AddrAdd(up, addr); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"nsenter", "--net=" + outNS, "--", "ip", "addr", "add", "10.213.12.2/24", "dev", "eth0"},
		{"nsenter", "--net=" + outNS, "--", "ip", "link", "set", "eth0", "up"},
		{"iptables", "-P", "FORWARD", "DROP"},
	} {
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %w: %s", args, err, b)
		}
	}
	ctx := context.Background()
	n, err := store.Create(ctx, cni.CreateOptions{Name: "bt-fwd", Subnet: "10.213.13.0/24", Options: map[string]string{cni.BridgeNameOption: "btfwd0"}})
	if err != nil {
		return err
	}
	if _, err := store.Attach(ctx, ctrNS, "bt-fwd-1", n.Name, cni.AttachOptions{}); err != nil {
		return err
	}
	outside := "10.213.12.2"
	pingOut := func() error {
		b, err := exec.Command("nsenter", "--net="+ctrNS, "--", "/bin/busybox", "ping", "-c", "1", "-W", "2", outside).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, b)
		}
		return nil
	}
	if err := pingOut(); err != nil {
		return fmt.Errorf("with FORWARD's policy DROP, the container did not reach %s: %w", outside, err)
	}
	if b, err := exec.Command("iptables", "-D", "FORWARD", "-m", "comment", "--comment", "berth networks", "-j", "BERTH-FORWARD").CombinedOutput(); err != nil {
		return fmt.Errorf("remove FORWARD's jump to berth's chains: %w: %s", err, b)
	}
	if err := pingOut(); err == nil {
		return errors.New("without berth's rules the container still reached the outside: the check above proves nothing")
	}
	return store.Detach(ctx, "bt-fwd-1", n.Name)
}
