package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSystemCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Manage berth's own containerd",
		Args:  noArgs,
	}
	info := newInfoCommand(g)
	info.Short = "Show how berth and its containerd are set up (as `berth info`)"
	cmd.AddCommand(
		&cobra.Command{
			Use: "start", Short: "Start berth's containerd unless it runs", Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				m, err := g.managed()
				if err != nil {
					return err
				}
				pid, started, err := m.Start(cmd.Context())
				if err != nil {
					return err
				}
				if started {
					fmt.Fprintf(g.stderr, "berth: started containerd (pid %d, socket %s)\n", pid, m.Socket())
				} else {
					fmt.Fprintf(g.stdout, "containerd already running (pid %d, socket %s)\n", pid, m.Socket())
				}
				return nil
			},
		},
		&cobra.Command{
			Use: "stop", Short: "Stop berth's containerd (SIGTERM, then SIGKILL after containerd.stop_timeout)", Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				m, err := g.managed()
				if err != nil {
					return err
				}
				pid, err := m.Stop(cmd.Context())
				if err != nil {
					return err
				}
				if pid == 0 {
					fmt.Fprintln(g.stdout, "containerd was not running")
				} else {
					fmt.Fprintf(g.stdout, "stopped containerd (pid %d)\n", pid)
				}
				return nil
			},
		},
		&cobra.Command{
			Use: "status", Short: "Say whether berth's containerd runs", Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				m, err := g.managed()
				if err != nil {
					return err
				}
				st, err := m.Status(cmd.Context())
				if err != nil {
					return err
				}
				state := "not running"
				if st.Running {
					state = fmt.Sprintf("running (pid %d)", st.Pid)
					if !st.Answers {
						state += ", not answering"
					}
				}
				fmt.Fprintf(g.stdout, "containerd: %s\nsocket:     %s\nroot:       %s\nstate:      %s\nlog:        %s\n",
					state, st.Socket, st.Root, st.State, st.Log)
				return nil
			},
		},
		info,
		newSystemPruneCommand(g),
	)
	return cmd
}
