package cni

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
)

// portmap only writes DNAT rules: it neither sees a host port that a
// process or another container already has, nor picks a free one for
// `-p CONTAINERPORT`. Berth does both here, under the store's lock, before
// the plugins run, so that a taken port fails the attach with nothing set
// up, as docker's "port is already allocated" does.

// PortInUseError is the refusal of a host port that is taken.
type PortInUseError struct {
	Port PortMapping
	By   string // a container's name or id, or "a process on the host"
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("bind for %s failed: port is already allocated (by %s): publish another host port",
		hostAddr(e.Port), e.By)
}

func (e *PortInUseError) Unwrap() error { return errdefs.ErrConflict }

// BoundIP is the host address the port is published on: HostIP, or
// "0.0.0.0" for all of them, as docker shows it.
func (p PortMapping) BoundIP() string {
	if p.HostIP == "" {
		return "0.0.0.0"
	}
	return p.HostIP
}

// HostAddress is the mapping's host side, "IP:PORT", as docker writes it.
func (p PortMapping) HostAddress() string {
	return net.JoinHostPort(p.BoundIP(), strconv.Itoa(int(p.HostPort)))
}

// hostAddr is the host side with its protocol, for errors.
func hostAddr(p PortMapping) string { return p.HostAddress() + "/" + p.Protocol }

// clash says whether two mappings want the same host port.
func clash(a, b PortMapping) bool {
	wildcard := func(ip string) bool { return ip == "" || ip == "0.0.0.0" }
	return a.Protocol == b.Protocol && a.HostPort == b.HostPort &&
		(a.HostIP == b.HostIP || wildcard(a.HostIP) || wildcard(b.HostIP))
}

// recordWithPorts records a, whose ports must be free, under the lock: the
// next attach then sees them taken. Host port 0 gets a free port.
func (s *Store) recordWithPorts(a *Attachment) error {
	if len(a.Ports) == 0 {
		return s.writeEndpoint(a)
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	taken, err := s.publishedPorts()
	if err != nil {
		return err
	}
	for i := range a.Ports {
		p := &a.Ports[i]
		if p.HostPort == 0 {
			if err := pickHostPort(p, taken); err != nil {
				return err
			}
		} else if err := checkHostPort(*p, taken); err != nil {
			return err
		}
		taken = append(taken, publishedPort{PortMapping: *p, by: a.ContainerName + " (twice)"})
	}
	return s.writeEndpoint(a)
}

type publishedPort struct {
	PortMapping
	by string
}

// publishedPorts lists the ports of every recorded endpoint.
func (s *Store) publishedPorts() ([]publishedPort, error) {
	paths, err := filepath.Glob(filepath.Join(s.endpointDir(), "*"))
	if err != nil {
		return nil, err
	}
	var out []publishedPort
	for _, p := range paths {
		eps, err := s.endpoints(filepath.Base(p))
		if err != nil {
			return nil, err
		}
		for id, a := range eps {
			by := a.ContainerName
			if by == "" {
				by = id
			}
			for _, pm := range a.Ports {
				out = append(out, publishedPort{PortMapping: pm, by: by})
			}
		}
	}
	return out, nil
}

// checkHostPort refuses p when a container publishes it or a process on
// the host has it bound.
func checkHostPort(p PortMapping, taken []publishedPort) error {
	for _, t := range taken {
		if clash(p, t.PortMapping) {
			return &PortInUseError{Port: p, By: t.by}
		}
	}
	closer, _, err := bindHostPort(p)
	if err != nil {
		if errors.Is(err, os.ErrInvalid) {
			return err
		}
		return &PortInUseError{Port: p, By: "a process on the host"}
	}
	closer()
	return nil
}

// pickHostPort gives p a free host port from the kernel's ephemeral range,
// one no container publishes either.
func pickHostPort(p *PortMapping, taken []publishedPort) error {
	for range 20 {
		q := *p
		closer, port, err := bindHostPort(q)
		if err != nil {
			return fmt.Errorf("publish %s: %w", hostAddr(q), err)
		}
		closer()
		q.HostPort = port
		if checkHostPort(q, taken) == nil {
			*p = q
			return nil
		}
	}
	return fmt.Errorf("publish %s: %w: no free host port found", hostAddr(*p), errdefs.ErrUnavailable)
}

// bindHostPort binds p's host address and port (0: any), to see that it
// is free, and returns the port bound.
func bindHostPort(p PortMapping) (closer func(), port uint16, err error) {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(int(p.HostPort)))
	switch p.Protocol {
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return nil, 0, err
		}
		return func() { l.Close() }, uint16(l.Addr().(*net.TCPAddr).Port), nil
	case "udp":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, 0, err
		}
		return func() { c.Close() }, uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	return nil, 0, fmt.Errorf("publish %s: protocol %q: %w: want tcp or udp", addr, p.Protocol, os.ErrInvalid)
}
