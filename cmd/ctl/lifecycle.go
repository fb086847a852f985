package main

import (
	"context"
	"errors"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
)

// eachContainer runs fn on each container args name, printing the name
// as given after each success, as docker's stop, kill, rm … do.
func (g *globalOptions) eachContainer(ctx context.Context, client *containerd.Client, args []string, fn func(c containerd.Container) error) error {
	var errs []error
	for _, ref := range args {
		c, err := containers.Resolve(ctx, client, ref)
		if err == nil {
			err = fn(c)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(g.stdout, ref)
	}
	return errors.Join(errs...)
}

// containerCommand is a command that acts on one or more containers.
func (g *globalOptions) containerCommand(use, short string, fn func(ctx context.Context, client *containerd.Client, c containerd.Container) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return g.eachContainer(ctx, client, args, func(c containerd.Container) error { return fn(ctx, client, c) })
			})
		},
	}
}

func newStopCommand(g *globalOptions, restart bool) *cobra.Command {
	var timeout int
	use, short := "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers"
	if restart {
		use, short = "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers"
	}
	var cmd *cobra.Command
	cmd = g.containerCommand(use, short, func(ctx context.Context, client *containerd.Client, c containerd.Container) error {
		var opts containers.StopOptions
		if cmd.Flags().Changed("time") {
			opts.Timeout = &timeout
		}
		if err := containers.Stop(ctx, client, c, opts); err != nil || !restart {
			return err
		}
		_, err := containers.Start(ctx, client, c.ID(), containers.StartOptions{DataRoot: g.cfg.DataRoot})
		return err
	})
	cmd.Flags().IntVarP(&timeout, "time", "t", containers.DefaultStopTimeout, "seconds to wait before killing the container")
	return cmd
}

func newKillCommand(g *globalOptions) *cobra.Command {
	var sig string
	cmd := g.containerCommand("kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
		func(ctx context.Context, _ *containerd.Client, c containerd.Container) error {
			return containers.Kill(ctx, c, sig)
		})
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}

func newRmCommand(g *globalOptions) *cobra.Command {
	var o containers.RemoveOptions
	cmd := g.containerCommand("rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
		func(ctx context.Context, client *containerd.Client, c containerd.Container) error {
			o.DataRoot = g.cfg.DataRoot
			return containers.Remove(ctx, client, c.ID(), o)
		})
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func newPauseCommand(g *globalOptions, pause bool) *cobra.Command {
	if pause {
		return g.containerCommand("pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
			func(ctx context.Context, _ *containerd.Client, c containerd.Container) error {
				return containers.Pause(ctx, c)
			})
	}
	return g.containerCommand("unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
		func(ctx context.Context, _ *containerd.Client, c containerd.Container) error {
			return containers.Unpause(ctx, c)
		})
}

func newWaitCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use: "wait CONTAINER [CONTAINER...]", Short: "Block until one or more containers stop, then print their exit codes", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				var errs []error
				for _, ref := range args {
					c, err := containers.Resolve(ctx, client, ref)
					if err == nil {
						var code int
						if code, err = containers.Wait(ctx, client, c); err == nil {
							fmt.Fprintln(g.stdout, code)
						}
					}
					errs = append(errs, err)
				}
				return errors.Join(errs...)
			})
		},
	}
}

type startOptions struct{ attach, interactive bool }

func newStartCommand(g *globalOptions) *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use: "start [OPTIONS] CONTAINER [CONTAINER...]", Short: "Start one or more stopped containers", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				if o.attach || o.interactive {
					if len(args) > 1 {
						return usageError{errors.New("you cannot start and attach multiple containers at once")}
					}
					return g.startAttached(ctx, client, args[0], o.interactive)
				}
				return g.eachContainer(ctx, client, args, func(c containerd.Container) error {
					_, err := containers.Start(ctx, client, c.ID(), containers.StartOptions{DataRoot: g.cfg.DataRoot})
					if errors.Is(err, containers.ErrAlreadyRunning) {
						return nil // docker's start of a running container succeeds
					}
					return err
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&o.attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&o.interactive, "interactive", "i", false, "attach the container's STDIN")
	return cmd
}

// startAttached is `start -a [-i]`: the container's stdio on berth's,
// ending with its exit status.
func (g *globalOptions) startAttached(ctx context.Context, client *containerd.Client, ref string, interactive bool) error {
	c, err := containers.Resolve(ctx, client, ref)
	if err != nil {
		return err
	}
	info, err := containers.Inspect(ctx, client, c.ID(), containers.InspectOptions{})
	if err != nil {
		return err
	}
	term, err := g.terminal(info.Config.Tty, interactive && info.Config.OpenStdin, false)
	if err != nil {
		return err
	}
	return g.attachAndWait(ctx, client, c.ID(), info.HostConfig.AutoRemove, term)
}
