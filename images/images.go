// Package images is berth's image noun: load, list, tag, remove and
// inspect images in containerd's image store, with docker's semantics and
// docker-shaped results. The CLI (cmd/ctl) calls it today; a Docker Engine
// API will call the same functions later.
package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"io"
	"sort"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotFound is wrapped by the errors for an image that is not there.
var ErrNotFound = errdefs.ErrNotFound

// kindError is an error with docker's exact message that still matches
// its kind (ErrNotFound, ErrConflict) under errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string { return e.msg }
func (e kindError) Unwrap() error { return e.kind }

// notFound is docker's message for an unknown image, naming the reference.
func notFound(ref string) error {
	return kindError{msg: "No such image: " + ref, kind: ErrNotFound}
}

// platform is the berth runtime's platform: the host's. Images are
// unpacked, listed and inspected for it.
func platform() platforms.MatchComparer { return platforms.Default() }

// LoadOptions say how to load an archive.
type LoadOptions struct {
	// Snapshotter receives the unpacked layers; empty means containerd's
	// default.
	Snapshotter string
}

// Load reads a docker-archive or OCI-archive tarball from r into the image
// store, through containerd's archive importer, and unpacks each image for
// the host's platform. It returns the familiar names loaded, in order.
func Load(ctx context.Context, client *containerd.Client, r io.Reader, opts LoadOptions) ([]string, error) {
	imgs, err := client.Import(ctx, r, containerd.WithImportPlatform(platform()))
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	if len(imgs) == 0 {
		return nil, errors.New("load image archive: it names no image (berth loads only named images so far)")
	}
	var names []string
	for _, img := range imgs {
		image := containerd.NewImageWithPlatform(client, img, platform())
		if err := image.Unpack(ctx, opts.Snapshotter); err != nil {
			return names, fmt.Errorf("unpack image %s: %w", familiar(img.Name), err)
		}
		names = append(names, familiar(img.Name))
	}
	return names, nil
}

// Summary is one row of `images`, with docker's field names so that
// --format templates written for docker work.
type Summary struct {
	ID           string // full config digest, sha256:…
	Repository   string
	Tag          string
	Digest       string // the manifest (or index) digest
	CreatedAt    time.Time
	CreatedSince string
	Size         string
	VirtualSize  int64
	Name         string // the stored name
}

// List gives the images in the store, newest first, one row per name.
func List(ctx context.Context, client *containerd.Client) ([]Summary, error) {
	all, err := client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	now := time.Now()
	var rows []Summary
	for _, img := range all {
		repo, tag, ok := repoTag(img.Name)
		if !ok {
			continue // a name of containerd's own, e.g. by digest only
		}
		row := Summary{Repository: repo, Tag: tag, Digest: img.Target.Digest.String(), Name: img.Name}
		cfg, err := readConfig(ctx, client.ContentStore(), img.Target)
		if err != nil {
			// An image without content for this platform (another
			// platform's, or half pulled) is still listed, as docker
			// does, by the digest it has.
			log.G(ctx).WithError(err).Debugf("image %s has no config for this platform", familiar(img.Name))
			row.ID, row.CreatedSince, row.Size = img.Target.Digest.String(), createdSince(time.Time{}, now), "N/A"
			rows = append(rows, row)
			continue
		}
		size, err := imageSize(ctx, client, img)
		if err != nil {
			return nil, fmt.Errorf("list images: size of %s: %w", familiar(img.Name), err)
		}
		row.ID, row.Size, row.VirtualSize = cfg.digest.String(), humanSize(size), size
		if cfg.image.Created != nil {
			row.CreatedAt = *cfg.image.Created
		}
		row.CreatedSince = createdSince(row.CreatedAt, now)
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].CreatedAt.Equal(rows[j].CreatedAt) {
			return rows[i].CreatedAt.After(rows[j].CreatedAt)
		}
		return rows[i].Name < rows[j].Name
	})
	return rows, nil
}

