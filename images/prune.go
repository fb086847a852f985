package images

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
)

// PruneOptions are `image prune`'s flags.
type PruneOptions struct {
	// All removes every image no container uses, not only the dangling
	// (untagged) ones.
	All bool
}

// PruneReport is docker's ImagesPruneReport.
type PruneReport struct {
	ImagesDeleted  []DeleteItem
	SpaceReclaimed int64
}

// Prune removes the dangling images, or with All every image no container
// was created from, as `docker image prune` does.
func Prune(ctx context.Context, client *containerd.Client, opts PruneOptions) (PruneReport, error) {
	all, err := client.ImageService().List(ctx)
	if err != nil {
		return PruneReport{}, fmt.Errorf("prune images: %w", err)
	}
	used, err := usedIDs(ctx, client)
	if err != nil {
		return PruneReport{}, err
	}
	byID := map[digest.Digest][]images.Image{}
	var order []digest.Digest
	for _, img := range all {
		cfg, err := images.Config(ctx, client.ContentStore(), img.Target, platform())
		if err != nil {
			continue // no content for this platform: not berth's to judge
		}
		if _, ok := byID[cfg.Digest]; !ok {
			order = append(order, cfg.Digest)
		}
		byID[cfg.Digest] = append(byID[cfg.Digest], img)
	}
	var report PruneReport
	for _, id := range order {
		names := byID[id]
		if used[id] || (!opts.All && !dangling(names)) {
			continue
		}
		size, _ := imageSize(ctx, client, names[0])
		for i, img := range names {
			var delOpts []images.DeleteOpt
			if i == len(names)-1 {
				delOpts = append(delOpts, images.SynchronousDelete())
			}
			if err := client.ImageService().Delete(ctx, img.Name, delOpts...); err != nil {
				return report, fmt.Errorf("prune images: remove %s: %w", familiar(img.Name), err)
			}
			if _, err := digest.Parse(img.Name); err != nil {
				report.ImagesDeleted = append(report.ImagesDeleted, DeleteItem{Untagged: familiar(img.Name)})
			}
		}
		report.ImagesDeleted = append(report.ImagesDeleted, DeleteItem{Deleted: id.String()})
		report.SpaceReclaimed += size
	}
	return report, nil
}

// dangling says whether an image's names are all untagged: its ID, or a
// repository by digest.
func dangling(names []images.Image) bool {
	for _, img := range names {
		if _, tag, ok := repoTag(img.Name); ok && tag != "<none>" {
			return false
		}
	}
	return true
}

// usedIDs are the IDs of the images containers were created from.
func usedIDs(ctx context.Context, client *containerd.Client) (map[digest.Digest]bool, error) {
	containers, err := client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune images: list containers: %w", err)
	}
	used := map[digest.Digest]bool{}
	for _, c := range containers {
		if c.Image == "" {
			continue
		}
		img, err := client.ImageService().Get(ctx, c.Image)
		if err != nil {
			continue // its image is gone already
		}
		if cfg, err := images.Config(ctx, client.ContentStore(), img.Target, platform()); err == nil {
			used[cfg.Digest] = true
		}
	}
	return used, nil
}
