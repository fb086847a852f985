package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
)

// InUseError is the refusal to remove a network containers are on.
type InUseError struct {
	Name       string
	ID         string
	Containers []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("error while removing network: network %s id %s has active endpoints (containers: %s): remove them or disconnect them first",
		e.Name, e.ID[:12], strings.Join(e.Containers, ", "))
}

func (e *InUseError) Unwrap() error { return errdefs.ErrConflict }

// Remove removes the network called (or with the id) ref, and what it has
// on the host, unless a container is on it: one whose labels name it, or
// one still attached.
func (s *Store) Remove(ctx context.Context, ref string, users Users) error {
	n, err := s.find(ref)
	if err != nil {
		return err
	}
	if n.Predefined() {
		return fmt.Errorf("remove network %s: %w: %s is a pre-defined network and cannot be removed", n.Name, errdefs.ErrPermissionDenied, n.Name)
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	inUse, err := s.users(ctx, users)
	if err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	if cs := inUse[n.Name]; len(cs) > 0 {
		return &InUseError{Name: n.Name, ID: n.ID, Containers: cs}
	}
	return s.remove(&n)
}

// users merges the containers the labels name with those still attached.
func (s *Store) users(ctx context.Context, users Users) (map[string][]string, error) {
	inUse, err := users.NetworkUsers(ctx)
	if err != nil {
		return nil, err
	}
	dirs, err := os.ReadDir(s.endpointDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, d := range dirs {
		eps, err := s.endpoints(d.Name())
		if err != nil {
			return nil, err
		}
		for id, a := range eps {
			name := a.ContainerName
			if name == "" {
				name = id
			}
			if !contains(inUse[d.Name()], name) {
				inUse[d.Name()] = append(inUse[d.Name()], name)
			}
		}
	}
	for _, cs := range inUse {
		sort.Strings(cs)
	}
	return inUse, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// remove tears down what n has on the host, then its state and conflist:
// a teardown that fails leaves the network to be removed again.
func (s *Store) remove(n *Network) error {
	if err := s.host.teardown(n); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	if err := s.forgetRules(n); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	for _, dir := range []string{filepath.Join(s.ipamDir(), n.Name), filepath.Join(s.endpointDir(), n.Name)} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
	}
	if err := os.Remove(s.confPath(n.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	return nil
}

// PruneOptions are `network prune`'s.
type PruneOptions struct {
	// Labels keeps only networks with every label (KEY or KEY=VALUE).
	Labels []string
}

// Prune removes the networks no container is on (never the predefined
// ones) and returns their names.
func (s *Store) Prune(ctx context.Context, o PruneOptions, users Users) ([]string, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	nets, err := s.load()
	if err != nil {
		return nil, err
	}
	inUse, err := s.users(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("prune networks: %w", err)
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	var deleted []string
	for i := range nets {
		n := &nets[i]
		if n.Predefined() || len(inUse[n.Name]) > 0 || !hasLabels(n, o.Labels) {
			continue
		}
		if err := s.remove(n); err != nil {
			return deleted, err
		}
		deleted = append(deleted, n.Name)
	}
	return deleted, nil
}

// hasLabels says whether n has every label of want (KEY or KEY=VALUE).
func hasLabels(n *Network, want []string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := n.Labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
