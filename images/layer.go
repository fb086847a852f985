package images

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/diff"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/rootfs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The calls below are what commit, import and `build` share: a snapshot's
// changes as a layer, an image's config and layers read and written.

// DiffSnapshot writes the changes of the snapshot key over its parent as a
// gzip layer through containerd's diff service (ref names the ingest). It
// gives the layer and its diff ID. ctx must hold a lease.
func DiffSnapshot(ctx context.Context, client *containerd.Client, snapshotter, key, ref string) (ocispec.Descriptor, digest.Digest, error) {
	layer, err := rootfs.CreateDiff(ctx, key, client.SnapshotService(snapshotter), client.DiffService(),
		diff.WithMediaType(ocispec.MediaTypeImageLayerGzip), diff.WithReference(ref))
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("diff snapshot %s: %w", key, err)
	}
	diffID, err := layerDiffID(ctx, client, layer)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return layer, diffID, nil
}

// Stored is an image in the store for the host's platform: its ID, its
// config blob as stored (docker's extensions such as Healthcheck and
// OnBuild kept) and its layers.
type Stored struct {
	ID     digest.Digest
	Name   string
	Config []byte
	Layers []ocispec.Descriptor
	Target ocispec.Descriptor // the manifest (or index)
}

// ReadImage finds the image ref names as every command does (a name, an
// ID or an ID prefix) and reads its config and layers. An image that is
// not here fails with errdefs.ErrNotFound.
func ReadImage(ctx context.Context, client *containerd.Client, ref string) (Stored, error) {
	r, err := resolve(ctx, client, ref)
	if err != nil {
		return Stored{}, err
	}
	img := r.image()
	s, err := ReadManifest(ctx, client, img.Target)
	if err != nil {
		return Stored{}, fmt.Errorf("image %s: %w", ref, err)
	}
	s.Name = img.Name
	return s, nil
}

// ReadManifest reads the config and layers of the manifest (or index)
// target for the host's platform.
func ReadManifest(ctx context.Context, client *containerd.Client, target ocispec.Descriptor) (Stored, error) {
	cs := client.ContentStore()
	manifest, err := images.Manifest(ctx, cs, target, platform())
	if err != nil {
		return Stored{}, fmt.Errorf("read manifest %s: %w", target.Digest, err)
	}
	blob, err := content.ReadBlob(ctx, cs, manifest.Config)
	if err != nil {
		return Stored{}, fmt.Errorf("read config %s: %w", manifest.Config.Digest, err)
	}
	return Stored{ID: manifest.Config.Digest, Config: blob, Layers: manifest.Layers, Target: target}, nil
}

// WriteImage writes an image config (any JSON value: ocispec.Image, or
// docker's extension of it) and an OCI manifest over layers, already in
// the content store, into the content store. The manifest carries the
// labels containerd's garbage collector follows to its blobs, plus
// labels. It gives the manifest and the image ID. ctx must hold a lease
// until something refers to the manifest.
func WriteImage(ctx context.Context, client *containerd.Client, config any, layers []ocispec.Descriptor, labels map[string]string) (ocispec.Descriptor, digest.Digest, error) {
	cs := client.ContentStore()
	configBlob, err := json.Marshal(config)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("encode image config: %w", err)
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(configBlob), Size: int64(len(configBlob))}
	if err := content.WriteBlob(ctx, cs, "config-"+configDesc.Digest.String(), bytes.NewReader(configBlob), configDesc); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("store image config: %w", err)
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	}
	manifestBlob, err := json.Marshal(manifest)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("encode image manifest: %w", err)
	}
	manifestDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifestBlob), Size: int64(len(manifestBlob))}
	gcRefs := map[string]string{"containerd.io/gc.ref.content.config": configDesc.Digest.String()}
	for i, l := range layers {
		gcRefs["containerd.io/gc.ref.content.l."+strconv.Itoa(i)] = l.Digest.String()
	}
	maps.Copy(gcRefs, labels)
	if err := content.WriteBlob(ctx, cs, "manifest-"+manifestDesc.Digest.String(), bytes.NewReader(manifestBlob), manifestDesc, content.WithLabels(gcRefs)); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("store image manifest: %w", err)
	}
	if len(labels) > 0 {
		// WriteBlob leaves the labels of a blob already there as they were.
		info := content.Info{Digest: manifestDesc.Digest, Labels: gcRefs}
		var fields []string
		for k := range gcRefs {
			fields = append(fields, "labels."+k)
		}
		if _, err := cs.Update(ctx, info, fields...); err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("label image manifest %s: %w", manifestDesc.Digest, err)
		}
	}
	return manifestDesc, configDesc.Digest, nil
}

// NameImage names the manifest name (replacing what the name was, as
// docker does) and unpacks it into the snapshotter for the host's
// platform, so that a container can run it.
func NameImage(ctx context.Context, client *containerd.Client, name string, manifest ocispec.Descriptor, snapshotter string) error {
	if err := setName(ctx, client, images.Image{Name: name, Target: manifest}); err != nil {
		return err
	}
	return Unpack(ctx, client, name, manifest, snapshotter)
}

// Unpack unpacks the manifest into the snapshotter (name is for errors).
func Unpack(ctx context.Context, client *containerd.Client, name string, manifest ocispec.Descriptor, snapshotter string) error {
	image := containerd.NewImageWithPlatform(client, images.Image{Name: name, Target: manifest}, platform())
	if err := image.Unpack(ctx, snapshotter); err != nil {
		return fmt.Errorf("unpack image %s: %w", familiar(name), err)
	}
	return nil
}

// SetEnv sets key in the KEY=VALUE list env (ENV's rule, shared with
// `build`).
func SetEnv(env []string, key, value string) []string { return setEnv(env, key, value) }
