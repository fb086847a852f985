package manager

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/shim"
)

// removeStaleSockets removes the sockets of the dead shim that served the
// container in bundle: the one containerd connected to (bootstrap.json)
// and the debug one of its group (under socketDir, derived from
// containerd's address; skipped if that is unknown). A shim killed
// outright cannot remove them itself. A socket some live shim still
// answers on is left alone.
func removeStaleSockets(ctx context.Context, bundle, socketDir, address, group string) {
	var boot struct {
		Address string `json:"address"`
	}
	if b, err := os.ReadFile(filepath.Join(bundle, "bootstrap.json")); err == nil && json.Unmarshal(b, &boot) == nil {
		removeIfDead(boot.Address)
	}
	if address != "" {
		if addr, err := shim.CreateSocketAddress(ctx, socketDir, address, group, true); err == nil {
			removeIfDead(addr)
		}
	}
}

// containerdAddress is containerd's address, as `shim delete` was given it
// (its -address flag); "" if unknown.
func containerdAddress() string {
	if f := flag.Lookup("address"); f != nil {
		return f.Value.String()
	}
	return ""
}

// socketDirOf is the shim socket directory of the containerd that made
// bundle: the bundle's "s" link to it, or containerd's default.
func socketDirOf(bundle string) string {
	if dir, err := os.Readlink(filepath.Join(bundle, "s")); err == nil {
		return dir
	}
	return filepath.Join(defaults.DefaultStateDir, "s")
}

func removeIfDead(addr string) {
	if addr != "" && !shim.CanConnect(addr) {
		shim.RemoveSocket(addr)
	}
}
