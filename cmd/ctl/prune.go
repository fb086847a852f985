package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/containers"
	"github.com/berthrt/berth/images"
	"github.com/berthrt/berth/volumes"
)

type systemPruneOptions struct {
	all, force, volumes bool
}

// newSystemPruneCommand is docker's `system prune`: the prunes of each
// noun, in the order that frees the most (containers first, so that their
// networks, images and volumes are unused next).
func newSystemPruneCommand(g *globalOptions) *cobra.Command {
	var o systemPruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove stopped containers, unused networks, dangling (with -a: unused) images and, with --volumes, anonymous volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.force && !confirm(cmd.InOrStdin(), g.stdout, systemPruneWarning(o)) {
				return nil
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return g.systemPrune(ctx, client, o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "remove all unused images, not just dangling ones")
	f.BoolVarP(&o.force, "force", "f", false, "do not prompt for confirmation")
	f.BoolVar(&o.volumes, "volumes", false, "prune anonymous volumes")
	return cmd
}

func systemPruneWarning(o systemPruneOptions) string {
	lines := []string{"WARNING! This will remove:", "  - all stopped containers", "  - all networks not used by at least one container"}
	if o.volumes {
		lines = append(lines, "  - all anonymous volumes not used by at least one container")
	}
	if o.all {
		lines = append(lines, "  - all images without at least one container associated to them")
	} else {
		lines = append(lines, "  - all dangling images")
	}
	return strings.Join(lines, "\n") + "\n"
}

// systemPrune runs each prune and reports what went, going on after a
// failed one so that one stuck object does not keep the rest.
func (g *globalOptions) systemPrune(ctx context.Context, client *containerd.Client, o systemPruneOptions) error {
	var errs []error
	removed, err := containers.Prune(ctx, client, g.cfg.DataRoot)
	errs = append(errs, err)
	writeDeleted(g.stdout, "Deleted Containers:", removed)

	nets, err := g.networks().Prune(ctx, cni.PruneOptions{}, cni.ContainerUsers{Client: client})
	errs = append(errs, err)
	writeDeleted(g.stdout, "Deleted Networks:", nets)

	var reclaimed uint64
	if o.volumes {
		rep, err := volumes.NewStore(g.cfg.DataRoot).Prune(ctx, volumes.PruneOptions{}, volumes.ContainerUsers{Client: client})
		errs = append(errs, err)
		writeDeleted(g.stdout, "Deleted Volumes:", rep.Deleted)
		reclaimed += uint64(rep.SpaceReclaimed)
	}

	rep, err := images.Prune(ctx, client, images.PruneOptions{All: o.all})
	errs = append(errs, err)
	writeDeleted(g.stdout, "Deleted Images:", deletedImages(rep.ImagesDeleted))
	reclaimed += uint64(rep.SpaceReclaimed)
	fmt.Fprintf(g.stdout, "Total reclaimed space: %s\n", units.HumanSizeWithPrecision(float64(reclaimed), 3))
	return errors.Join(errs...)
}

// writeDeleted writes what a prune removed as docker's prunes do: a
// title, a line each, a blank line; nothing when nothing went.
func writeDeleted(w io.Writer, title string, names []string) {
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	for _, n := range names {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintln(w)
}

// deletedImages are an image prune's lines: "untagged: NAME" or
// "deleted: ID".
func deletedImages(items []images.DeleteItem) []string {
	var lines []string
	for _, it := range items {
		if it.Untagged != "" {
			lines = append(lines, "untagged: "+it.Untagged)
		} else {
			lines = append(lines, "deleted: "+it.Deleted)
		}
	}
	return lines
}
