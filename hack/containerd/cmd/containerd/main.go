// Command containerd is the containerd that Berth manages: containerd's own
// daemon (its command and its built-in plugins, at the version Berth's
// go.mod pins) plus Berth's restart monitor, a plugin of containerd's kind
// (restart/plugin), so that docker's restart policies hold with no berth
// process running and across restarts of containerd.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/berthrt/berth/restart/plugin"
	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
