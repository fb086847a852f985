// Package record keeps, in a container's bundle, what a later process must
// find after the shim that knew it has gone: the init's exit, whether the
// shim deleted the container itself, and the shim group the container was
// given. `shim delete` and `shim start` read them, also in the small
// binary containerd runs for those calls (shim/bootstrap), so this package
// imports nothing that is slow to load.
package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/berthrt/berth/shim/reaper"
)

// Exit is how a process ended.
type Exit = reaper.Exit

// exitFile keeps the init's exit in the bundle: if the shim dies after
// the exit, `shim delete` still reports the real status.
const exitFile = "berth-exit.json"

// WriteExit records the init's exit in the bundle.
func WriteExit(bundle string, e Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("record exit: %w", err)
	}
	tmp := filepath.Join(bundle, exitFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record exit: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(bundle, exitFile)); err != nil {
		return fmt.Errorf("record exit: %w", err)
	}
	return nil
}

// ReadExit returns the exit WriteExit recorded in the bundle.
func ReadExit(bundle string) (Exit, error) {
	var e Exit
	b, err := os.ReadFile(filepath.Join(bundle, exitFile))
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("read recorded exit: %w", err)
	}
	return e, nil
}

// deletedFile marks a bundle whose container the shim itself deleted
// (process, cgroup, state, mounts, stdio and shim slot all gone): `shim
// delete`, which containerd runs after every task, then has nothing to
// clean and only reports the exit.
const deletedFile = "berth-deleted"

// MarkDeleted records that the shim deleted the bundle's container.
func MarkDeleted(bundle string) error {
	if err := os.WriteFile(filepath.Join(bundle, deletedFile), nil, 0o600); err != nil {
		return fmt.Errorf("record delete: %w", err)
	}
	return nil
}

// WasDeleted reports whether MarkDeleted was called for the bundle.
func WasDeleted(bundle string) bool {
	_, err := os.Stat(filepath.Join(bundle, deletedFile))
	return err == nil
}

// DeletedExit is the exit to report for a container the shim deleted
// itself; ok is false when `shim delete` has more to do than report.
func DeletedExit(bundle string) (e Exit, ok bool) {
	if !WasDeleted(bundle) {
		return e, false
	}
	e, err := ReadExit(bundle)
	return e, err == nil
}

// groupAnnotations put containers in one shim process: runc's group label
// and the CRI sandbox id (a pod's containers share their sandbox's shim).
// The first one set wins.
var groupAnnotations = []string{
	"io.containerd.runc.v2.group",
	"io.kubernetes.cri.sandbox-id",
}

// GroupOf reads the grouping annotation from the bundle's config.json;
// without one, the group is the container's id and annotated is false.
func GroupOf(bundle, id string) (group string, annotated bool, err error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", false, fmt.Errorf("read the bundle's config: %w", err)
	}
	// The usual case, a container without one, is told without decoding
	// the spec (every shim start runs this).
	if !slices.ContainsFunc(groupAnnotations, func(a string) bool { return bytes.Contains(b, []byte(a)) }) {
		return id, false, nil
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", false, fmt.Errorf("read the bundle's config: %w", err)
	}
	for _, a := range groupAnnotations {
		if g, ok := spec.Annotations[a]; ok && g != "" {
			return g, true, nil
		}
	}
	return id, false, nil
}

// groupFile, in a bundle, names the shim group the container was given.
const groupFile = "berth-shim-group"

// WriteGroup records the shim group `shim start` gave the bundle's
// container: `shim delete` finds the group here, also for a packed
// container (shim/pack), whose group no annotation names.
func WriteGroup(bundle, group string) error {
	if err := os.WriteFile(filepath.Join(bundle, groupFile), []byte(group), 0o644); err != nil {
		return fmt.Errorf("record the shim group: %w", err)
	}
	return nil
}

// Group is the shim group the container in bundle was given.
func Group(bundle, id string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(bundle, groupFile)); err == nil {
		return string(b), nil
	}
	group, _, err := GroupOf(bundle, id)
	return group, err
}

// packFile, in a bundle, names the shared shims' state (shim/pack) the
// container was packed into: its path depends on the runtime options
// that `shim start` was given, which `shim delete` is not.
const packFile = "berth-shim-pack"

// WritePack records the shared shims' state the bundle's container was
// packed into.
func WritePack(bundle, dir string) error {
	if err := os.WriteFile(filepath.Join(bundle, packFile), []byte(dir), 0o644); err != nil {
		return fmt.Errorf("record the shared shim: %w", err)
	}
	return nil
}

// Pack is the shared shims' state the container in bundle was packed
// into; ok is false when it was not packed.
func Pack(bundle string) (dir string, ok bool) {
	b, err := os.ReadFile(filepath.Join(bundle, packFile))
	return string(b), err == nil && len(b) > 0
}