// imageSize is docker's SIZE: the unpacked size where the image is
// unpacked, else the size of its content.
func imageSize(ctx context.Context, client *containerd.Client, img images.Image) (int64, error) {
	image := containerd.NewImageWithPlatform(client, img, platform())
	if unpacked, err := image.IsUnpacked(ctx, ""); err == nil && unpacked {
		return image.Usage(ctx, containerd.WithSnapshotUsage())
	}
	return image.Size(ctx)
}

// imageConfig is an image's config blob for the host's platform.
type imageConfig struct {
	digest digest.Digest
	image  ocispec.Image
	// docker holds docker's extensions (Healthcheck, OnBuild, Shell) of
	// the same blob.
	docker dockerspec.DockerOCIImage
}

func readConfig(ctx context.Context, cs content.Store, target ocispec.Descriptor) (imageConfig, error) {
	desc, err := images.Config(ctx, cs, target, platform())
	if err != nil {
		return imageConfig{}, fmt.Errorf("find config for %s: %w", platforms.DefaultString(), err)
	}
	blob, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return imageConfig{}, fmt.Errorf("read config %s: %w", desc.Digest, err)
	}
	var cfg imageConfig
	cfg.digest = desc.Digest
	if err := json.Unmarshal(blob, &cfg.image); err != nil {
		return imageConfig{}, fmt.Errorf("parse config %s: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(blob, &cfg.docker); err != nil {
		return imageConfig{}, fmt.Errorf("parse config %s: %w", desc.Digest, err)
	}
	return cfg, nil
}

// resolved is an image a user named, and every name the store holds for it.
type resolved struct {
	byName string // the stored name ref normalised to, if ref was a name
	id     digest.Digest
	names  []images.Image // every stored name with this ID
}

// image is the stored image the user named: the name itself, or, for an
// ID, its first name.
func (r resolved) image() images.Image {
	for _, img := range r.names {
		if img.Name == r.byName {
			return img
		}
	}
	return r.names[0]
}

// resolve finds the image ref names, as docker does: a name (normalised),
// else an ID or a prefix of one.
func resolve(ctx context.Context, client *containerd.Client, ref string) (resolved, error) {
	all, err := client.ImageService().List(ctx)
	if err != nil {
		return resolved{}, fmt.Errorf("list images: %w", err)
	}
	ids := make(map[string]digest.Digest, len(all))
	idOf := func(img images.Image) (digest.Digest, error) {
		if id, ok := ids[img.Name]; ok {
			return id, nil
		}
		cfg, err := images.Config(ctx, client.ContentStore(), img.Target, platform())
		if err != nil {
			return "", fmt.Errorf("image %s: find config for %s: %w", familiar(img.Name), platforms.DefaultString(), err)
		}
		ids[img.Name] = cfg.Digest
		return cfg.Digest, nil
	}
	var r resolved
	if name, err := NormalizeReference(ref); err == nil {
		for _, img := range all {
			if img.Name == name {
				r.byName = name
				if r.id, err = idOf(img); err != nil {
					return resolved{}, err
				}
			}
		}
	}
	if r.id == "" {
		hex, ok := idPrefix(ref)
		if !ok {
			return resolved{}, notFound(ref)
		}
		for _, img := range all {
			id, err := idOf(img)
			if err != nil {
				continue // an image without content for this platform is not the one named by ID
			}
			if strings.HasPrefix(id.Encoded(), hex) {
				if r.id != "" && r.id != id {
					return resolved{}, fmt.Errorf("image ID prefix %q is ambiguous: it matches %s and %s", ref, ShortID(r.id), ShortID(id))
				}
				r.id = id
			}
		}
		if r.id == "" {
			return resolved{}, notFound(ref)
		}
	}
	for _, img := range all {
		if id, err := idOf(img); err == nil && id == r.id {
			r.names = append(r.names, img)
		}
	}
	return r, nil
}

// Tag gives the image source names a new name target, replacing what
// target named before, as `docker tag` does.
func Tag(ctx context.Context, client *containerd.Client, source, target string) error {
	r, err := resolve(ctx, client, source)
	if err != nil {
		return err
	}
	name, err := NormalizeReference(target)
	if err != nil {
		return err
	}
	src := r.image()
	if err := setName(ctx, client, images.Image{Name: name, Target: src.Target, Labels: src.Labels}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, target, err)
	}
	return nil
}
