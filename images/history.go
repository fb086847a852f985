package images

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// HistoryRow is one row of `history`, newest first, with the fields of
// docker's --format templates (.ID .CreatedSince .CreatedAt .CreatedBy
// .Size .Comment).
type HistoryRow struct {
	ID           string // the image ID on the newest row, "<missing>" below it, as docker shows
	CreatedAt    time.Time
	CreatedSince string
	CreatedBy    string
	Size         int64 // the layer's unpacked size; 0 for an entry that made no layer
	Comment      string
	Tags         []string
}

// History gives the history of the image ref names, from its config's
// history entries: each entry that made a layer is matched with that
// layer, in order, for its size.
func History(ctx context.Context, client *containerd.Client, ref string) ([]HistoryRow, error) {
	r, err := resolve(ctx, client, ref)
	if err != nil {
		return nil, err
	}
	img := r.image()
	cfg, err := readConfig(ctx, client.ContentStore(), img.Target)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", ref, err)
	}
	sizes, err := layerSizes(ctx, client, img, cfg.image.RootFS.DiffIDs)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", ref, err)
	}
	now := time.Now()
	var rows []HistoryRow
	layer := 0
	for _, h := range cfg.image.History {
		row := HistoryRow{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			row.CreatedAt = *h.Created
		}
		row.CreatedSince = createdSince(row.CreatedAt, now)
		if !h.EmptyLayer && layer < len(sizes) {
			row.Size = sizes[layer]
			layer++
		}
		rows = append(rows, row)
	}
	// Newest first, the image's own ID and tags on the newest row.
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	if len(rows) > 0 {
		rows[0].ID = r.id.String()
		rows[0].Tags, _ = repoNames(r.names)
	}
	return rows, nil
}

// layerSizes is each layer's unpacked size, from the snapshotter where the
// image is unpacked, else the size of its blob.
func layerSizes(ctx context.Context, client *containerd.Client, img images.Image, diffIDs []digest.Digest) ([]int64, error) {
	sizes := make([]int64, len(diffIDs))
	sn := client.SnapshotService("")
	for i := range diffIDs {
		chain := identity.ChainID(diffIDs[:i+1]).String()
		if u, err := sn.Usage(ctx, chain); err == nil {
			sizes[i] = u.Size
			continue
		}
		manifest, err := images.Manifest(ctx, client.ContentStore(), img.Target, platform())
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		if i < len(manifest.Layers) {
			sizes[i] = manifest.Layers[i].Size
		}
	}
	return sizes, nil
}
