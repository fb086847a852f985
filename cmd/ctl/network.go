package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/cni"
	"github.com/berthrt/berth/config"
	"github.com/berthrt/berth/containers"
	"github.com/berthrt/berth/volumes"
)

func newNetworkCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks", Args: noArgs}
	cmd.AddCommand(newNetworkCreateCommand(g), newNetworkListCommand(g), newNetworkInspectCommand(g),
		newNetworkRemoveCommand(g), newNetworkPruneCommand(g), newNetworkConnectCommand(g), newNetworkDisconnectCommand(g))
	return cmd
}

// networks is the network store of berth.toml's [cni] table and data root.
func (g *globalOptions) networks() *cni.Store {
	return cni.NewStore(g.networkConfig())
}

func (g *globalOptions) networkConfig() cni.Config {
	self, _ := os.Executable()
	return cni.Config{
		ConfDir:    g.cfg.CNI.ConfDir,
		PluginDirs: cni.PluginDirs(g.cfg.CNI.PluginDir, config.DefaultCNIPluginDir, self),
		DataRoot:   g.cfg.DataRoot,
	}
}

// netnsDir is where containers' network namespaces are bound while they
// run: beside the managed containerd's state dir (/run/berth/netns), on
// a tmpfs that a reboot empties with them.
func (g *globalOptions) netnsDir() string {
	return filepath.Join(filepath.Dir(g.cfg.Containerd.State), "netns")
}

// withNetworkUsers runs fn with the store and the users of networks (the
// containers in containerd whose labels name them).
func (g *globalOptions) withNetworkUsers(cmd *cobra.Command, fn func(ctx context.Context, s *cni.Store, users cni.Users) error) error {
	return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
		return fn(ctx, g.networks(), cni.ContainerUsers{Client: client})
	})
}

func newNetworkCreateCommand(g *globalOptions) *cobra.Command {
	var o cni.CreateOptions
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			var err error
			if o.Labels, err = keyValues("--label", labels); err != nil {
				return err
			}
			if o.Options, err = keyValues("--opt", opts); err != nil {
				return err
			}
			n, err := g.networks().Create(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, n.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Driver, "driver", "d", "bridge", "driver to manage the network")
	f.StringVar(&o.Subnet, "subnet", "", "subnet in CIDR format (default: a free one)")
	f.StringVar(&o.Gateway, "gateway", "", "IPv4 gateway for the subnet (default: its first address)")
	f.StringVar(&o.IPRange, "ip-range", "", "allocate container IPs from a sub-range (CIDR)")
	f.BoolVar(&o.Internal, "internal", false, "restrict external access to the network")
	f.StringArrayVar(&labels, "label", nil, "set metadata on a network (KEY[=VALUE])")
	f.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options ("+cni.BridgeNameOption+"=NAME)")
	return cmd
}

type networkListOptions struct {
	quiet, noTrunc bool
	format         string
	filters        []string
}

func newNetworkListCommand(g *globalOptions) *cobra.Command {
	var o networkListOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// docker's KEY=VALUE filter arguments, parsed as volumes' are.
			parsed, err := volumes.ParseFilters(o.filters, cni.FilterKeys...)
			if err != nil {
				return usageError{err}
			}
			nets, err := g.networks().List(cmd.Context())
			if err != nil {
				return err
			}
			var shown []cni.Network
			for i := range nets {
				if cni.Filter(parsed).Match(&nets[i]) {
					shown = append(shown, nets[i])
				}
			}
			return writeNetworks(g.stdout, shown, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "only display network IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate the output")
	f.StringVar(&o.format, "format", "", "format the output with a Go template")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "filter output (name=, id=, label=, driver=, type=custom|builtin)")
	return cmd
}

func writeNetworks(w io.Writer, nets []cni.Network, o networkListOptions) error {
	id := func(n cni.Network) string {
		if o.noTrunc {
			return n.ID
		}
		return n.ID[:12]
	}
	switch {
	case o.quiet:
		for _, n := range nets {
			fmt.Fprintln(w, id(n))
		}
	case o.format != "":
		for _, n := range nets {
			if err := writeFormat(w, o.format, n); err != nil {
				return err
			}
		}
	default:
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
		for _, n := range nets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id(n), n.Name, n.Driver, n.Scope)
		}
		return tw.Flush()
	}
	return nil
}

func newNetworkInspectCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := g.networks()
			return inspectEach(g.stdout, format, args, func(ref string) (any, error) { return s.Get(cmd.Context(), ref) })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template")
	return cmd
}

func newNetworkConnectCommand(g *globalOptions) *cobra.Command {
	var o containers.ConnectOptions
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return containers.Connect(ctx, client, args[1], args[0], o)
			})
		},
	}
	cmd.Flags().StringArrayVar(&o.Aliases, "alias", nil, "add a network-scoped alias for the container")
	cmd.Flags().StringVar(&o.IP, "ip", "", "IPv4 address")
	return cmd
}

func newNetworkDisconnectCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				return containers.Disconnect(ctx, client, args[1], args[0])
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect (as docker's; the disconnect never waits)")
	return cmd
}

func newNetworkRemoveCommand(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withNetworkUsers(cmd, func(ctx context.Context, s *cni.Store, users cni.Users) error {
				return removeEach(g.stdout, args, force, func(ref string) error { return s.Remove(ctx, ref, users) })
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not fail on networks that do not exist")
	return cmd
}

// removeEach removes each of names, printing the name of each one gone,
// as docker's rm commands do; with force, one that does not exist is no
// error.
func removeEach(w io.Writer, names []string, force bool, remove func(string) error) error {
	var errs []error
	for _, name := range names {
		err := remove(name)
		switch {
		case err == nil:
			fmt.Fprintln(w, name)
		case force && errdefs.IsNotFound(err):
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newNetworkPruneCommand(g *globalOptions) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			parsed, err := volumes.ParseFilters(filters, "label")
			if err != nil {
				return usageError{err}
			}
			if !force {
				if !confirm(cmd.InOrStdin(), g.stdout, "WARNING! This will remove all custom networks not used by at least one container.") {
					return nil
				}
			}
			return g.withNetworkUsers(cmd, func(ctx context.Context, s *cni.Store, users cni.Users) error {
				deleted, err := s.Prune(ctx, cni.PruneOptions{Labels: parsed["label"]}, users)
				if len(deleted) > 0 {
					fmt.Fprintln(g.stdout, "Deleted Networks:")
					for _, n := range deleted {
						fmt.Fprintln(g.stdout, n)
					}
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringArrayVar(&filters, "filter", nil, "provide filter values (label=)")
	return cmd
}
