package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/log"

	"github.com/berthrt/berth/libcontainer"
)

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

// ReadExit reads what WriteExit recorded; os.ErrNotExist if nothing.
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

// Cleanup removes what a shim that died left of a container: its
// processes (killed), cgroup and state, and the rootfs mounts in its
// bundle. It is `shim delete`, run by containerd in a fresh process. A
// container that is already gone is no error.
func Cleanup(ctx context.Context, root, bundle, id string) error {
	var errs []error
	c, err := libcontainer.Load(root, id)
	switch {
	case err == nil:
		if err := c.Delete(ctx, true, warnLog{ctx}); err != nil {
			errs = append(errs, fmt.Errorf("delete container %s: %w", id, err))
		}
	case errors.Is(err, libcontainer.ErrNotExist):
		log.G(ctx).WithField("id", id).Debug("no container state left to delete")
	default:
		errs = append(errs, fmt.Errorf("load container %s: %w", id, err))
	}
	if err := mount.UnmountRecursive(filepath.Join(bundle, "rootfs"), 0); err != nil {
		errs = append(errs, fmt.Errorf("unmount rootfs of %s: %w", id, err))
	}
	return errors.Join(errs...)
}
