//go:build !cgo

package libcontainer

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A build without cgo has neither nsenter's constructor nor libseccomp, so
// it cannot be a container's init. The shim is built that way (each of its
// starts then skips the C runtime's set-up) and runs init from
// berth-runtime (CreateOpts.InitPath).
const selfInit = false

// Only init plans and loads seccomp; these keep the package building.
type seccompPlan struct{}

func planSeccomp(s *specs.LinuxSeccomp, _ *initConfig) (*seccompPlan, error) {
	if s == nil {
		return nil, nil
	}
	return nil, errors.New("seccomp: this binary was built without cgo (libseccomp); run init from berth-runtime")
}

func (p *seccompPlan) load() error { return nil }
