// Package volumes is the volume noun: docker's "local" volumes, kept by
// berth itself under <DataRoot>/volumes. containerd has no volumes, so the
// store is ours: one directory per volume holding _data (what containers
// mount) and volume.json (its record). It knows nothing of containers;
// which volumes are in use is asked of a Users the caller gives.
package volumes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/containerd/errdefs"
)

// AnonymousLabel marks a volume made for one container (`-v /path`, an
// image's VOLUME): docker's label, so that `volume prune` without -a
// removes only those, as docker's does.
const AnonymousLabel = "com.docker.volume.anonymous"

// Volume is a volume in the shape of docker's `volume inspect`.
type Volume struct {
	CreatedAt  string            `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

// Anonymous says the volume was made for one container.
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// Users says which containers use which volumes: volume name → ids.
type Users interface {
	VolumeUsers(ctx context.Context) (map[string][]string, error)
}

// Store is the volumes under one root.
type Store struct {
	root string
}

// NewStore returns the store of the volumes under <dataRoot>/volumes.
func NewStore(dataRoot string) *Store {
	return &Store{root: filepath.Join(dataRoot, "volumes")}
}

const (
	recordFile = "volume.json"
	dataDir    = "_data"
)

// validName is docker's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CreateOptions are `volume create`'s.
type CreateOptions struct {
	// Name of the volume; empty makes an anonymous volume with a random
	// 64-hex name.
	Name    string
	Driver  string
	Labels  map[string]string
	Options map[string]string
}

// Create makes a volume, or returns the one of that name already there
// (as docker does: creating a volume is idempotent). The second result
// says whether it was made now.
func (s *Store) Create(ctx context.Context, o CreateOptions) (Volume, bool, error) {
	if o.Driver != "" && o.Driver != "local" {
		return Volume{}, false, fmt.Errorf("create volume: driver %q: %w: berth has only the \"local\" driver", o.Driver, errdefs.ErrInvalidArgument)
	}
	// local's options mount a device (type=, device=, o=); berth does not
	// mount volumes from devices yet, and ignoring them would hand the
	// user an empty directory where they asked for their disk.
	if len(o.Options) > 0 {
		return Volume{}, false, fmt.Errorf("create volume: driver options (-o) are not supported: %w: leave them out to get a directory volume", errdefs.ErrNotImplemented)
	}
	labels := o.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	name := o.Name
	if name == "" {
		name = randomName()
		labels[AnonymousLabel] = ""
	} else if !validName.MatchString(name) {
		return Volume{}, false, fmt.Errorf("create volume %q: %w: a name is 2 or more of [a-zA-Z0-9_.-], starting with a letter or digit", name, errdefs.ErrInvalidArgument)
	}
	if v, err := s.Get(name); err == nil {
		return v, false, nil
	} else if !errdefs.IsNotFound(err) {
		return Volume{}, false, err
	}
	if err := os.MkdirAll(s.root, 0o701); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	// Made whole in a temporary directory, then renamed into place: a
	// reader never sees half a volume, and of two creates of one name,
	// the rename of the second fails and it returns the first's.
	tmp, err := os.MkdirTemp(s.root, ".new-")
	if err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	v := Volume{
		CreatedAt:  time.Now().UTC().Format(time.RFC3339),
		Driver:     "local",
		Labels:     labels,
		Mountpoint: filepath.Join(s.root, name, dataDir),
		Name:       name,
		Options:    map[string]string{},
		Scope:      "local",
	}
	if err := os.Chmod(tmp, 0o701); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	rec, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return Volume{}, false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, recordFile), rec, 0o600); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.root, name)); err != nil {
		if existing, gerr := s.Get(name); gerr == nil {
			return existing, false, nil
		}
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, true, nil
}

func randomName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Get returns the volume called name.
func (s *Store) Get(name string) (Volume, error) {
	if !validName.MatchString(name) {
		return Volume{}, fmt.Errorf("get %s: %w: no such volume", name, errdefs.ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.root, name, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return Volume{}, fmt.Errorf("get %s: %w: no such volume", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("get volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return Volume{}, fmt.Errorf("get volume %s: %s: %w", name, filepath.Join(s.root, name, recordFile), err)
	}
	// The record is written once; where the data lives follows the store,
	// so a data root moved with its volumes keeps working.
	v.Mountpoint = filepath.Join(s.root, name, dataDir)
	return v, nil
}

// List returns every volume, by name.
func (s *Store) List() ([]Volume, error) {
	entries, err := os.ReadDir(s.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var vols []Volume
	for _, e := range entries {
		if !e.IsDir() || !validName.MatchString(e.Name()) {
			continue // .new-* and .rm-* are creates and removes under way
		}
		v, err := s.Get(e.Name())
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	return vols, nil
}

// InUseError is the refusal to remove a volume containers use.
type InUseError struct {
	Name       string
	Containers []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("remove %s: volume is in use - %v: remove those containers first (berth rm)", e.Name, e.Containers)
}

func (e *InUseError) Unwrap() error { return errdefs.ErrConflict }

// Remove removes the volume called name unless a container uses it.
func (s *Store) Remove(ctx context.Context, name string, users Users) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	inUse, err := users.VolumeUsers(ctx)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if ids := inUse[name]; len(ids) > 0 {
		return &InUseError{Name: name, Containers: ids}
	}
	return s.remove(name)
}

// remove renames the volume out of sight first, so that a volume is
// either whole or gone, even if the removal of its data is interrupted.
func (s *Store) remove(name string) error {
	gone, err := os.MkdirTemp(s.root, ".rm-")
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	target := filepath.Join(gone, name)
	if err := os.Rename(filepath.Join(s.root, name), target); err != nil {
		os.Remove(gone)
		if errors.Is(err, os.ErrNotExist) {
			// Removed meanwhile by another (run --rm and the restart
			// monitor both remove a --rm container's volumes).
			return fmt.Errorf("remove volume %s: %w: no such volume", name, errdefs.ErrNotFound)
		}
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: its data in %s: %w", name, target, err)
	}
	return nil
}
