package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/spf13/cobra"

	"github.com/berthrt/berth/containers"
)

func newPortCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, client *containerd.Client) error {
				c, err := containers.Resolve(ctx, client, args[0])
				if err != nil {
					return err
				}
				info, err := c.Info(ctx)
				if err != nil {
					return err
				}
				ports, err := containers.Ports(info)
				if err != nil {
					return err
				}
				if len(args) == 1 {
					for _, p := range ports {
						fmt.Fprintln(g.stdout, containers.FormatPort(p))
					}
					return nil
				}
				num, proto, _ := strings.Cut(args[1], "/")
				if proto == "" {
					proto = "tcp"
				}
				want, err := strconv.ParseUint(num, 10, 16)
				if err != nil {
					return usageError{fmt.Errorf("invalid port %q: want PORT[/tcp|udp]", args[1])}
				}
				found := false
				for _, p := range ports {
					if uint64(p.ContainerPort) == want && p.Protocol == proto {
						// docker prints only the host side here.
						fmt.Fprintln(g.stdout, p.HostAddress())
						found = true
					}
				}
				if !found {
					return fmt.Errorf("Error: No public port '%d/%s' published for %s", want, proto, args[0])
				}
				return nil
			})
		},
	}
}
