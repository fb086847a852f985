package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthrt/berth/containers"
)

type execOptions struct {
	interactive, tty, detach bool
	env                      []string
	workdir, user            string
}

func newExecCommand(g *globalOptions) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", Short: "Execute a command in a running container", Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return g.exec(ctx, client, args[0], args[1:], o)
			})
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep STDIN open")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVarP(&o.detach, "detach", "d", false, "detached mode: run the command in the background")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set environment variables")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	return cmd
}

func (g *globalOptions) exec(ctx context.Context, client *containerd.Client, ref string, args []string, o execOptions) error {
	for _, e := range o.env {
		if name, _, _ := strings.Cut(e, "="); name == "" {
			return usageError{fmt.Errorf("invalid -e %q: want NAME=VALUE", e)}
		}
	}
	c, err := containers.Resolve(ctx, client, ref)
	if err != nil {
		return err
	}
	term, err := g.terminal(o.tty, o.interactive, o.detach)
	if err != nil {
		return err
	}
	var streams *containers.Streams
	if !o.detach {
		streams = term.streams(g)
	}
	p, err := containers.Exec(ctx, client, c, containers.ExecOptions{Cmd: args, Env: o.env, Workdir: o.workdir, User: o.user, Tty: o.tty, Detach: o.detach,
		ConsoleSize: term.size()}, streams)
	if err != nil {
		var exit *containers.ExitError
		if errors.As(err, &exit) {
			fmt.Fprintf(g.stderr, "berth: %v\n", err)
			return statusError{exit.Code}
		}
		return err
	}
	if o.detach {
		return nil
	}
	stop := term.relay(ctx, p)
	code, err := p.Wait(context.WithoutCancel(ctx))
	stop()
	if err != nil {
		return err
	}
	if code != 0 {
		return statusError{code}
	}
	return nil
}

func newTopCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use: "top CONTAINER [ps OPTIONS]", Short: "Display the running processes of a container", Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				out, err := containers.Top(ctx, c, args[1:])
				fmt.Fprint(g.stdout, out)
				return err
			})
		},
	}
}

func newRenameCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use: "rename CONTAINER NEW_NAME", Short: "Rename a container", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				return containers.Rename(ctx, client, c, args[1], g.cfg.DataRoot)
			})
		},
	}
}

func newContainerPruneCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "Remove all stopped containers", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				if f, ok := cmd.InOrStdin().(*os.File); !ok || !isTerminal(f) {
					return usageError{errors.New("container prune removes every stopped container: confirm with -f (stdin is not a terminal to ask on)")}
				}
				fmt.Fprint(g.stdout, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
				var answer string
				fmt.Fscanln(cmd.InOrStdin(), &answer)
				if answer != "y" && answer != "Y" {
					return nil
				}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				removed, err := containers.Prune(ctx, client, g.cfg.DataRoot)
				writeDeleted(g.stdout, "Deleted Containers:", removed)
				fmt.Fprintln(g.stdout, "Total reclaimed space: 0B")
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

func newUpdateCommand(g *globalOptions) *cobra.Command {
	var f containers.UpdateFlags
	var cmd *cobra.Command
	cmd = g.containerCommand("update [OPTIONS] CONTAINER [CONTAINER...]", "Update the resource limits and restart policy of one or more containers",
		func(ctx context.Context, client *containerd.Client, c containerd.Container) error {
			f.Set = map[string]bool{}
			cmd.Flags().Visit(func(fl *pflag.Flag) { f.Set[fl.Name] = true })
			f.PidsLimitSet = f.Set["pids-limit"]
			f.Address = g.containerdAddress().Path
			err := containers.Update(ctx, client, c, f)
			if errors.Is(err, errdefs.ErrInvalidArgument) {
				return usageError{err}
			}
			return err
		})
	fs := cmd.Flags()
	fs.StringVarP(&f.Memory, "memory", "m", "", "memory limit")
	fs.StringVar(&f.MemorySwap, "memory-swap", "", "memory plus swap limit (-1: unlimited swap)")
	fs.StringVar(&f.MemoryReservation, "memory-reservation", "", "memory soft limit")
	fs.Int64VarP(&f.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&f.CPUs, "cpus", "", "number of CPUs")
	fs.Int64Var(&f.CPUQuota, "cpu-quota", 0, "limit CPU CFS quota (microseconds)")
	fs.Int64Var(&f.CPUPeriod, "cpu-period", 0, "limit CPU CFS period (microseconds)")
	fs.StringVar(&f.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.Uint16Var(&f.BlkioWeight, "blkio-weight", 0, "block IO relative weight, 10 to 1000")
	fs.Int64Var(&f.PidsLimit, "pids-limit", 0, "tune the container's pids limit (-1: unlimited)")
	fs.StringVar(&f.Restart, "restart", "", "restart policy: no, always, unless-stopped, on-failure[:N]")
	return cmd
}
