package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// HostsFile is a container's /etc/hosts, which the store keeps current:
// containers on a user network find each other by name and alias in it,
// also those started, connected or gone later.
type HostsFile struct {
	// Path is the container's hosts file on the host, bind-mounted as its
	// /etc/hosts; "" for none.
	Path string `json:"path,omitempty"`
	// Hostname is the container's hostname: its own line for each of its
	// addresses.
	Hostname string `json:"hostname,omitempty"`
	// Extra are the --add-host lines, already in hosts format "IP\tNAME".
	Extra []string `json:"extra,omitempty"`
}

// LocalhostLines begin every container's hosts file.
const LocalhostLines = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// hostsEntry is one container's part of the hosts files of others.
type hostsEntry struct {
	self  []Attachment            // the container's attachments, by network
	peers map[string][]Attachment // the others on each of its networks
}

// renderHosts is a container's hosts file: localhost, the --add-host
// lines, its own addresses with its hostname and name, and, on user
// networks (the default network has no names, as docker's), a line per
// other container: "IP\tNAME ALIAS…".
func renderHosts(h HostsFile, e hostsEntry) []byte {
	var b bytes.Buffer
	b.WriteString(LocalhostLines)
	for _, x := range h.Extra {
		b.WriteString(x + "\n")
	}
	var name string
	if len(e.self) > 0 {
		name = e.self[0].ContainerName
	}
	own := namesLine(h.Hostname, name)
	seen := map[string]bool{}
	for _, a := range e.self {
		if ip := a.IP.Addr(); a.IP.IsValid() && own != "" && !seen[ip.String()] {
			seen[ip.String()] = true
			fmt.Fprintf(&b, "%s\t%s\n", ip, own)
		}
	}
	for _, a := range e.self {
		if a.Network == DefaultNetwork {
			continue
		}
		for _, p := range e.peers[a.Network] {
			if names := namesLine(append([]string{p.ContainerName}, p.Aliases...)...); p.IP.IsValid() && names != "" {
				fmt.Fprintf(&b, "%s\t%s\n", p.IP.Addr(), names)
			}
		}
	}
	return b.Bytes()
}

// namesLine joins the names that are set, each once.
func namesLine(names ...string) string {
	var out []string
	for _, n := range names {
		if n != "" && !contains(out, n) {
			out = append(out, n)
		}
	}
	return strings.Join(out, " ")
}

// WriteHosts writes the hosts file h.Path of the container, created if
// missing, from h and the container's attachments: call it before the
// container starts, so that there is a file to bind-mount as its
// /etc/hosts (also for --net none, host or container:, which have no
// attachment). Attach, Detach and DetachStale keep it current after that
// from the HostsFile given in AttachOptions; WriteHosts is needed again
// only when h changes.
func (s *Store) WriteHosts(ctx context.Context, containerID string, h HostsFile) error {
	if h.Path == "" {
		return nil
	}
	// On no network: the container's own file alone.
	return s.refreshHosts(&Attachment{ContainerID: containerID, Hosts: h}, "", true)
}

// refreshHosts rewrites, after a's container joined or left network, the
// hosts file of that container (created if create) and of every other
// container on network: the only ones whose view changed. The default
// network has no names: there only the container's own. An error writing
// another container's file (its container gone meanwhile, say) does not
// fail the change: that container keeps its older file.
func (s *Store) refreshHosts(a *Attachment, network string, create bool) error {
	if network == DefaultNetwork && a.Hosts.Path == "" {
		return nil
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := s.allEndpoints()
	if err != nil {
		return fmt.Errorf("hosts files of network %s: %w", network, err)
	}
	if network != DefaultNetwork {
		for id, p := range all[network] {
			if id != a.ContainerID && p.Hosts.Path != "" {
				writeHostsFile(p.Hosts.Path, renderHosts(p.Hosts, hostsOf(all, id)), false)
			}
		}
	}
	if a.Hosts.Path == "" {
		return nil
	}
	return writeHostsFile(a.Hosts.Path, renderHosts(a.Hosts, hostsOf(all, a.ContainerID)), create)
}

// allEndpoints returns every network's attachments, by container id.
func (s *Store) allEndpoints() (map[string]map[string]Attachment, error) {
	dirs, err := os.ReadDir(s.endpointDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	all := map[string]map[string]Attachment{}
	for _, d := range dirs {
		eps, err := s.endpoints(d.Name())
		if err != nil {
			return nil, err
		}
		all[d.Name()] = eps
	}
	return all, nil
}

// hostsOf picks the container's attachments and its peers' out of all,
// in a stable order.
func hostsOf(all map[string]map[string]Attachment, containerID string) hostsEntry {
	e := hostsEntry{peers: map[string][]Attachment{}}
	var nets []string
	for n := range all {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	for _, n := range nets {
		a, ok := all[n][containerID]
		if !ok {
			continue
		}
		e.self = append(e.self, a)
		for id, p := range all[n] {
			if id != containerID {
				e.peers[n] = append(e.peers[n], p)
			}
		}
		sort.Slice(e.peers[n], func(i, j int) bool {
			pi, pj := e.peers[n][i], e.peers[n][j]
			return pi.ContainerName < pj.ContainerName || pi.ContainerName == pj.ContainerName && pi.ContainerID < pj.ContainerID
		})
	}
	return e
}

// writeHostsFile writes body to path in place: the file is the source of
// the container's bind mount, and a rename would leave the container with
// the old one. A link at path is refused (O_NOFOLLOW), so that a
// container cannot aim the write elsewhere; a file that is gone is left
// so unless create.
func writeHostsFile(path string, body []byte, create bool) error {
	flags := os.O_WRONLY | os.O_TRUNC | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write hosts file %s: %w", path, err)
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write hosts file %s: %w", path, err)
	}
	return nil
}
