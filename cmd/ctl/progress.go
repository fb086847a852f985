package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/containerd/console"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/berthrt/berth/images"
)

// layerProgress shows a pull's or push's layers as docker does: one bar
// per layer on a terminal, a line per change of state on a pipe. report
// is the images.ProgressFunc; wait returns once the bars are drawn for
// the last time.
type layerProgress struct {
	report images.ProgressFunc
	wait   func()
}

// newLayerProgress writes to w; quiet shows nothing.
func newLayerProgress(ctx context.Context, w io.Writer, quiet bool) layerProgress {
	switch {
	case quiet:
		return layerProgress{report: nil, wait: func() {}}
	case hasTerminalSize(w):
		return newBarProgress(ctx, w)
	}
	last := map[digest.Digest]string{}
	return layerProgress{
		report: func(layers []images.LayerProgress) {
			for _, l := range layers {
				if last[l.Digest] != l.Status {
					last[l.Digest] = l.Status
					fmt.Fprintf(w, "%s: %s\n", l.ID, l.Status)
				}
			}
		},
		wait: func() {},
	}
}

// hasTerminalSize says whether w is a terminal with a size: the bars
// need one (a pty nobody sized, 0x0, would show nothing), else lines.
func hasTerminalSize(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	c, err := console.ConsoleFromFile(f)
	if err != nil {
		return false
	}
	size, err := c.Size()
	return err == nil && size.Width > 0 && size.Height > 0
}

// layerBar is one layer's bar and the status it shows.
type layerBar struct {
	bar    *mpb.Bar
	status atomic.Value // string
}

// finished says whether a status ends a layer's bar.
func finished(status string) bool {
	if strings.HasPrefix(status, images.StatusMounted) {
		return true
	}
	switch status {
	case images.StatusAlreadyExists, images.StatusPullComplete, images.StatusPushed, images.StatusLayerExists:
		return true
	}
	return false
}

func newBarProgress(ctx context.Context, w io.Writer) layerProgress {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(50), mpb.WithAutoRefresh())
	bars := map[digest.Digest]*layerBar{}
	report := func(layers []images.LayerProgress) {
		for _, l := range layers {
			lb, ok := bars[l.Digest]
			if !ok {
				lb = &layerBar{}
				lb.status.Store(l.Status)
				id := l.ID
				// Total 0 at first: the bar ends only when told to
				// (SetTotal(…, true)), not when all bytes are in.
				lb.bar = p.AddBar(0,
					mpb.BarFillerClearOnComplete(),
					mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
						return id + ": " + lb.status.Load().(string)
					}, decor.WCSyncSpaceR)),
					mpb.AppendDecorators(decor.OnComplete(decor.Any(func(s decor.Statistics) string {
						return units.HumanSize(float64(s.Current)) + "/" + units.HumanSize(float64(s.Total))
					}), "")),
				)
				lb.bar.SetTotal(max(l.Total, 1), false)
				bars[l.Digest] = lb
			}
			lb.status.Store(l.Status)
			if lb.bar.Completed() {
				continue
			}
			if finished(l.Status) {
				lb.bar.SetTotal(max(l.Total, 1), true)
				continue
			}
			lb.bar.SetCurrent(l.Current)
		}
	}
	wait := func() {
		for _, lb := range bars {
			if !lb.bar.Completed() {
				lb.bar.Abort(false)
			}
		}
		p.Wait()
	}
	return layerProgress{report: report, wait: wait}
}
