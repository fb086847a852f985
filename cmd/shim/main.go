// Command containerd-shim-berth-v2 is the binary containerd runs for the
// runtime type io.containerd.berth.v2. It answers containerd's `start`
// (find or spawn the container's shim) and, when the shim already deleted
// the container, `delete` itself (shim/bootstrap: a small binary starts
// in a third of the time), and hands everything else over to
// containerd-shim-berth-v2-server beside it (cmd/shim-server), which is
// also the long-running shim.
package main

import (
	"fmt"
	"os"

	"github.com/berthrt/berth/shim/bootstrap"
)

func main() {
	server, err := bootstrap.Server()
	if err == nil {
		var input []byte
		var done bool
		input, done, err = bootstrap.Answer(os.Args[1:], os.Stdin, os.Stdout, server)
		if done && err == nil {
			return
		}
		if !done {
			err = bootstrap.Handover(server, os.Args[1:], input)
		}
	}
	fmt.Fprintf(os.Stderr, "io.containerd.berth.v2: %v\n", err)
	os.Exit(1)
}
