package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/containers"
)

func newCpCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cp CONTAINER:SRC_PATH DEST_PATH | SRC_PATH CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src, srcIn := strings.Cut(args[0], ":")
			dstCtr, dst, dstIn := strings.Cut(args[1], ":")
			if srcIn == dstIn {
				return usageError{errors.New("cp: exactly one of the paths must be in a container, as CONTAINER:PATH")}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				if srcIn {
					c, err := containers.Resolve(ctx, client, srcCtr)
					if err != nil {
						return err
					}
					return containers.CopyFrom(ctx, client, c, src, args[1])
				}
				c, err := containers.Resolve(ctx, client, dstCtr)
				if err != nil {
					return err
				}
				return containers.CopyTo(ctx, client, c, args[0], dst)
			})
		},
	}
}

func newDiffCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use: "diff CONTAINER", Short: "Inspect changes to files or directories on a container's filesystem", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				changes, err := containers.Diff(ctx, client, c)
				for _, ch := range changes {
					fmt.Fprintf(g.stdout, "%s %s\n", ch.Kind, ch.Path)
				}
				return err
			})
		},
	}
}

func newExportCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "export [OPTIONS] CONTAINER", Short: "Export a container's filesystem as a tar archive", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = g.stdout
			// A reader that goes away (export | head) must not kill
			// berth with the rootfs still mounted: EPIPE instead.
			signal.Ignore(unix.SIGPIPE)
			if output == "" {
				if f, ok := w.(*os.File); ok && isTerminal(f) {
					return usageError{errors.New("cowardly refusing to save to a terminal: use -o or redirect the output")}
				}
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				if output != "" {
					f, err := os.Create(output)
					if err != nil {
						return fmt.Errorf("export: %w", err)
					}
					defer f.Close()
					w = f
				}
				return containers.Export(ctx, client, c, w)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}
