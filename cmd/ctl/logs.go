package main

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
	"github.com/berthrt/berth/logs"
)

type logsOptions struct {
	follow, timestamps bool
	tail, since, until string
}

// toLogs turns the flags into logs.Options; a bad value is a usage error
// naming the flag.
func (o logsOptions) toLogs(now time.Time) (logs.Options, error) {
	opts := logs.Options{Follow: o.follow, Timestamps: o.timestamps}
	var err error
	if opts.Tail, err = logs.ParseTail(o.tail); err != nil {
		return opts, usageError{err}
	}
	if opts.Since, err = logs.ParseTime("since", o.since, now); err != nil {
		return opts, usageError{err}
	}
	if opts.Until, err = logs.ParseTime("until", o.until, now); err != nil {
		return opts, usageError{err}
	}
	return opts, nil
}

func newLogsCommand(g *globalOptions) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%q requires exactly 1 argument, the container", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.toLogs(time.Now())
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				ctr, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				return logs.ContainerLogs(ctx, client, ctr, opts, g.stdout, g.stderr)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "follow log output")
	f.StringVar(&o.since, "since", "", "show logs since a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.StringVarP(&o.tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVar(&o.until, "until", "", "show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	return cmd
}
