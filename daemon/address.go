// Package daemon is berth's containerd: it finds the containerd that berth
// talks to (--address, $CONTAINERD_ADDRESS, berth.toml, in that order) and,
// when that is the managed one and nothing answers, starts berth's own
// containerd — the binary `make` builds — with berth's paths and config,
// as a daemon that outlives the command. `berth system start|stop|status`
// drive the managed containerd explicitly. Nothing here writes to the
// terminal except the one line that says a containerd was started.
package daemon

import "strings"

// Source says where the containerd address came from.
type Source string

const (
	SourceFlag    Source = "--address"
	SourceEnv     Source = "$CONTAINERD_ADDRESS"
	SourceConfig  Source = "berth.toml address"
	SourceManaged Source = "managed"
)

// Address is the containerd socket berth uses and where it came from.
type Address struct {
	Path   string
	Source Source
}

// Managed says whether the address is the managed containerd's socket:
// only then may berth start a containerd to answer there.
func (a Address) Managed(socket string) bool { return a.Path == socket }

// ResolveAddress picks the containerd address: the --address flag, else
// $CONTAINERD_ADDRESS, else berth.toml's address, else the managed
// containerd's socket. A "unix://" prefix is accepted and dropped.
func ResolveAddress(flag, env, configured, managedSocket string) Address {
	for _, c := range []struct {
		v   string
		src Source
	}{{flag, SourceFlag}, {env, SourceEnv}, {configured, SourceConfig}} {
		if c.v != "" {
			return Address{Path: strings.TrimPrefix(c.v, "unix://"), Source: c.src}
		}
	}
	return Address{Path: managedSocket, Source: SourceManaged}
}
