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

// Parse reads the five sets. A name that Berth does not know, or a
// capability this kernel lacks, is left out, as runc does: specs written
// for a newer kernel (CAP_CHECKPOINT_RESTORE on an old one) still run.
// Warnings says what was left out, for the caller to report.
func Parse(c *specs.LinuxCapabilities) (*Set, error) {
	s := &Set{caps: map[capability.CapType][]capability.Cap{}}
	if c == nil {
		return s, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("read the kernel's last capability: %w", err)
	}
	for kind, names := range sets(c) {
		for _, n := range names {
			if cp, ok := lookup(n, last); ok {
				s.caps[kind] = append(s.caps[kind], cp)
			}
		}
	}
	return s, nil
}

// Warnings lists, in runc's words, what of c the process will not get:
// the names left out (unknown, or unavailable on this kernel) and the
// ambient capabilities that cannot be raised because they are not both
// permitted and inheritable (the kernel's rule).
func Warnings(c *specs.LinuxCapabilities) ([]string, error) {
	if c == nil {
		return nil, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("read the kernel's last capability: %w", err)
	}
	var ignored []string
	seen := map[string]bool{}
	for _, names := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, n := range names {
			if _, ok := lookup(n, last); !ok && !seen[n] {
				seen[n] = true
				ignored = append(ignored, n)
			}
		}
	}
	var out []string
	if len(ignored) > 0 {
		out = append(out, fmt.Sprintf("ignoring unknown or unavailable capabilities: %q", ignored))
	}
	has := func(set []string, want capability.Cap) bool {
		for _, n := range set {
			if cp, ok := lookup(n, last); ok && cp == want {
				return true
			}
		}
		return false
	}
	for _, n := range c.Ambient {
		cp, ok := lookup(n, last)
		if ok && (!has(c.Permitted, cp) || !has(c.Inheritable, cp)) {
			out = append(out, fmt.Sprintf("can't raise ambient capability %s: it is not in both the permitted and the inheritable set", n))
		}
	}
	return out, nil
}

func sets(c *specs.LinuxCapabilities) map[capability.CapType][]string {
	return map[capability.CapType][]string{
		capability.BOUNDING:    c.Bounding,
		capability.EFFECTIVE:   c.Effective,
		capability.PERMITTED:   c.Permitted,
		capability.INHERITABLE: c.Inheritable,
		capability.AMBIENT:     c.Ambient,
	}
}

// lookup finds a capability by name (CAP_NET_ADMIN, any case), if this
// kernel has it.
func lookup(name string, last capability.Cap) (capability.Cap, bool) {
	cp, ok := byName[strings.ToUpper(name)]
	return cp, ok && cp <= last
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
