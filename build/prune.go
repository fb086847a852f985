package build

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/opencontainers/go-digest"
)

// PruneResult is what Prune removed.
type PruneResult struct {
	Entries   []digest.Digest // the steps' manifests no longer kept
	Reclaimed int64           // bytes of content and snapshots freed
}

// Prune empties the build cache (`builder prune`): every step's manifest
// stops being a garbage-collection root and loses its cache key, and a
// collection runs at once; what an image still uses stays.
func Prune(ctx context.Context, client *containerd.Client) (PruneResult, error) {
	before, err := usage(ctx, client)
	if err != nil {
		return PruneResult{}, err
	}
	cs := client.ContentStore()
	var res PruneResult
	var entries []content.Info
	err = cs.Walk(ctx, func(info content.Info) error {
		entries = append(entries, info)
		return nil
	}, fmt.Sprintf("labels.%q", labelCacheKey))
	if err != nil {
		return res, fmt.Errorf("builder prune: list the build cache: %w", err)
	}
	for _, info := range entries {
		info.Labels = map[string]string{}
		if _, err := cs.Update(ctx, info, "labels."+labelCacheKey, "labels."+labelGCRoot); err != nil {
			return res, fmt.Errorf("builder prune: release %s: %w", info.Digest, err)
		}
		res.Entries = append(res.Entries, info.Digest)
	}
	// Deleting a lease synchronously runs containerd's collector now.
	ls := client.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err != nil {
		return res, fmt.Errorf("builder prune: %w", err)
	}
	if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil {
		return res, fmt.Errorf("builder prune: collect garbage: %w", err)
	}
	after, err := usage(ctx, client)
	if err != nil {
		return res, err
	}
	res.Reclaimed = max(before-after, 0)
	return res, nil
}

// usage is the bytes of the content store and the default snapshotter.
func usage(ctx context.Context, client *containerd.Client) (int64, error) {
	var total int64
	if err := client.ContentStore().Walk(ctx, func(info content.Info) error {
		total += info.Size
		return nil
	}); err != nil {
		return 0, fmt.Errorf("builder prune: content store usage: %w", err)
	}
	sn := client.SnapshotService("")
	var keys []string
	if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		keys = append(keys, info.Name)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("builder prune: snapshot usage: %w", err)
	}
	for _, k := range keys {
		if u, err := sn.Usage(ctx, k); err == nil {
			total += u.Size
		}
	}
	return total, nil
}
