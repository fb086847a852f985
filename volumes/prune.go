package volumes

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
)

// Filter is `volume ls --filter` and `volume prune --filter`: every key
// given must match (docker's rule: values of one key are alternatives).
type Filter map[string][]string

// ParseFilters reads docker's KEY=VALUE filter arguments.
func ParseFilters(args []string, allowed ...string) (Filter, error) {
	f := Filter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad filter %q: %w: want KEY=VALUE", a, errdefs.ErrInvalidArgument)
		}
		known := false
		for _, al := range allowed {
			known = known || al == k
		}
		if !known {
			return nil, fmt.Errorf("invalid filter %q: %w: the filters are %s", k, errdefs.ErrInvalidArgument, strings.Join(allowed, ", "))
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// Match says whether v passes the filter; inUse is whether a container
// uses it (for dangling).
func (f Filter) Match(v Volume, inUse bool) (bool, error) {
	for key, values := range f {
		ok := false
		for _, want := range values {
			m, err := matchOne(key, want, v, inUse)
			if err != nil {
				return false, err
			}
			ok = ok || m
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func matchOne(key, want string, v Volume, inUse bool) (bool, error) {
	switch key {
	case "name":
		return strings.Contains(v.Name, want), nil
	case "driver":
		return v.Driver == want, nil
	case "label":
		k, val, hasValue := strings.Cut(want, "=")
		got, ok := v.Labels[k]
		return ok && (!hasValue || got == val), nil
	case "dangling":
		switch want {
		case "true", "1":
			return !inUse, nil
		case "false", "0":
			return inUse, nil
		}
		return false, fmt.Errorf("invalid filter dangling=%q: %w: want true or false", want, errdefs.ErrInvalidArgument)
	}
	return false, fmt.Errorf("invalid filter %q: %w", key, errdefs.ErrInvalidArgument)
}

// ListOptions are `volume ls`'s.
type ListOptions struct {
	Filter Filter
}

// ListFiltered returns the volumes that pass the filter.
func (s *Store) ListFiltered(ctx context.Context, o ListOptions, users Users) ([]Volume, error) {
	vols, err := s.List()
	if err != nil || len(o.Filter) == 0 {
		return vols, err
	}
	inUse, err := users.VolumeUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, v := range vols {
		ok, err := o.Filter.Match(v, len(inUse[v.Name]) > 0)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// PruneOptions are `volume prune`'s.
type PruneOptions struct {
	// All prunes named volumes too; without it only anonymous ones go,
	// as with docker since API 1.42.
	All    bool
	Filter Filter
}

// PruneReport is what `volume prune` prints.
type PruneReport struct {
	Deleted        []string
	SpaceReclaimed uint64
}

// Prune removes the volumes no container uses.
func (s *Store) Prune(ctx context.Context, o PruneOptions, users Users) (PruneReport, error) {
	var rep PruneReport
	vols, err := s.List()
	if err != nil {
		return rep, err
	}
	inUse, err := users.VolumeUsers(ctx)
	if err != nil {
		return rep, fmt.Errorf("prune volumes: %w", err)
	}
	for _, v := range vols {
		if len(inUse[v.Name]) > 0 || (!o.All && !v.Anonymous()) {
			continue
		}
		if ok, err := o.Filter.Match(v, false); err != nil || !ok {
			if err != nil {
				return rep, err
			}
			continue
		}
		usage, err := fs.DiskUsage(ctx, v.Mountpoint)
		if err != nil {
			return rep, fmt.Errorf("prune volume %s: size: %w", v.Name, err)
		}
		if err := s.remove(v.Name); err != nil {
			return rep, err
		}
		rep.Deleted = append(rep.Deleted, v.Name)
		rep.SpaceReclaimed += uint64(usage.Size)
	}
	return rep, nil
}
