package daemon

import (
	"fmt"
	"path/filepath"
	"strings"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
)

// disabledPlugins are the containerd plugins berth does not use: CRI (and
// what only CRI uses), NRI, tracing, and snapshotters that need other
// filesystems. Leaving them out makes the daemon start faster and smaller.
var disabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
	"io.containerd.nri.v1.nri",
	"io.containerd.internal.v1.opt",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.blockfile",
	"io.containerd.snapshotter.v1.erofs",
	"io.containerd.differ.v1.erofs",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
}

// GenerateConfig is the managed containerd's config.toml (version 3):
// berth's root, state and socket, the shims' sockets under the state dir
// (nothing lands in a system containerd's /run/containerd), and only the
// plugins berth uses.
//
// containerd's config has no table of runtimes for clients other than
// CRI: a client names the runtime, and its options, per container. So the
// berth runtime is made the default of berth's namespace instead (the
// namespace label containerd's client honours, set by Connect), and its
// shim options — the packing of containers into shims — are written to
// ShimOptionsPath, which berth passes with each container it creates.
func (m *Managed) GenerateConfig() string {
	return "# Written by berth for the containerd it manages; rewritten at each start.\n" +
		"# Change berth.toml's [containerd] table instead.\n" +
		ContainerdConfig(m.cfg.Root, m.cfg.State, m.cfg.Socket, m.cfg.LogLevel, m.shimSocketDir())
}

// ContainerdConfig is a containerd config.toml (version 3) for a
// containerd of berth's own: its root, state and socket, the shims'
// sockets in shimSocketDir, and only the plugins berth uses. The test
// harness's private containerd (integration/ctrd) is configured by it too.
func ContainerdConfig(root, state, socket, logLevel, shimSocketDir string) string {
	quoted := make([]string, len(disabledPlugins))
	for i, p := range disabledPlugins {
		quoted[i] = fmt.Sprintf("  %q,", p)
	}
	return fmt.Sprintf(`version = 3
root = %q
state = %q
temp = %q
disabled_plugins = [
%s
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = %q

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = %q
`, root, state, filepath.Join(root, "tmp"), strings.Join(quoted, "\n"),
		socket, socket+".ttrpc", logLevel, shimSocketDir)
}

// ShimOptions are the berth shim's runtime options (TOML, as
// shim/options reads them) for containers of the managed containerd.
func (m *Managed) ShimOptions() string {
	return fmt.Sprintf("# Written by berth: the %s options of its containers.\nContainersPerShim = %d\nShimLinger = %q\n",
		RuntimeType, m.cfg.ContainersPerShim, m.cfg.ShimLinger.String())
}

// RuntimeOptions are the options berth gives containerd with each
// container it creates in the managed containerd (client.WithRuntime):
// they point the berth shim at ShimOptionsPath.
func (m *Managed) RuntimeOptions() *runtimeoptions.Options {
	return &runtimeoptions.Options{ConfigPath: m.ShimOptionsPath()}
}
