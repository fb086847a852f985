package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
)

// versionInfo is `berth version`'s document, docker's shape: the client,
// and the server when one answers.
type versionInfo struct {
	Client clientVersion
	Server *serverVersion `json:",omitempty"`
}

type clientVersion struct {
	Version   string
	GoVersion string
	Os        string
	Arch      string
}

type serverVersion struct {
	Containerd struct {
		Version   string
		GitCommit string
	}
	Address string
}

type versionOptions struct{ format string }

func newVersionCommand(g *globalOptions) *cobra.Command {
	var o versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show berth's and containerd's versions",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Client: clientVersion{Version: version, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH}}
			conn, err := g.connect(cmd.Context())
			if err == nil {
				defer conn.Close()
				var sv serverVersion
				cv, verr := conn.Version(cmd.Context())
				sv.Containerd.Version, sv.Containerd.GitCommit, sv.Address, err = cv.Version, cv.Revision, conn.Address.Path, verr
				v.Server = &sv
			}
			// As docker does: the client's part even without a server.
			if o.format != "" {
				if ferr := writeFormat(g.stdout, o.format, v); ferr != nil {
					return ferr
				}
			} else {
				writeVersion(g.stdout, v)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&o.format, "format", "f", "", "format the output with a Go template")
	return cmd
}

func writeVersion(w io.Writer, v versionInfo) {
	fmt.Fprintf(w, "Client:\n Version:           %s\n Go version:        %s\n OS/Arch:           %s/%s\n",
		v.Client.Version, v.Client.GoVersion, v.Client.Os, v.Client.Arch)
	if s := v.Server; s != nil {
		fmt.Fprintf(w, "\nServer:\n containerd:\n  Version:          %s\n  GitCommit:        %s\n  Address:          %s\n",
			s.Containerd.Version, s.Containerd.GitCommit, s.Address)
	}
}
