package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/log"

	"github.com/berthrt/berth/libcontainer"
)

// stdioDir keeps, in the bundle, the client's stdio of each live process
// (init.json, exec-<id>.json). A client removes its fifos when it deletes
// the task or exec; after the shim died it cannot (the delete fails as
// not found), so `shim delete` removes them.
const stdioDir = "berth-stdio"

func stdioRecord(bundle, execID string) string {
	name := "init.json"
	if execID != "" {
		name = "exec-" + execID + ".json"
	}
	return filepath.Join(bundle, stdioDir, name)
}

// recordStdio keeps a process's stdio in the bundle (execID "" is the
// init).
func recordStdio(bundle, execID string, s Stdio) error {
	if s.IsNull() {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("record stdio: %w", err)
	}
	path := stdioRecord(bundle, execID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("record stdio: %w", err)
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("record stdio: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("record stdio: %w", err)
	}
	return nil
}

// forgetStdio drops the record of a process the client deleted.
func forgetStdio(bundle, execID string) { os.Remove(stdioRecord(bundle, execID)) }

// removeFifos removes the client fifos recorded in the bundle. Only
// named pipes go: a plain file, a file:// log or a binary:// driver's
// path is the client's to keep.
func removeFifos(ctx context.Context, bundle string) {
	records, _ := filepath.Glob(filepath.Join(bundle, stdioDir, "*.json"))
	for _, rec := range records {
		b, err := os.ReadFile(rec)
		if err != nil {
			continue
		}
		var s Stdio
		if err := json.Unmarshal(b, &s); err != nil {
			log.G(ctx).WithError(err).WithField("record", rec).Warn("read the stdio record")
			continue
		}
		for _, p := range []string{s.Stdin, s.Stdout, s.Stderr} {
			if u, err := url.Parse(p); err == nil && u.Scheme != "" {
				if u.Scheme != "fifo" {
					continue
				}
				p = u.Path
			}
			if fi, err := os.Lstat(p); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
				continue
			}
			if err := os.Remove(p); err != nil {
				log.G(ctx).WithError(err).WithField("fifo", p).Warn("remove the fifo of a process whose shim died")
			}
		}
	}
}

// Cleanup removes what a shim that died left of a container: its
// processes (killed), cgroup and state, the rootfs mounts in its bundle
// and its processes' fifos. It is `shim delete`, run by containerd in a
// fresh process. A container that is already gone is no error.
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
	removeFifos(ctx, bundle)
	return errors.Join(errs...)
}
