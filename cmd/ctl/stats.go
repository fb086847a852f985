package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
)

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

// statsInterval is the span each CPU % is measured over, docker's.
const statsInterval = time.Second

func newStatsCommand(g *globalOptions) *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use: "stats [OPTIONS] [CONTAINER...]", Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				cs, err := statsContainers(ctx, client, args, o.all)
				if err != nil {
					return err
				}
				for {
					rows, err := containers.Stats(ctx, cs, statsInterval)
					if errors.Is(err, context.Canceled) {
						return nil // Ctrl-C ends the stream
					} else if err != nil {
						return err
					}
					if !o.noStream {
						fmt.Fprint(g.stdout, "\033[2J\033[H") // docker redraws the screen
					}
					if err := writeStats(g.stdout, rows, o); err != nil || o.noStream {
						return err
					}
				}
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&o.noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate output")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	return cmd
}

// statsContainers are the containers args name, else the running ones
// (every one with -a).
func statsContainers(ctx context.Context, client *containerd.Client, args []string, all bool) ([]containerd.Container, error) {
	if len(args) == 0 {
		rows, err := containers.List(ctx, client, containers.ListOptions{All: all})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			args = append(args, r.ID)
		}
	}
	var cs []containerd.Container
	for _, ref := range args {
		c, err := containers.Resolve(ctx, client, ref)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func writeStats(w io.Writer, rows []containers.StatsEntry, o statsOptions) error {
	if !o.noTrunc {
		for i := range rows {
			rows[i].ID = containers.ShortID(rows[i].ID)
		}
	}
	if o.format != "" {
		for _, r := range rows {
			if err := writeFormat(w, o.format, r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs)
	}
	return tw.Flush()
}
