package images

import (
	"context"
	"fmt"
	"io"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/opencontainers/go-digest"
)

// The archive formats `save --format` writes.
const (
	// FormatDockerArchive is `docker save`'s tarball: manifest.json with
	// the RepoTags docker load reads, and the OCI layout (oci-layout,
	// index.json, blobs/) beside it in the same tar, as containerd's
	// exporter writes it; docker, podman, skopeo and berth load it.
	FormatDockerArchive = "docker-archive"
	// FormatOCIArchive is the OCI image layout alone.
	FormatOCIArchive = "oci-archive"
)

// SaveOptions are `save`'s flags.
type SaveOptions struct {
	// Format is FormatDockerArchive (the default, for "") or FormatOCIArchive.
	Format string
}

// Save writes the images refs name (names or IDs) to w as one archive,
// through containerd's archive exporter, for the host's platform.
func Save(ctx context.Context, client *containerd.Client, w io.Writer, refs []string, opts SaveOptions) error {
	exportOpts := []archive.ExportOpt{archive.WithPlatform(platform())}
	switch opts.Format {
	case "", FormatDockerArchive:
	case FormatOCIArchive:
		exportOpts = append(exportOpts, archive.WithSkipDockerManifest())
	default:
		return fmt.Errorf("unknown archive format %q: use %s or %s", opts.Format, FormatDockerArchive, FormatOCIArchive)
	}
	for _, ref := range refs {
		r, err := resolve(ctx, client, ref)
		if err != nil {
			return err
		}
		if r.byName != "" {
			exportOpts = append(exportOpts, archive.WithImage(client.ImageService(), r.byName))
			continue
		}
		// By ID, as docker does: every name of the image goes in the archive.
		var names []string
		for _, img := range r.names {
			if _, err := digest.Parse(img.Name); err != nil { // not an untagged one's ID
				names = append(names, img.Name)
			}
		}
		exportOpts = append(exportOpts, archive.WithManifest(r.names[0].Target, names...))
	}
	if err := client.Export(ctx, w, exportOpts...); err != nil {
		return fmt.Errorf("save %v: %w", refs, err)
	}
	return nil
}
