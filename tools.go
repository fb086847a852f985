//go:build tools

// Package tools pins, in go.mod, the containerd commands that `make` builds
// (bin/containerd, bin/ctr, bin/containerd-shim-runc-v2) to the same
// containerd v2 module version that Berth's shim and client import. It is
// never compiled: the build tag only keeps `go mod tidy` from dropping them.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
