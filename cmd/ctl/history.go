package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
	"github.com/berthrt/berth/images"
)

type historyOptions struct {
	human, noTrunc, quiet bool
	format                string
}

func newHistoryCommand(g *globalOptions) *cobra.Command {
	var o historyOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				rows, err := images.History(ctx, client, args[0])
				if err != nil {
					return err
				}
				return writeHistory(g.stdout, rows, o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.human, "human", "H", true, "print sizes and dates in human readable format")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only show image IDs")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	return cmd
}

// createdByWidth is where docker cuts CREATED BY.
const createdByWidth = 45

// writeHistory writes docker's history table, the IDs (-q) or each row
// through --format.
func writeHistory(w io.Writer, rows []images.HistoryRow, o historyOptions) error {
	for i := range rows {
		r := &rows[i]
		if !o.noTrunc && r.ID != "<missing>" {
			r.ID = images.ShortID(digest.Digest(r.ID))
		}
		if !o.noTrunc && len([]rune(r.CreatedBy)) > createdByWidth {
			r.CreatedBy = string([]rune(r.CreatedBy)[:createdByWidth-1]) + "…"
		}
		if !o.human {
			r.CreatedSince = r.CreatedAt.Format(time.RFC3339)
		}
	}
	size := func(r images.HistoryRow) string {
		if o.human {
			return units.HumanSizeWithPrecision(float64(r.Size), 3)
		}
		return strconv.FormatInt(r.Size, 10)
	}
	switch {
	case o.quiet:
		for _, r := range rows {
			fmt.Fprintln(w, r.ID)
		}
		return nil
	case o.format != "":
		for _, r := range rows {
			if err := writeFormat(w, o.format, r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedSince, r.CreatedBy, size(r), r.Comment)
	}
	return tw.Flush()
}

type imagePruneOptions struct{ all, force bool }

func newImagePruneCommand(g *globalOptions) *cobra.Command {
	var o imagePruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.force {
				warning := "WARNING! This will remove all dangling images."
				if o.all {
					warning = "WARNING! This will remove all images without at least one container associated to them."
				}
				if !confirm(cmd.InOrStdin(), g.stdout, warning) {
					return nil
				}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				report, err := images.Prune(ctx, client, images.PruneOptions{All: o.all})
				writeDeleted(g.stdout, "Deleted Images:", deletedImages(report.ImagesDeleted))
				fmt.Fprintf(g.stdout, "Total reclaimed space: %s\n", units.HumanSizeWithPrecision(float64(report.SpaceReclaimed), 3))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "remove all unused images, not just dangling ones")
	f.BoolVarP(&o.force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// confirm asks docker's question after warning and says whether the
// answer was yes; no answer (EOF) is no.
func confirm(in io.Reader, out io.Writer, warning string) bool {
	fmt.Fprintf(out, "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	if answer != "y" && answer != "yes" {
		fmt.Fprintln(out)
		return false
	}
	return true
}

type commitOptions struct {
	images.CommitOptions
	pause bool
}

func newCommitCommand(g *globalOptions) *cobra.Command {
	var o commitOptions
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				o.Name = args[1]
			}
			o.NoPause = !o.pause
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				id, err := images.Commit(ctx, client, c, o.CommitOptions)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, id)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Author, "author", "a", "", `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)")
	f.StringVarP(&o.Message, "message", "m", "", "commit message")
	f.BoolVarP(&o.pause, "pause", "p", true, "pause the container during commit")
	return cmd
}
