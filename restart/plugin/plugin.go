// Package plugin registers Berth's restart monitor (package restart), with
// the health checks it runs (package health), with containerd's plugin
// registry. Berth's containerd (hack/containerd's
// main) imports it for that; nothing else does.
package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/berthrt/berth/health"
	"github.com/berthrt/berth/restart"
)

func init() {
	registry.Register(&plugin.Registration{
		Type: plugins.ContainerMonitorPlugin,
		ID:   restart.PluginID,
		// What an in-memory client needs (containerd.WithInMemoryServices).
		Requires: []plugin.Type{
			plugins.EventPlugin,
			plugins.LeasePlugin,
			plugins.SandboxStorePlugin,
			plugins.TransferPlugin,
			plugins.MountManagerPlugin,
			plugins.ServicePlugin,
		},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			ic.Meta.Capabilities = []string{"no", "always", "unless-stopped", "on-failure", "healthcheck"}
			client, err := containerd.New("", containerd.WithInMemoryServices(ic))
			if err != nil {
				return nil, fmt.Errorf("berth restart monitor: a client of containerd's own services: %w", err)
			}
			// The health checks' fifos live in the plugin's own state
			// directory (under containerd's, on tmpfs), cleared at each
			// start.
			probers, err := health.NewProbers(client, filepath.Join(ic.Properties[plugins.PropertyStateDir], "health"))
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithCancel(ic.Context)
			s := &service{cancel: cancel, done: make(chan struct{})}
			go func() {
				defer close(s.done)
				if err := restart.NewMonitor(client).WithHealth(probers).Run(ctx, ic.Properties[plugins.PropertyTTRPCAddress]); err != nil {
					log.G(ctx).WithError(err).Error("berth restart monitor stopped")
				}
			}()
			return s, nil
		},
	})
}

// service is the running monitor; containerd closes it at shutdown.
type service struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// closeTimeout bounds how long containerd's shutdown waits for the
// monitor to finish what it was doing (a restart under way).
const closeTimeout = 10 * time.Second

func (s *service) Close() error {
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-time.After(closeTimeout):
		return fmt.Errorf("berth restart monitor: still busy %v after it was told to stop", closeTimeout)
	}
}
