package cni

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
)

// ReleaseNetwork takes down what a network has on the host (its bridge, berth's
// rules for it) and keeps its configuration: for the predefined bridge
// network, which cannot be removed, when berth's mark on the host must go
// (a test's end, an uninstall). The next attach sets it up again. It is
// refused while a container is attached.
func (s *Store) ReleaseNetwork(ctx context.Context, ref string) error {
	n, err := s.find(ref)
	if err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	eps, err := s.endpoints(n.Name)
	if err != nil {
		return err
	}
	if len(eps) > 0 {
		return fmt.Errorf("release network %s: %w: %d containers are attached", n.Name, errdefs.ErrFailedPrecondition, len(eps))
	}
	return s.host.teardown(&n)
}
