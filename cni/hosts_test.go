package cni

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderHosts(t *testing.T) {
	at := func(network, id, name, ip string, aliases ...string) Attachment {
		a := Attachment{Network: network, ContainerID: id, ContainerName: name, Aliases: aliases}
		if ip != "" {
			a.IP = netip.MustParsePrefix(ip)
		}
		return a
	}
	const local = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, tc := range []struct {
		name string
		h    HostsFile
		e    hostsEntry
		want string
	}{
		{"no network", HostsFile{Hostname: "box", Extra: []string{"10.9.9.9\tdb.example"}}, hostsEntry{},
			local + "10.9.9.9\tdb.example\n"},
		{"default network: no names of others", HostsFile{Hostname: "h1"}, hostsEntry{
			self:  []Attachment{at(DefaultNetwork, "c1", "web", "10.88.0.2/16")},
			peers: map[string][]Attachment{DefaultNetwork: {at(DefaultNetwork, "c2", "db", "10.88.0.3/16")}},
		}, local + "10.88.0.2\th1 web\n"},
		{"user network: others by name and alias", HostsFile{Hostname: "web"}, hostsEntry{
			self: []Attachment{at("app", "c1", "web", "10.1.0.2/24")},
			peers: map[string][]Attachment{"app": {
				at("app", "c2", "db", "10.1.0.3/24", "mysql", "db"),
				at("app", "c3", "", "10.1.0.4/24"),
				at("app", "c4", "cache", ""),
			}},
		}, local + "10.1.0.2\tweb\n10.1.0.3\tdb mysql\n"},
		{"two networks, one not shared", HostsFile{Hostname: "h"}, hostsEntry{
			self: []Attachment{at("a", "c1", "x", "10.1.0.2/24"), at("b", "c1", "x", "10.2.0.2/24"), at(DefaultNetwork, "c1", "x", "10.88.0.9/16")},
			peers: map[string][]Attachment{
				"a":            {at("a", "c2", "y", "10.1.0.3/24")},
				"b":            {at("b", "c2", "y", "10.2.0.3/24"), at("b", "c3", "z", "10.2.0.4/24")},
				DefaultNetwork: {at(DefaultNetwork, "c4", "w", "10.88.0.10/16")},
			},
		}, local + "10.1.0.2\th x\n10.2.0.2\th x\n10.88.0.9\th x\n10.1.0.3\ty\n10.2.0.3\ty\n10.2.0.4\tz\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(renderHosts(tc.h, tc.e)); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestRefreshHosts: a change on a network rewrites the files of the
// containers on it, in place, never through a link.
func TestRefreshHosts(t *testing.T) {
	s, _ := newTestStore(t)
	dir := t.TempDir()
	rec := func(network, id, name, ip string) Attachment {
		a := Attachment{Network: network, ContainerID: id, ContainerName: name, IP: netip.MustParsePrefix(ip),
			Hosts: HostsFile{Path: filepath.Join(dir, id), Hostname: id}}
		if err := s.writeEndpoint(&a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := s.WriteHosts(context.Background(), "c1", HostsFile{Path: filepath.Join(dir, "c1"), Hostname: "c1"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(filepath.Join(dir, "c1"))
	if err != nil {
		t.Fatal(err)
	}
	rec("app", "c1", "one", "10.1.0.2/24")
	b := rec("app", "c2", "two", "10.1.0.3/24")
	if err := s.refreshHosts(&b, "app", true); err != nil {
		t.Fatal(err)
	}
	read := func(id string) string {
		body, _ := os.ReadFile(filepath.Join(dir, id))
		return string(body)
	}
	if !strings.Contains(read("c1"), "10.1.0.3\ttwo\n") || !strings.Contains(read("c2"), "10.1.0.2\tone\n") || !strings.Contains(read("c2"), "10.1.0.3\tc2 two\n") {
		t.Fatalf("after c2 joined:\nc1:\n%s\nc2:\n%s", read("c1"), read("c2"))
	}
	after, _ := os.Stat(filepath.Join(dir, "c1"))
	if !os.SameFile(before, after) {
		t.Fatal("c1's hosts file was replaced, not written in place: its bind mount would keep the old one")
	}
	// c2 leaves: c1 loses its line; c2's own file, gone, is not made again.
	s.removeEndpoint("app", "c2")
	os.Remove(b.Hosts.Path)
	if err := s.refreshHosts(&b, "app", false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(read("c1"), "two") {
		t.Fatalf("c1 still lists c2:\n%s", read("c1"))
	}
	if _, err := os.Stat(b.Hosts.Path); !os.IsNotExist(err) {
		t.Fatalf("a gone container's hosts file was made again: %v", err)
	}
	// A link where the file should be is refused.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteHosts(context.Background(), "c9", HostsFile{Path: link}); err == nil {
		t.Fatal("WriteHosts wrote through a symlink")
	}
	if _, err := os.Stat(filepath.Join(dir, "target")); !os.IsNotExist(err) {
		t.Fatalf("the link's target was made: %v", err)
	}
}
