package main

import (
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/libcontainer"
)

func pauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER_ID",
		Short: "freeze every process of a running container",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func resumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume CONTAINER_ID",
		Short: "thaw a paused container",
		Args:  exactArgs(1, "exactly one container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := libcontainer.Load(g.root, args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}
