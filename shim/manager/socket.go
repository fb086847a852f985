package manager

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
)

// shimSocket is the listening socket a new shim serves on; it is made
// here and passed to the shim as fd 3 (4 for the debug socket).
type shimSocket struct {
	addr string
	l    *net.UnixListener
	f    *os.File
}

func (s *shimSocket) Close() {
	if s.l != nil {
		s.l.Close()
	}
	if s.f != nil {
		s.f.Close()
	}
	shim.RemoveSocket(s.addr)
}

// newShimSocket listens on the group's address (a hash of containerd's
// address, the namespace and the group). If a live shim already answers
// there, it returns errdefs.ErrAlreadyExists with the address set: that
// shim serves the new container too. A socket nobody answers on is left
// over from a dead shim and is replaced.
func newShimSocket(ctx context.Context, root, grpcAddress, group string, debug bool) (*shimSocket, error) {
	addr, err := shim.CreateSocketAddress(ctx, root, grpcAddress, group, debug)
	if err != nil {
		return nil, fmt.Errorf("shim socket address: %w", err)
	}
	l, err := shim.NewSocket(addr)
	if err != nil {
		if !shim.SocketEaddrinuse(err) {
			return nil, fmt.Errorf("create shim socket: %w", err)
		}
		if !debug && shim.CanConnect(addr) {
			return &shimSocket{addr: addr}, errdefs.ErrAlreadyExists
		}
		if err := shim.RemoveSocket(addr); err != nil {
			return nil, fmt.Errorf("remove stale shim socket: %w", err)
		}
		if l, err = shim.NewSocket(addr); err != nil {
			return nil, fmt.Errorf("create shim socket: %w", err)
		}
	}
	s := &shimSocket{addr: addr, l: l}
	if s.f, err = l.File(); err != nil {
		s.Close()
		return nil, fmt.Errorf("shim socket: %w", err)
	}
	return s, nil
}

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
