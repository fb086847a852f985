package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/berthrt/berth/images"
)

// TestPlainProgress: on a pipe, a layer gets a line each time its state
// changes, not one per report.
func TestPlainProgress(t *testing.T) {
	var out bytes.Buffer
	p := newLayerProgress(context.Background(), &out, false)
	a := images.LayerProgress{ID: "aaaaaaaaaaaa", Digest: "sha256:aa", Total: 10}
	b := images.LayerProgress{ID: "bbbbbbbbbbbb", Digest: "sha256:bb", Total: 10}
	step := func(sa, sb string, cur int64) {
		a.Status, b.Status, a.Current = sa, sb, cur
		p.report([]images.LayerProgress{a, b})
	}
	step(images.StatusWaiting, images.StatusAlreadyExists, 0)
	step(images.StatusDownloading, images.StatusAlreadyExists, 3)
	step(images.StatusDownloading, images.StatusAlreadyExists, 7)
	step(images.StatusPullComplete, images.StatusAlreadyExists, 10)
	p.wait()
	want := "aaaaaaaaaaaa: Waiting\nbbbbbbbbbbbb: Already exists\naaaaaaaaaaaa: Downloading\naaaaaaaaaaaa: Pull complete\n"
	if out.String() != want {
		t.Fatalf("plain progress:\n%s\nwant:\n%s", out.String(), want)
	}
	var quiet bytes.Buffer
	if q := newLayerProgress(context.Background(), &quiet, true); q.report != nil {
		t.Fatalf("quiet progress reports")
	}
}
