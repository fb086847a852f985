package containers

import (
	"context"
	"errors"
	"fmt"
	"os"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/restart"
	"github.com/berthrt/berth/volumes"
)

// RemoveOptions say how to remove a container.
type RemoveOptions struct {
	// Force kills a running container first (rm -f).
	Force    bool
	DataRoot string
	// Volumes removes the container's anonymous volumes too (rm -v, run
	// --rm); named volumes stay, as docker keeps them.
	Volumes bool
}

// ErrRunning is wrapped by Remove's error for a running container
// without Force.
var ErrRunning = errors.New("container is running")

// Remove removes container id as `docker rm` does: its task (a running one
// only with Force), the container, its rootfs snapshot and berth's files
// for it.
func Remove(ctx context.Context, client *containerd.Client, id string, opts RemoveOptions) error {
	c, err := client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("load container %s: %w", id, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		st, err := task.Status(ctx)
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: %w", id, err)
		}
		if st.Status != containerd.Stopped && st.Status != containerd.Created && !opts.Force {
			return kindError{msg: fmt.Sprintf("cannot remove container %q: container is %s: stop the container before removing or force remove with -f",
				info.Labels[LabelName], st.Status), kind: ErrRunning}
		}
		if st.Status != containerd.Stopped && st.Status != containerd.Created {
			// The monitor must not restart what rm -f is killing.
			if err := restart.MarkStoppedByUser(ctx, c); err != nil {
				return err
			}
		}
		if st.Status == containerd.Paused {
			// A frozen process would not die of the kill until thawed.
			if err := task.Resume(ctx); err != nil {
				return fmt.Errorf("container %s: resume it to remove it: %w", id, err)
			}
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: delete its task: %w", id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: %w", id, err)
	}
	var rec stored
	haveRec := readStored(info, &rec) == nil
	if plan, err := cni.ReadPlan(info); err != nil {
		return err
	} else if plan != nil {
		// Its task is gone: whatever of its networks an exit no one
		// handled left behind goes now.
		if err := plan.Remove(ctx, id); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if opts.DataRoot != "" {
		if err := os.RemoveAll(containerDir(opts.DataRoot, id)); err != nil {
			return fmt.Errorf("container %s: remove its files: %w", id, err)
		}
		if opts.Volumes && haveRec {
			if err := removeAnonymousVolumes(ctx, client, volumes.NewStore(opts.DataRoot), rec.Volumes); err != nil {
				return fmt.Errorf("container %s: %w", id, err)
			}
		}
	}
	return nil
}
