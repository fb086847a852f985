// Command containerd-shim-berth-v2-server is the server of containerd's
// shim for the runtime type io.containerd.berth.v2: containerd's pkg/shim
// serving the task API, running containers with libcontainer in its own
// process. containerd runs containerd-shim-berth-v2 (cmd/shim), which
// hands every call it cannot answer at once over to this binary. The
// containers' init runs from berth-runtime (see shim/process.FindRuntime),
// so this binary is built without cgo.
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
