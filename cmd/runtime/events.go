package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/libcontainer/events"
)

func eventsCmd(g *globals) *cobra.Command {
	var statsOnce bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [--stats] [--interval 5s] CONTAINER_ID",
		Short: "print a container's resource usage every interval and its OOM events, as JSON lines",
		Long: `events prints one JSON object per line, in runc's format:
  {"type":"stats","id":ID,"data":{...}} every --interval, and
  {"type":"oom","id":ID} each time the container runs out of memory.
It returns when the container stops. With --stats it prints the stats once.`,
		Args: exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, not %v", interval)
			}
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			if c.Status() == libcontainer.Stopped {
				return fmt.Errorf("container %s: %w", c.ID(), libcontainer.ErrNotRunning)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			if statsOnce {
				s, err := c.Stats()
				if err != nil {
					return err
				}
				return enc.Encode(events.Event{Type: events.TypeStats, ID: c.ID(), Data: s})
			}
			stream, err := c.Events(cmd.Context(), interval, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			for e := range stream {
				if err := enc.Encode(e); err != nil {
					return fmt.Errorf("write event: %w", err)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&statsOnce, "stats", false, "print the container's stats once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between two stats")
	return cmd
}
