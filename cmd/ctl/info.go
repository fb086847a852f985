package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/berthrt/berth/daemon"
)

type infoOptions struct{ format string }

func newInfoCommand(g *globalOptions) *cobra.Command {
	var o infoOptions
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show how berth and its containerd are set up",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runInfo(cmd, g, o) },
	}
	cmd.Flags().StringVarP(&o.format, "format", "f", "", "format the output with a Go template")
	return cmd
}

func runInfo(cmd *cobra.Command, g *globalOptions, o infoOptions) error {
	conn, err := g.connect(cmd.Context())
	if err != nil {
		return err
	}
	defer conn.Close()
	info, err := conn.Info(cmd.Context(), g.cfg, g.namespace)
	if err != nil {
		return err
	}
	if o.format != "" {
		return writeFormat(g.stdout, o.format, info)
	}
	writeInfo(g.stdout, info)
	return nil
}

func writeInfo(w io.Writer, i daemon.Info) {
	fmt.Fprintf(w, "Client:\n Version:           %s\n\nServer:\n", version)
	fmt.Fprintf(w, " Containerd Version: %s\n Containerd Commit:  %s\n", i.ServerVersion, i.ServerCommit)
	fmt.Fprintf(w, " Address:            %s (%s)\n Namespace:          %s\n Default Runtime:    %s\n Berth Root Dir:     %s\n",
		i.Address, i.AddressSource, i.Namespace, i.DefaultRuntime, i.DataRoot)
	if m := i.Managed; m != nil {
		fmt.Fprintf(w, " Managed Containerd: yes (pid %d)\n  Binary:            %s\n  Root:              %s\n  State:             %s\n  Log:               %s\n",
			m.Pid, m.Binary, m.Root, m.State, m.Log)
		packing := "one container per shim"
		if m.ContainersPerShim > 1 {
			packing = fmt.Sprintf("up to %d containers per shim (a shim's crash stops all of its containers)", m.ContainersPerShim)
		}
		fmt.Fprintf(w, " Shim Packing:       %s, an idle shim lingers %s\n", packing, m.ShimLinger)
	} else {
		fmt.Fprintf(w, " Managed Containerd: no (berth neither starts nor stops it)\n")
	}
	fmt.Fprintf(w, " OSType:             %s\n Architecture:       %s\n", i.OS, i.Arch)
}
