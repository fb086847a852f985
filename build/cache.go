package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/images"
)

// The cache lives in containerd's own metadata, so it survives restarts
// of berth and containerd: every step's image is a manifest in the content
// store labelled with the step's cache key, a garbage-collection root that
// holds its config, its layers and the snapshot of its layer chain.
const (
	labelCacheKey = "berth/build.cache"
	labelGCRoot   = "containerd.io/gc.root"
)

// cacheKey is a step's key: its parent image, its instruction as written,
// the build args in scope and, for COPY and ADD, the hash of what they
// copy.
func cacheKey(parent digest.Digest, instruction string, args map[string]string, sources string) string {
	h := sha256.New()
	fmt.Fprintf(h, "parent %s\ninstruction %q\n", parent, instruction)
	for _, k := range sortedKeys(args) {
		fmt.Fprintf(h, "arg %q=%q\n", k, args[k])
	}
	fmt.Fprintf(h, "sources %s\n", sources)
	return hex.EncodeToString(h.Sum(nil))
}

// cached is the step with key stored by an earlier build, if any.
func (b *builder) cached(ctx context.Context, st *state, key string) (*state, bool) {
	var found *content.Info
	filter := fmt.Sprintf("labels.%q==%s", labelCacheKey, key)
	err := b.client.ContentStore().Walk(ctx, func(info content.Info) error {
		found = &info
		return nil
	}, filter)
	if err != nil || found == nil {
		return nil, false
	}
	stored, err := images.ReadManifest(ctx, b.client, manifestDescriptor(*found))
	if err != nil {
		return nil, false
	}
	next := st.clone()
	next.img = dockerspec.DockerOCIImage{}
	if err := json.Unmarshal(stored.Config, &next.img); err != nil {
		return nil, false
	}
	next.id, next.layers = stored.ID, stored.Layers
	return next, true
}

// record stores st's image as the result of the step with key, and sets
// st.id to its ID.
func (b *builder) record(ctx context.Context, st *state, key string) error {
	labels := map[string]string{labelCacheKey: key, labelGCRoot: now().Format("2006-01-02T15:04:05Z")}
	if len(st.img.RootFS.DiffIDs) > 0 {
		labels["containerd.io/gc.ref.snapshot."+b.snapshotter] = identity.ChainID(st.img.RootFS.DiffIDs).String()
	}
	_, id, err := images.WriteImage(ctx, b.client, st.img, st.layers, labels)
	if err != nil {
		return fmt.Errorf("record the step's image: %w", err)
	}
	st.id = id
	return nil
}

// manifestDescriptor is the descriptor of a manifest blob found by Walk.
func manifestDescriptor(info content.Info) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: info.Digest, Size: info.Size}
}
