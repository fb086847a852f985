package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/containerd/continuity/fs"
)

// withRootfs runs fn with container c's root filesystem (its snapshot,
// mounted for fn alone: read-only unless writable, which a running
// container's is not, its own mount being live).
func withRootfs(ctx context.Context, client *containerd.Client, c containerd.Container, writable bool, fn func(root string) error) error {
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	mounts, err := client.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("container %s: its rootfs snapshot: %w", c.ID(), err)
	}
	if writable {
		return mount.WithTempMount(ctx, mounts, fn)
	}
	return mount.WithReadonlyTempMount(ctx, mounts, fn)
}

// Export writes container c's filesystem to w as a tar archive, as
// `docker export` does.
func Export(ctx context.Context, client *containerd.Client, c containerd.Container, w io.Writer) error {
	empty, err := os.MkdirTemp("", "berth-export-")
	if err != nil {
		return fmt.Errorf("export %s: %w", c.ID(), err)
	}
	defer os.Remove(empty)
	return withRootfs(ctx, client, c, false, func(root string) error {
		if err := archive.WriteDiff(ctx, w, empty, root); err != nil {
			return fmt.Errorf("export %s: %w", c.ID(), err)
		}
		return nil
	})
}

// Change is one line of `docker diff`: Kind is A, C or D.
type Change struct {
	Kind string
	Path string
}

// Diff lists the changes in container c's filesystem against its image,
// as `docker diff` does, sorted by path.
func Diff(ctx context.Context, client *containerd.Client, c containerd.Container) ([]Change, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID(), err)
	}
	sn := client.SnapshotService(info.Snapshotter)
	snap, err := sn.Stat(ctx, info.SnapshotKey)
	if err != nil {
		return nil, fmt.Errorf("container %s: its rootfs snapshot: %w", c.ID(), err)
	}
	// The image's view lives in a lease of its own, gone with it.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.ID(), err)
	}
	defer done(context.WithoutCancel(ctx))
	b := make([]byte, 8)
	rand.Read(b)
	key := "berth-diff-" + c.ID() + "-" + hex.EncodeToString(b)
	parent, err := sn.View(ctx, key, snap.Parent)
	if err != nil {
		return nil, fmt.Errorf("diff %s: view its image: %w", c.ID(), err)
	}
	defer sn.Remove(context.WithoutCancel(ctx), key)
	// The mount points berth makes are no change of the container's, as
	// those of docker's init layer are not.
	ours := map[string]bool{"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true}
	var rec stored
	if readStored(info, &rec) == nil {
		for _, m := range mountPoints(rec.HostConfig, rec.Volumes) {
			ours[m.Destination] = true
		}
	}
	var changes []Change
	err = mount.WithReadonlyTempMount(ctx, parent, func(image string) error {
		return withRootfs(ctx, client, c, false, func(root string) error {
			return fs.Changes(ctx, image, root, func(k fs.ChangeKind, path string, _ os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				kind := map[fs.ChangeKind]string{fs.ChangeKindAdd: "A", fs.ChangeKindModify: "C", fs.ChangeKindDelete: "D"}[k]
				if kind != "" && !ours[path] {
					changes = append(changes, Change{Kind: kind, Path: path})
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.ID(), err)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}
