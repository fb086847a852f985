// Command containerd-shim-berth-v2 is containerd's shim for the runtime
// type io.containerd.berth.v2: it runs containers with libcontainer in
// its own process. The containers' init runs from berth-runtime (see
// shim/process.FindRuntime), so this binary is built without cgo.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/berthrt/berth/shim/manager"
	_ "github.com/berthrt/berth/shim/task/plugin"
)

func main() {
	// The task service reaps (shim/reaper): containerd's reaper would
	// steal the exits of hooks and of the shim's own exec.Cmd children.
	shim.RunShim(context.Background(), manager.New("io.containerd.berth.v2"), func(c *shim.Config) { c.NoReaper = true })
}
