package images

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions are `commit`'s flags.
type CommitOptions struct {
	// Name is REPOSITORY[:TAG]; empty leaves the image untagged.
	Name    string
	Message string   // -m: the history entry's comment
	Author  string   // -a
	Changes []string // -c: Dockerfile instructions applied to the config
	// NoPause leaves a running container running while its changes are
	// read (-p=false); by default it is paused, as docker does.
	NoPause bool
}

// Commit makes an image from a container's changes, as `docker commit`
// does: the diff of its rootfs snapshot against its image's becomes a new
// layer on top of the image's, with a config that adds that layer and a
// history entry. The caller finds c (containers.Resolve: package
// containers builds on this one). It returns the new image's ID.
func Commit(ctx context.Context, client *containerd.Client, c containerd.Container, opts CommitOptions) (digest.Digest, error) {
	name, err := optionalName(opts.Name)
	if err != nil {
		return "", err
	}
	container := c.ID()
	info, err := c.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", container, err)
	}
	if info.SnapshotKey == "" || info.Image == "" {
		return "", fmt.Errorf("commit %s: the container has no image and rootfs snapshot to commit", container)
	}
	base, err := client.ImageService().Get(ctx, info.Image)
	if err != nil {
		return "", fmt.Errorf("commit %s: its image %s: %w", container, familiar(info.Image), err)
	}
	cs := client.ContentStore()
	manifest, err := images.Manifest(ctx, cs, base.Target, platform())
	if err != nil {
		return "", fmt.Errorf("commit %s: manifest of %s: %w", container, familiar(info.Image), err)
	}
	cfg, err := readConfig(ctx, cs, base.Target)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", container, err)
	}
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", container, err)
	}
	defer done(context.WithoutCancel(ctx))

	if !opts.NoPause {
		resume, err := pause(ctx, c)
		if err != nil {
			return "", fmt.Errorf("commit %s: pause it: %w", container, err)
		}
		defer resume()
	}
	layer, diffID, err := DiffSnapshot(ctx, client, info.Snapshotter, info.SnapshotKey, "berth-commit-"+info.ID)
	if err != nil {
		return "", fmt.Errorf("commit %s: diff its rootfs: %w", container, err)
	}

	now := time.Now().UTC()
	img := cfg.image
	img.Created, img.Author = &now, opts.Author
	if err := applyChanges(&img.Config, opts.Changes); err != nil {
		return "", err
	}
	img.RootFS.DiffIDs = append(append([]digest.Digest(nil), img.RootFS.DiffIDs...), diffID)
	img.History = append(append([]ocispec.History(nil), img.History...),
		ocispec.History{Created: &now, Author: opts.Author, CreatedBy: createdBy(ctx, c), Comment: opts.Message})
	layers := append(append([]ocispec.Descriptor(nil), manifest.Layers...), layer)
	id, err := store(ctx, client, name, newImage{config: img, layers: layers}, info.Snapshotter)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", container, err)
	}
	return id, nil
}

// pause pauses c's task while it runs, and gives the call that resumes it.
func pause(ctx context.Context, c containerd.Container) (resume func(), err error) {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Status != containerd.Running {
		return func() {}, nil
	}
	if err := task.Pause(ctx); err != nil {
		return nil, err
	}
	return func() { _ = task.Resume(context.WithoutCancel(ctx)) }, nil
}

// layerDiffID is the diff ID the differ recorded for a layer blob it wrote.
func layerDiffID(ctx context.Context, client *containerd.Client, layer ocispec.Descriptor) (digest.Digest, error) {
	info, err := client.ContentStore().Info(ctx, layer.Digest)
	if err != nil {
		return "", fmt.Errorf("read the new layer %s: %w", layer.Digest, err)
	}
	d, err := digest.Parse(info.Labels[labelUncompressed])
	if err != nil {
		return "", errors.New("the differ gave the new layer no diff ID (label " + labelUncompressed + ")")
	}
	return d, nil
}

// createdBy is the history's CREATED BY for a commit: the container's
// command, as docker writes it.
func createdBy(ctx context.Context, c containerd.Container) string {
	spec, err := c.Spec(ctx)
	if err != nil || spec.Process == nil {
		return ""
	}
	return strings.Join(spec.Process.Args, " ")
}
