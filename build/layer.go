package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/image-spec/identity"

	"github.com/berthrt/berth/images"
)

// A step that changes files works on an active snapshot over the chain of
// the state's layers; its diff becomes a new layer, and the snapshot is
// committed as the new chain so that the next step starts from it.

// withLayer prepares an active snapshot over st's layers, calls fn with
// its key, and turns what fn changed into st's next layer. The snapshot
// is removed when fn fails.
func (b *builder) withLayer(ctx context.Context, st *state, fn func(key string) error) (err error) {
	sn := b.client.SnapshotService(b.snapshotter)
	parent := ""
	if len(st.img.RootFS.DiffIDs) > 0 {
		parent = identity.ChainID(st.img.RootFS.DiffIDs).String()
		if err := b.ensureChain(ctx, st, parent); err != nil {
			return err
		}
	}
	key := "berth-build-" + randomHex()
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		return fmt.Errorf("prepare a snapshot over %s: %w", parent, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	if err := fn(key); err != nil {
		return err
	}
	layer, diffID, err := images.DiffSnapshot(ctx, b.client, b.snapshotter, key, key)
	if err != nil {
		return err
	}
	st.layers = append(st.layers, layer)
	st.img.RootFS.DiffIDs = append(st.img.RootFS.DiffIDs, diffID)
	chain := identity.ChainID(st.img.RootFS.DiffIDs).String()
	err = sn.Commit(ctx, chain, key, snapshots.WithLabels(map[string]string{"containerd.io/snapshot.ref": chain}))
	switch {
	case err == nil:
		committed = true
	case errdefs.IsAlreadyExists(err):
		// The same layer was made before: its snapshot is the chain.
	default:
		return fmt.Errorf("commit snapshot %s: %w", chain, err)
	}
	return nil
}

// ensureChain makes sure the snapshot chain of st's layers exists,
// unpacking st's image when the snapshotter lost it.
func (b *builder) ensureChain(ctx context.Context, st *state, chain string) error {
	if _, err := b.client.SnapshotService(b.snapshotter).Stat(ctx, chain); err == nil {
		return nil
	}
	manifest, _, err := images.WriteImage(ctx, b.client, st.img, st.layers, nil)
	if err != nil {
		return err
	}
	return images.Unpack(ctx, b.client, st.id.String(), manifest, b.snapshotter)
}

// withMounted mounts the snapshot key on a temporary directory while fn
// runs.
func (b *builder) withMounted(ctx context.Context, key string, fn func(root string) error) error {
	mounts, err := b.client.SnapshotService(b.snapshotter).Mounts(ctx, key)
	if err != nil {
		return fmt.Errorf("mounts of snapshot %s: %w", key, err)
	}
	return mount.WithTempMount(ctx, mounts, fn)
}

// withView mounts a read-only view of chain (none: an empty directory).
func (b *builder) withView(ctx context.Context, st *state, fn func(root string) error) error {
	if len(st.img.RootFS.DiffIDs) == 0 {
		dir, err := os.MkdirTemp("", "berth-build-empty-")
		if err != nil {
			return err
		}
		defer os.Remove(dir)
		return fn(dir)
	}
	chain := identity.ChainID(st.img.RootFS.DiffIDs).String()
	if err := b.ensureChain(ctx, st, chain); err != nil {
		return err
	}
	sn := b.client.SnapshotService(b.snapshotter)
	key := "berth-build-view-" + randomHex()
	mounts, err := sn.View(ctx, key, chain)
	if err != nil {
		return fmt.Errorf("view snapshot %s: %w", chain, err)
	}
	defer sn.Remove(context.WithoutCancel(ctx), key)
	return mount.WithReadonlyTempMount(ctx, mounts, fn)
}

func randomHex() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("crypto/rand failed"))
	}
	return hex.EncodeToString(b[:])
}
