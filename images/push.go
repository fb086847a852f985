package images

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/opencontainers/go-digest"
)

// PushOptions are `push`'s options.
type PushOptions struct {
	Registry RegistryOptions
	// Progress, when set, is told how each layer goes.
	Progress ProgressFunc
}

// PushResult is what a push did, for docker's closing line.
type PushResult struct {
	Name   string
	Tag    string
	Digest digest.Digest
	Size   int64 // the manifest's size
}

// Push sends the image ref names (a stored name) to its registry,
// through containerd's docker resolver: the host's platform's manifest
// and its blobs, under that name.
func Push(ctx context.Context, client *containerd.Client, ref string, opts PushOptions) (PushResult, error) {
	name, err := NormalizeReference(ref)
	if err != nil {
		return PushResult{}, err
	}
	img, err := client.ImageService().Get(ctx, name)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", ref, notFound(ref))
	}
	tracker := newLayerTracker()
	status := docker.NewInMemoryTracker()
	opts.Registry.Tracker = status
	stop := tracker.track(ctx, opts.Progress, tracker.pushState(status))
	err = client.Push(ctx, name, img.Target,
		containerd.WithResolver(opts.Registry.resolver()),
		containerd.WithPlatformMatcher(platform()),
		containerd.WithImageHandler(tracker.handler(nil)),
	)
	if err == nil {
		tracker.finish()
	}
	stop()
	if err != nil {
		return PushResult{}, registryError("push", name, opts.Registry, err)
	}
	_, tag, _ := repoTag(name)
	return PushResult{Name: name, Tag: tag, Digest: img.Target.Digest, Size: img.Target.Size}, nil
}
