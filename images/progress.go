package images

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// docker's words for a layer's state in a pull or push.
const (
	StatusWaiting          = "Waiting"
	StatusDownloading      = "Downloading"
	StatusDownloadComplete = "Download complete"
	StatusAlreadyExists    = "Already exists"
	StatusPullComplete     = "Pull complete"
	StatusPreparing        = "Preparing"
	StatusPushing          = "Pushing"
	StatusPushed           = "Pushed"
	StatusLayerExists      = "Layer already exists"
	StatusMounted          = "Mounted from" // then the repository
)

// LayerProgress is one layer's line in a pull or push, as docker shows it.
type LayerProgress struct {
	ID             string // docker's short ID: the first 12 hex digits of the digest
	Digest         digest.Digest
	Status         string // one of the Status constants
	Current, Total int64  // bytes
}

// ProgressFunc receives every layer of a pull or push, in the order they
// were met, each time something may have moved (a few times a second) and
// once more at the end. It is called from one goroutine at a time.
type ProgressFunc func([]LayerProgress)

// progressInterval is how often a pull or push reports.
const progressInterval = 100 * time.Millisecond

// layerTracker records the layers a pull or push meets, through an image
// handler, and works out each one's state.
type layerTracker struct {
	mu      sync.Mutex
	layers  []ocispec.Descriptor
	seen    map[digest.Digest]bool
	existed map[digest.Digest]bool // already in the content store when met (pull)
	done    bool                   // the pull or push finished
}

func newLayerTracker() *layerTracker {
	return &layerTracker{seen: map[digest.Digest]bool{}, existed: map[digest.Digest]bool{}}
}

// handler records each layer; with cs (a pull), whether it was already there.
func (t *layerTracker) handler(cs content.InfoProvider) images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if !images.IsLayerType(desc.MediaType) {
			return nil, nil
		}
		existed := false
		if cs != nil {
			_, err := cs.Info(ctx, desc.Digest)
			existed = err == nil
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.seen[desc.Digest] {
			t.seen[desc.Digest] = true
			t.existed[desc.Digest] = existed
			t.layers = append(t.layers, desc)
		}
		return nil, nil
	}
}

// track reports through fn (nothing when fn is nil) every
// progressInterval until the returned stop is called; stop reports once
// more and returns when that last report has returned.
func (t *layerTracker) track(ctx context.Context, fn ProgressFunc, state func(context.Context) []LayerProgress) (stop func()) {
	if fn == nil {
		return func() {}
	}
	quit, reported := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reported)
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				fn(state(context.WithoutCancel(ctx)))
				return
			case <-tick.C:
				fn(state(ctx))
			}
		}
	}()
	return func() {
		close(quit)
		<-reported
	}
}

// pullState is each layer's state in a pull: from the content store's
// active ingests and the blobs it holds.
func (t *layerTracker) pullState(cs content.Store) func(context.Context) []LayerProgress {
	return func(ctx context.Context) []LayerProgress {
		active := map[digest.Digest]content.Status{}
		if statuses, err := cs.ListStatuses(ctx); err == nil {
			for _, st := range statuses {
				if i := strings.LastIndex(st.Ref, "sha256:"); i >= 0 {
					active[digest.Digest(st.Ref[i:])] = st
				}
			}
		}
		t.mu.Lock()
		layers, existed, done := append([]ocispec.Descriptor(nil), t.layers...), t.existed, t.done
		t.mu.Unlock()
		out := make([]LayerProgress, 0, len(layers))
		for _, l := range layers {
			p := LayerProgress{ID: ShortID(l.Digest), Digest: l.Digest, Total: l.Size}
			st, downloading := active[l.Digest]
			switch {
			case existed[l.Digest]:
				p.Status, p.Current = StatusAlreadyExists, l.Size
			case done:
				p.Status, p.Current = StatusPullComplete, l.Size
			case downloading:
				p.Status, p.Current = StatusDownloading, st.Offset
			case blobExists(ctx, cs, l.Digest):
				p.Status, p.Current = StatusDownloadComplete, l.Size
			default:
				p.Status = StatusWaiting
			}
			out = append(out, p)
		}
		return out
	}
}

func blobExists(ctx context.Context, cs content.InfoProvider, d digest.Digest) bool {
	_, err := cs.Info(ctx, d)
	return err == nil
}

// pushState is each layer's state in a push: from the pusher's tracker.
func (t *layerTracker) pushState(tracker docker.StatusTracker) func(context.Context) []LayerProgress {
	return func(ctx context.Context) []LayerProgress {
		t.mu.Lock()
		layers, done := append([]ocispec.Descriptor(nil), t.layers...), t.done
		t.mu.Unlock()
		out := make([]LayerProgress, 0, len(layers))
		for _, l := range layers {
			p := LayerProgress{ID: ShortID(l.Digest), Digest: l.Digest, Total: l.Size}
			st, err := tracker.GetStatus(remotes.MakeRefKey(ctx, l))
			switch {
			case err == nil && st.Exists:
				p.Status, p.Current = StatusLayerExists, l.Size
			case err == nil && st.MountedFrom != "":
				p.Status, p.Current = StatusMounted+" "+mountSource(st.MountedFrom), l.Size
			case (err == nil && st.Committed) || done:
				p.Status, p.Current = StatusPushed, l.Size
			case err == nil:
				p.Status, p.Current = StatusPushing, st.Offset
			case errdefs.IsNotFound(err):
				p.Status = StatusPreparing
			}
			out = append(out, p)
		}
		return out
	}
}

// existing records the layers of the image pulled that no handler met:
// they were in the store already.
func (t *layerTracker) existing(layers []ocispec.Descriptor) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range layers {
		if !t.seen[l.Digest] {
			t.seen[l.Digest] = true
			t.existed[l.Digest] = true
			t.layers = append(t.layers, l)
		}
	}
}

// finish marks the pull or push done, for the last report.
func (t *layerTracker) finish() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}

// mountSource is the repository a cross-repository mount came from, as
// docker names it ("berthtest/busybox"), from the tracker's
// "127.0.0.1:5000/berthtest/busybox".
func mountSource(from string) string {
	if _, path, ok := strings.Cut(from, "/"); ok {
		return path
	}
	return from
}
