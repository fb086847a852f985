//go:build tools

// Package containerd pins the containerd commands that `make build` puts in
// bin/ (ctr, containerd-shim-runc-v2; bin/containerd is ./cmd/containerd,
// containerd's daemon with Berth's restart monitor). It is never compiled:
// the build tag only keeps `go mod tidy` from dropping them.
package containerd

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
