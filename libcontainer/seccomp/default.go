package seccomp

import (
	"fmt"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultProfile returns Docker's default profile (github.com/moby/profiles/seccomp,
// the version go.mod pins) for this machine's architecture and kernel,
// with the rules that depend on capabilities resolved for caps: the
// container's bounding set, which is what Docker resolves them against.
// For example mount, unshare and setns are allowed only with CAP_SYS_ADMIN.
func DefaultProfile(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{
		Capabilities: &specs.LinuxCapabilities{Bounding: slices.Clone(caps)},
	}}
	p, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("build Docker's default seccomp profile: %w", err)
	}
	return p, nil
}
