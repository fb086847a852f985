//go:build tools

// Package cni pins the CNI reference plugins that `make build` puts in
// bin/cni/ (bridge, host-local, loopback, portmap, firewall), the ones
// Berth's networks chain. It is never compiled: the build tag only keeps
// `go mod tidy` from dropping them. A module of its own, as hack/containerd
// is, so that the plugins' dependencies (iptables and nftables libraries,
// dbus for firewalld, DHCP, hcsshim) stay out of Berth's go.mod.
package cni

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/firewall"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
)
