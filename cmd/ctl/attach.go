package main

import (
	"context"
	"errors"
	"os"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
)

type attachOptions struct {
	detachKeys string
	noStdin    bool
}

func newAttachCommand(g *globalOptions) *cobra.Command {
	var o attachOptions
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := containers.ParseDetachKeys(o.detachKeys)
			if err != nil {
				return usageError{err}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return g.attach(ctx, client, args[0], keys, !o.noStdin)
			})
		},
	}
	cmd.Flags().StringVar(&o.detachKeys, "detach-keys", "", "override the key sequence for detaching a container (default ctrl-p,ctrl-q)")
	cmd.Flags().BoolVar(&o.noStdin, "no-stdin", false, "do not attach STDIN")
	return cmd
}

// attach is `berth attach`: the container's output from its log, berth's
// stdin to its stdin (-i), a raw terminal kept in size (-t), until it
// exits (its status) or the detach keys.
func (g *globalOptions) attach(ctx context.Context, client *containerd.Client, ref string, keys []byte, withStdin bool) error {
	c, err := containers.Resolve(ctx, client, ref)
	if err != nil {
		return err
	}
	info, err := containers.Inspect(ctx, client, c.ID(), containers.InspectOptions{})
	if err != nil {
		return err
	}
	withStdin = withStdin && info.Config.OpenStdin
	term, err := g.terminal(info.Config.Tty, withStdin, false)
	if err != nil {
		return err
	}
	opts := containers.AttachOptions{DetachKeys: keys, DataRoot: g.cfg.DataRoot}
	if withStdin {
		opts.Stdin = os.Stdin
	}
	stop := func() {}
	if task, err := c.Task(ctx, nil); err == nil { // else Attach says it is not running
		stop = term.relay(ctx, runningTask{task})
	}
	code, err := containers.Attach(ctx, client, c, opts, g.stdout, g.stderr)
	stop()
	switch {
	case errors.Is(err, containers.ErrDetached):
		return nil
	case err != nil:
		return err
	case code != 0:
		return statusError{code}
	}
	return nil
}

// runningTask is a container's task as terminal.relay wants it.
type runningTask struct{ task containerd.Task }

func (t runningTask) Resize(ctx context.Context, width, height uint32) error {
	return t.task.Resize(ctx, width, height)
}

func (t runningTask) Kill(ctx context.Context, sig syscall.Signal) error {
	return t.task.Kill(ctx, sig)
}
