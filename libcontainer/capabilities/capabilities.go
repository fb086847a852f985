// Package capabilities turns the spec's five capability sets into the
// calling thread's credentials. The bounding set is dropped while the process
// still runs as root (dropping needs CAP_SETPCAP); the other sets are applied
// after the switch to the container user, on the thread that then calls exec.
package capabilities

import (
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Set is a parsed, validated capability configuration.
type Set struct {
	caps map[capability.CapType][]capability.Cap
}

var byName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

// Parse validates every name. A name unknown to Berth is an error (a typo
// must not silently grant or drop nothing); a known capability that this
// kernel lacks is left out, as runc does.
func Parse(c *specs.LinuxCapabilities) (*Set, error) {
	s := &Set{caps: map[capability.CapType][]capability.Cap{}}
	if c == nil {
		return s, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("read the kernel's last capability: %w", err)
	}
	for kind, names := range map[capability.CapType][]string{
		capability.BOUNDING:    c.Bounding,
		capability.EFFECTIVE:   c.Effective,
		capability.PERMITTED:   c.Permitted,
		capability.INHERITABLE: c.Inheritable,
		capability.AMBIENT:     c.Ambient,
	} {
		for _, n := range names {
			cp, ok := byName[strings.ToUpper(n)]
			if !ok {
				return nil, fmt.Errorf("unknown capability %q in process.capabilities (names look like CAP_NET_ADMIN)", n)
			}
			if cp <= last {
				s.caps[kind] = append(s.caps[kind], cp)
			}
		}
	}
	return s, nil
}

// DropBounding removes everything not listed from the bounding set.
func (s *Set) DropBounding() error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	c.Clear(capability.BOUNDING)
	c.Set(capability.BOUNDING, s.caps[capability.BOUNDING]...)
	if err := c.Apply(capability.BOUNDING); err != nil {
		return fmt.Errorf("drop bounding capabilities: %w", err)
	}
	return nil
}

// Apply sets the effective, permitted, inheritable and ambient sets of the
// calling thread. Call it on the locked thread that will exec. The ambient
// set is cleared first whatever the spec says: it must not keep anything
// the runtime itself had.
func (s *Set) Apply() error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	c.Clear(capability.CAPS)
	for _, kind := range []capability.CapType{capability.EFFECTIVE, capability.PERMITTED, capability.INHERITABLE} {
		c.Set(kind, s.caps[kind]...)
	}
	if err := c.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	if err := capability.ResetAmbient(); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	// An ambient capability must also be permitted and inheritable; runc
	// ignores the ones that are not (bundles from `runc spec` list ambient
	// ones alone), and so do we, rather than refuse the container.
	for _, cp := range s.caps[capability.AMBIENT] {
		capability.SetAmbient(true, cp)
	}
	return nil
}
