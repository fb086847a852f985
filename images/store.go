package images

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// labelUncompressed is containerd's label for a layer blob's diff ID; the
// unpacker reads it instead of decompressing the layer again.
const labelUncompressed = "containerd.io/uncompressed"

// newImage is an image berth makes itself (import, commit): its config
// and the layer blobs, already in the content store, that the config's
// diff IDs name, in order.
type newImage struct {
	config ocispec.Image
	layers []ocispec.Descriptor
}

// store writes the config and an OCI manifest for img into the content
// store, with the labels containerd's garbage collector follows from the
// manifest to its blobs, names the manifest name (replacing what that name
// was, as docker does; a name "" stores it under its ID, untagged), and
// unpacks it for the host's platform so that a container can run it. ctx
// must hold a lease until the name exists. It returns the image ID.
func store(ctx context.Context, client *containerd.Client, name string, img newImage, snapshotter string) (digest.Digest, error) {
	manifest, id, err := WriteImage(ctx, client, img.config, img.layers, nil)
	if err != nil {
		return "", err
	}
	if name == "" {
		name = id.String()
	}
	if err := NameImage(ctx, client, name, manifest, snapshotter); err != nil {
		return "", err
	}
	return id, nil
}

// setName points img.Name at img.Target, creating the name or moving it.
func setName(ctx context.Context, client *containerd.Client, img images.Image) error {
	is := client.ImageService()
	if _, err := is.Create(ctx, img); err != nil {
		if !errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("name image %s: %w", familiar(img.Name), err)
		}
		if _, err := is.Update(ctx, img, "target"); err != nil {
			return fmt.Errorf("name image %s: %w", familiar(img.Name), err)
		}
	}
	return nil
}

// hostImageConfig is a new config for the host's platform, created now.
func hostImageConfig(now time.Time) ocispec.Image {
	p := platforms.DefaultSpec()
	return ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
}

// optionalName normalises the REPOSITORY[:TAG] of import and commit; ""
// stays "": the image is stored untagged, under its ID.
func optionalName(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	return NormalizeReference(ref)
}
