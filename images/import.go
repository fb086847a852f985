package images

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions are `import`'s flags.
type ImportOptions struct {
	// Name is REPOSITORY[:TAG]; empty leaves the image untagged, known
	// by its ID.
	Name string
	// Source is what the history says the image came from: a file, a
	// URL, or "-" for stdin.
	Source string
	// Message is the history's comment (-m); empty: "Imported from SOURCE".
	Message string
	// Changes are Dockerfile instructions applied to the config (-c).
	Changes []string
	// Snapshotter receives the unpacked layer; empty is containerd's default.
	Snapshotter string
}

// Import makes a one-layer image for the host's platform from a rootfs
// tarball (plain, gzip or zstd), as `docker import` does, and unpacks it.
// It returns the image ID.
func Import(ctx context.Context, client *containerd.Client, r io.Reader, opts ImportOptions) (digest.Digest, error) {
	name, err := optionalName(opts.Name)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	cfg := hostImageConfig(now)
	if err := applyChanges(&cfg.Config, opts.Changes); err != nil {
		return "", err
	}
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", opts.Source, err)
	}
	defer done(context.WithoutCancel(ctx))

	layer, diffID, err := writeLayer(ctx, client.ContentStore(), r)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", opts.Source, err)
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	cfg.RootFS.DiffIDs = []digest.Digest{diffID}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	id, err := store(ctx, client, name, newImage{config: cfg, layers: []ocispec.Descriptor{layer}}, opts.Snapshotter)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", opts.Source, err)
	}
	return id, nil
}

// writeLayer stores the tarball r (decompressed if it is gzip or zstd) as a
// gzip layer blob, checking on the way that it is a tar archive. It
// returns the blob's descriptor and the layer's diff ID.
func writeLayer(ctx context.Context, cs content.Store, r io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	plain, err := compression.DecompressStream(r)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("read the tarball: %w", err)
	}
	defer plain.Close()
	w, err := content.OpenWriter(ctx, cs, content.WithRef(fmt.Sprintf("berth-layer-%d", time.Now().UnixNano())))
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("open the content store: %w", err)
	}
	defer w.Close()
	diffID := digest.Canonical.Digester()
	zw := gzip.NewWriter(w)
	if err := copyTar(io.MultiWriter(zw, diffID.Hash()), plain); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("compress the layer: %w", err)
	}
	status, err := w.Status()
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("store the layer: %w", err)
	}
	labels := map[string]string{labelUncompressed: diffID.Digest().String()}
	if err := w.Commit(ctx, status.Offset, "", content.WithLabels(labels)); err != nil && !errdefs.IsAlreadyExists(err) {
		return ocispec.Descriptor{}, "", fmt.Errorf("store the layer: %w", err)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: w.Digest(), Size: status.Offset}
	return desc, diffID.Digest(), nil
}

// copyTar copies the tar stream r to w whole, refusing what is not a tar
// archive: docker's "archive/tar: invalid tar header" would say little.
func copyTar(w io.Writer, r io.Reader) error {
	tee := io.TeeReader(r, w)
	tr := tar.NewReader(tee)
	entries := 0
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the input is not a tar archive of a root filesystem (after %d entries): %w", entries, err)
		}
		entries++
	}
	// The end-of-archive blocks and any padding after them belong to the layer too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("read the tarball: %w", err)
	}
	if entries == 0 {
		return errors.New("the tarball is empty: give a tar archive of a root filesystem")
	}
	return nil
}
