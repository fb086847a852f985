package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/build"
)

type buildOptions struct {
	tags, buildArgs, labels []string
	file, target, network   string
	progress, iidFile       string
	noCache, pull, quiet    bool
}

// newBuildCommand is `build` (and `image build`): a Dockerfile built by
// package build through berth's containerd.
func newBuildCommand(g *globalOptions) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.options(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return g.build(ctx, client, opts, o)
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "name and optionally a tag in the 'name:tag' format")
	f.StringVarP(&o.file, "file", "f", "", "name of the Dockerfile (default: PATH/Dockerfile; - for stdin)")
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "set build-time variables")
	f.StringArrayVar(&o.labels, "label", nil, "set metadata for an image")
	f.StringVar(&o.target, "target", "", "set the target build stage to build")
	f.BoolVar(&o.noCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&o.pull, "pull", false, "always attempt to pull a newer version of the base images")
	f.StringVar(&o.network, "network", "default", "networking mode for the RUN instructions: default (berth.toml's default network, bridge), bridge, host, none, or a network's name")
	f.StringVar(&o.progress, "progress", "auto", "type of progress output: auto, plain or quiet")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "suppress the build output and print the image ID on success")
	f.StringVar(&o.iidFile, "iidfile", "", "write the image ID to the file")
	return cmd
}

// options turns the flags and PATH into build.Options.
func (o *buildOptions) options(stdin io.Reader, contextArg string) (build.Options, error) {
	opts := build.Options{Target: o.target, NoCache: o.noCache, Pull: o.pull, Network: o.network, Tags: o.tags}
	switch o.progress {
	case "auto", "plain", "tty":
	case "quiet":
		o.quiet = true
	default:
		return opts, usageError{fmt.Errorf("--progress=%s: use auto, plain or quiet", o.progress)}
	}
	var err error
	if opts.BuildArgs, err = buildArgs(o.buildArgs); err != nil {
		return opts, err
	}
	if opts.Labels, err = keyValues("--label", o.labels); err != nil {
		return opts, err
	}
	file := o.file
	if contextArg == "-" {
		if file != "" && file != "-" {
			return opts, usageError{errors.New("with the Dockerfile on stdin (PATH -), -f cannot name another")}
		}
		file = "-"
	} else {
		opts.ContextDir = contextArg
		if file == "" {
			file = filepath.Join(contextArg, "Dockerfile")
		}
	}
	if file == "-" {
		opts.DockerfileName = "Dockerfile (stdin)"
		opts.Dockerfile, err = io.ReadAll(stdin)
	} else {
		opts.DockerfileName = file
		opts.Dockerfile, err = os.ReadFile(file)
	}
	if err != nil {
		return opts, fmt.Errorf("read the Dockerfile %s: %w", opts.DockerfileName, err)
	}
	return opts, nil
}

// buildArgs parses --build-arg K=V; a bare K takes $K, as docker's, and
// is left out when $K is unset.
func buildArgs(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, usageError{fmt.Errorf("--build-arg %q: want NAME=VALUE or NAME", kv)}
		}
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		m[k] = v
	}
	return m, nil
}

// build runs the build with berth's runtime and the registry settings of
// pull, and writes docker's closing lines (or, -q, only the ID).
func (g *globalOptions) build(ctx context.Context, client *containerd.Client, opts build.Options, o buildOptions) error {
	opts.Runtime, opts.RuntimeOptions = g.runtime()
	if opts.Network == "default" || opts.Network == "" {
		opts.Network = g.cfg.CNI.DefaultNetwork
	}
	opts.Networks, opts.NetNSDir, opts.DataRoot = g.networkConfig(), g.netnsDir(), g.cfg.DataRoot
	opts.Out, opts.Quiet = g.stdout, o.quiet
	if o.quiet {
		opts.Out = io.Discard
	}
	opts.Puller = func(ctx context.Context, ref string) error {
		_, err := pullImage(ctx, g, client, ref, opts.Out, o.quiet)
		return err
	}
	res, err := build.Build(ctx, client, opts)
	if err != nil {
		fmt.Fprintf(g.stderr, "berth: build: %v\n", err)
		return statusError{1}
	}
	if o.quiet {
		fmt.Fprintln(g.stdout, res.ID)
	}
	if o.iidFile != "" {
		if err := os.WriteFile(o.iidFile, []byte(res.ID.String()), 0o644); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	return nil
}

// newBuilderCommand is `builder prune`: the build cache emptied.
func newBuilderCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage the build cache", Args: exactArgs(0)}
	var force bool
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove the build cache",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !confirm(cmd.InOrStdin(), g.stdout, "WARNING! This will remove all build cache.") {
				return nil
			}
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				res, err := build.Prune(ctx, client)
				if err != nil {
					return err
				}
				if len(res.Entries) > 0 {
					fmt.Fprintln(g.stdout, "Deleted build cache objects:")
					for _, e := range res.Entries {
						fmt.Fprintln(g.stdout, e.Encoded()[:25])
					}
					fmt.Fprintln(g.stdout)
				}
				fmt.Fprintf(g.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Reclaimed)))
				return nil
			})
		},
	}
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.AddCommand(prune)
	return cmd
}
