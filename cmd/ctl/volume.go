package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	containerd "github.com/containerd/containerd/v2/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/volumes"
)

func newVolumeCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: noArgs}
	cmd.AddCommand(newVolumeCreateCommand(g), newVolumeListCommand(g), newVolumeInspectCommand(g),
		newVolumeRemoveCommand(g), newVolumePruneCommand(g))
	return cmd
}

// withVolumes runs fn with the volume store and the users of volumes
// (the containers in containerd that mount them).
func (g *globalOptions) withVolumes(cmd *cobra.Command, fn func(ctx context.Context, s *volumes.Store, users volumes.Users) error) error {
	return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
		return fn(ctx, volumes.NewStore(g.cfg.DataRoot), volumes.ContainerUsers{Client: client})
	})
}

func newVolumeCreateCommand(g *globalOptions) *cobra.Command {
	var o volumes.CreateOptions
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if o.Name != "" && o.Name != args[0] {
					return usageError{fmt.Errorf("conflicting options: either specify --name or provide positional arg, not both")}
				}
				o.Name = args[0]
			}
			var err error
			if o.Labels, err = keyValues("--label", labels); err != nil {
				return err
			}
			if o.Options, err = keyValues("--opt", opts); err != nil {
				return err
			}
			return g.withVolumes(cmd, func(ctx context.Context, s *volumes.Store, _ volumes.Users) error {
				v, _, err := s.Create(ctx, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, v.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "volume name")
	f.StringVarP(&o.Driver, "driver", "d", "local", "volume driver name")
	f.StringArrayVar(&labels, "label", nil, "set metadata for a volume (KEY[=VALUE])")
	f.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options")
	return cmd
}

// keyValues reads KEY=VALUE flags (a bare KEY has an empty value).
func keyValues(flag string, args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if k == "" {
			return nil, usageError{fmt.Errorf("%s %q: want KEY=VALUE", flag, a)}
		}
		m[k] = v
	}
	return m, nil
}

type volumeListOptions struct {
	quiet   bool
	format  string
	filters []string
}

func newVolumeListCommand(g *globalOptions) *cobra.Command {
	var o volumeListOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := volumes.ParseFilters(o.filters, "name", "label", "dangling", "driver")
			if err != nil {
				return usageError{err}
			}
			return g.withVolumes(cmd, func(ctx context.Context, s *volumes.Store, users volumes.Users) error {
				vols, err := s.ListFiltered(ctx, volumes.ListOptions{Filter: filter}, users)
				if err != nil {
					return err
				}
				return writeVolumes(g.stdout, vols, o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only display volume names")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "filter output (name=, label=, dangling=true|false, driver=)")
	return cmd
}

func writeVolumes(w io.Writer, vols []volumes.Volume, o volumeListOptions) error {
	switch {
	case o.quiet:
		for _, v := range vols {
			fmt.Fprintln(w, v.Name)
		}
	case o.format != "":
		for _, v := range vols {
			if err := writeFormat(w, o.format, v); err != nil {
				return err
			}
		}
	default:
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
		for _, v := range vols {
			fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
		}
		return tw.Flush()
	}
	return nil
}

func newVolumeInspectCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withVolumes(cmd, func(ctx context.Context, s *volumes.Store, _ volumes.Users) error {
				return inspectEach(g.stdout, format, args, func(name string) (any, error) { return s.Get(name) })
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template")
	return cmd
}

func newVolumeRemoveCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withVolumes(cmd, func(ctx context.Context, s *volumes.Store, users volumes.Users) error {
				return removeEach(g.stdout, args, force, func(name string) error { return s.Remove(ctx, name, users) })
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not fail on volumes that do not exist")
	return cmd
}

func newVolumePruneCommand(g *globalOptions) *cobra.Command {
	var o volumes.PruneOptions
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused volumes (anonymous ones only, unless -a)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Filter, err = volumes.ParseFilters(filters, "label"); err != nil {
				return usageError{err}
			}
			if !force {
				what := "anonymous local volumes"
				if o.All {
					what = "local volumes"
				}
				if !confirm(cmd.InOrStdin(), g.stdout, fmt.Sprintf("WARNING! This will remove all %s not used by at least one container.", what)) {
					return nil
				}
			}
			return g.withVolumes(cmd, func(ctx context.Context, s *volumes.Store, users volumes.Users) error {
				rep, err := s.Prune(ctx, o, users)
				writeDeleted(g.stdout, "Deleted Volumes:", rep.Deleted)
				fmt.Fprintf(g.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringArrayVar(&filters, "filter", nil, "provide filter values (label=)")
	return cmd
}
