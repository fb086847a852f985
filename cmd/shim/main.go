// Command containerd-shim-berth-v2 is containerd's shim for the runtime
// type io.containerd.berth.v2: it runs containers with libcontainer in
// its own process. The container's init is this binary re-exec'd.
package main

import (
	"context"
	"os"

	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/shim/manager"
	_ "github.com/berthrt/berth/shim/task/plugin"
)

func main() {
	// libcontainer re-executes this binary as the container's init: that
	// must not get near the shim's flags, signals or reaper.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
		os.Exit(1)
	}
	// The task service reaps (shim/reaper): containerd's reaper would
	// steal the exits of hooks and of the shim's own exec.Cmd children.
	shim.RunShim(context.Background(), manager.New("io.containerd.berth.v2"), func(c *shim.Config) { c.NoReaper = true })
}
