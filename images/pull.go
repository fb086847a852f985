package images

import (
	"context"
	"errors"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// PullOptions are `pull`'s options, and `run --pull`'s.
type PullOptions struct {
	Registry RegistryOptions
	// Progress, when set, is told how each layer goes.
	Progress ProgressFunc
	// Snapshotter receives the unpacked layers; empty is containerd's default.
	Snapshotter string
}

// PullResult is what a pull did, for docker's closing lines.
type PullResult struct {
	Name     string        // the full name stored: "docker.io/library/busybox:latest"
	Digest   digest.Digest // the manifest (or index) digest
	ID       digest.Digest // the image ID for the host's platform
	UpToDate bool          // the name already pointed at this digest
}

// Pull fetches the image ref names from its registry (or a mirror)
// through containerd's docker resolver, for the host's platform, and
// unpacks it into the snapshotter so that a container can run it.
// An image the registry does not have fails with ErrNotFound, naming the
// reference and the registry asked.
func Pull(ctx context.Context, client *containerd.Client, ref string, opts PullOptions) (PullResult, error) {
	name, err := NormalizeReference(ref)
	if err != nil {
		return PullResult{}, err
	}
	var before digest.Digest
	if img, err := client.ImageService().Get(ctx, name); err == nil {
		before = img.Target.Digest
	}
	tracker := newLayerTracker()
	cs := client.ContentStore()
	stop := tracker.track(ctx, opts.Progress, tracker.pullState(cs))
	img, err := client.Pull(ctx, name,
		containerd.WithResolver(opts.Registry.resolver()),
		containerd.WithPlatformMatcher(platform()),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(opts.Snapshotter),
		containerd.WithImageHandler(tracker.handler(cs)),
	)
	if err == nil {
		// Layers already unpacked are skipped by containerd's unpacker
		// before any handler sees them: docker lists them all the same,
		// unless the image was up to date.
		if manifest, err := images.Manifest(ctx, cs, img.Target(), platform()); err == nil && before != img.Target().Digest {
			tracker.existing(manifest.Layers)
		}
		tracker.finish()
	}
	stop()
	if err != nil {
		return PullResult{}, registryError("pull", name, opts.Registry, err)
	}
	res := PullResult{Name: name, Digest: img.Target().Digest, UpToDate: before == img.Target().Digest}
	cfg, err := img.Config(ctx)
	if err != nil {
		return res, fmt.Errorf("pull %s: read its config: %w", familiar(name), err)
	}
	res.ID = cfg.Digest
	return res, nil
}

// registryError says what failed on which registry: for an image the
// registry does not have, docker's "manifest unknown" with the reference
// and the registry asked.
func registryError(action, name string, opts RegistryOptions, err error) error {
	host := registryHost(name)
	asked := host
	if mirrors := opts.Config.Mirrors[host]; len(mirrors) > 0 {
		asked = fmt.Sprintf("%s (and its mirrors %v)", host, mirrors)
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return kindError{kind: ErrNotFound,
			msg: fmt.Sprintf("%s %s: manifest for %s not found at registry %s: manifest unknown (%v)", action, familiar(name), familiar(name), asked, err)}
	}
	return fmt.Errorf("%s %s from registry %s: %w", action, familiar(name), asked, err)
}

// registryHost is the registry part of a full name ("docker.io",
// "127.0.0.1:5000").
func registryHost(name string) string {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "?"
	}
	return reference.Domain(named)
}
