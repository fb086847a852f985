package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthrt/berth/cni"
)

// TestNetworkHosts: the hosts files of three containers on a user network
// list each other by name and alias after their attaches, and lose one
// after its detach; the files are written in place.
func TestNetworkHosts(t *testing.T) {
	keepHostNetwork(t)
	f := newNetFixture(t)
	n := f.create(cni.CreateOptions{Name: "bt-hosts", Subnet: "10.213.10.0/24", Options: map[string]string{cni.BridgeNameOption: "bthosts0"}})
	dir := t.TempDir()
	names := []string{"web", "db", "cache"}
	var as []cni.Attachment
	for i, name := range names {
		h := cni.HostsFile{Path: filepath.Join(dir, name), Hostname: name + "-host", Extra: []string{"10.9.8.7\tbackup"}}
		if err := f.store.WriteHosts(context.Background(), "bt-hosts-"+name, h); err != nil {
			t.Fatal(err)
		}
		as = append(as, f.attach(f.netns(name), "bt-hosts-"+name, n.Name, cni.AttachOptions{
			ContainerName: name, Aliases: []string{name + "-alias"}, Hosts: h, IP: netip.MustParseAddr(fmt.Sprint("10.213.10.", 10+i)),
		}))
	}
	read := func(name string) string {
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	for i, name := range names {
		got := read(name)
		want := []string{"127.0.0.1\tlocalhost\n", "10.9.8.7\tbackup\n", fmt.Sprintf("%s\t%s-host %s\n", as[i].IP.Addr(), name, name)}
		for j, other := range names {
			if j != i {
				want = append(want, fmt.Sprintf("%s\t%s %s-alias\n", as[j].IP.Addr(), other, other))
			}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Fatalf("hosts file of %s lacks %q:\n%s", name, w, got)
			}
		}
	}
	before, err := os.Stat(filepath.Join(dir, "web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Detach(context.Background(), "bt-hosts-db", n.Name); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "cache"} {
		if got := read(name); strings.Contains(got, "db") || !strings.Contains(got, "10.213.10.") {
			t.Fatalf("hosts file of %s after db's detach:\n%s", name, got)
		}
	}
	if got := read("db"); strings.Contains(got, "web") || strings.Contains(got, "10.213.10.11") {
		t.Fatalf("db's own hosts file after its detach:\n%s", got)
	}
	after, _ := os.Stat(filepath.Join(dir, "web"))
	if !os.SameFile(before, after) {
		t.Fatal("web's hosts file was replaced, not rewritten in place")
	}
}
