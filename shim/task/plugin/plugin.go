// Package plugin registers the task service with containerd's plugin
// registry, which pkg/shim serves over ttrpc. Importing it is what makes
// a binary serve Berth's task API: cmd/shim-server (the shim's server)
// does, for its side effect; cmd/shim, the small binary containerd runs,
// does not and hands every task call over to that server.
package plugin

import (
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/berthrt/berth/shim/task"
)

func init() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return task.New(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
		},
	})
}
