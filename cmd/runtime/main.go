// Command berth-runtime is an OCI runtime with runc's command line.
package main

import (
	"os"

	"github.com/berthrt/berth/libcontainer"
)

func main() {
	// The container's init is this binary re-exec'd; skip the CLI for it.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
		os.Exit(1)
	}
	os.Exit(run(os.Args[1:]))
}
