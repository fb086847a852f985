// Package config is berth's configuration: /etc/berth/berth.toml, one
// Config type with Docker-like defaults, shared by berth's commands and,
// later, its API service. A missing file is the defaults; a file with an
// unknown key or a bad value is refused with the file, the key and what
// is allowed, never silently ignored (a typo in a registry or path setting
// would otherwise change where data goes without a word).
//
// Every key is documented on its field below and listed in docs/CONFIG.md.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where berth looks for its configuration.
const DefaultPath = "/etc/berth/berth.toml"

// The defaults of DESIGN.md, so that tools and tests agree.
const (
	DefaultNamespace        = "default"
	DefaultDataRoot         = "/var/lib/berth"
	DefaultContainerdRoot   = "/var/lib/berth/containerd"
	DefaultContainerdState  = "/run/berth/containerd"
	DefaultContainerdSocket = "/run/berth/containerd/containerd.sock"
	DefaultLogLevel         = "info"
	DefaultStopTimeout      = 10 * time.Second
	DefaultCNIConfDir       = "/etc/berth/cni/net.d"
	DefaultCNIPluginDir     = "/usr/local/libexec/berth/cni"
	DefaultNetwork          = "bridge"
	// DefaultContainersPerShim packs up to 8 containers into a shared shim
	// process in the containerd berth manages: on a workstation the memory
	// saved (a few MiB per container) outweighs the isolation lost (a
	// shim's crash takes its containers with it). A containerd berth does
	// not manage keeps containerd's one shim per container; `berth info`
	// shows which applies.
	DefaultContainersPerShim = 8
	// DefaultShimLinger keeps a shared shim left without containers for
	// the next one, as the shim's own default does.
	DefaultShimLinger = 2 * time.Second
)

// Config is /etc/berth/berth.toml. The TOML keys are the `toml` tags.
type Config struct {
	// Address is the containerd socket berth uses. Empty: the managed
	// containerd's socket (Containerd.Socket), which berth starts itself
	// when nothing answers there and it runs as root. The --address flag
	// and $CONTAINERD_ADDRESS override it, in that order.
	Address string `toml:"address"`
	// Namespace is the containerd namespace of berth's images and
	// containers; "default" lets ctr and nerdctl see the same ones. The
	// --namespace flag and $CONTAINERD_NAMESPACE override it.
	Namespace string `toml:"namespace"`
	// DataRoot holds what berth keeps outside containerd: volumes,
	// container logs, network state. An absolute path.
	DataRoot string `toml:"data_root"`
	// Debug makes berth log what it does to stderr, as --debug does.
	Debug bool `toml:"debug"`
	// Containerd configures the containerd berth starts and manages.
	Containerd Containerd `toml:"containerd"`
	// Registry configures how images are pulled and pushed.
	Registry Registry `toml:"registry"`
	// CNI configures container networks.
	CNI CNI `toml:"cni"`
}

// Containerd is the [containerd] table: the managed containerd.
type Containerd struct {
	// Binary is the containerd executable to start. Empty: the one
	// `make install` puts in <prefix>/libexec/berth (found beside the
	// berth binary's ../libexec/berth), else a containerd beside the
	// berth binary (a development tree's bin/). An absolute path.
	Binary string `toml:"binary"`
	// Root is containerd's persistent root: content, snapshots, metadata.
	Root string `toml:"root"`
	// State is containerd's state dir: its config, pid file, log, and the
	// shims' sockets (under State/s, so State must be at most 40 bytes
	// long: a unix socket path has room for 107).
	State string `toml:"state"`
	// Socket is the managed containerd's gRPC socket (ttrpc: Socket +
	// ".ttrpc"), at most 100 bytes long.
	Socket string `toml:"socket"`
	// LogLevel is containerd's log level: trace, debug, info, warn,
	// error, fatal or panic.
	LogLevel string `toml:"log_level"`
	// ContainersPerShim is how many containers share one shim process
	// in the managed containerd (berth's shim, io.containerd.berth.v2):
	// 1 gives each its own, as containerd's runc shim does; more saves
	// memory, but a shared shim's crash kills all its containers.
	ContainersPerShim int `toml:"containers_per_shim"`
	// ShimLinger is how long a shared shim left without containers waits
	// for the next, as a duration ("2s"; "0s" exits at once).
	ShimLinger Duration `toml:"shim_linger"`
	// StopTimeout is how long `berth system stop` waits after SIGTERM
	// before it kills containerd with SIGKILL.
	StopTimeout Duration `toml:"stop_timeout"`
}

// Registry is the [registry] table.
type Registry struct {
	// Insecure lists registries (host or host:port) reached over plain
	// http, or https without certificate checks. Registries on localhost
	// are always allowed plain http.
	Insecure []string `toml:"insecure"`
	// Mirrors maps a registry host ("docker.io") to mirror URLs
	// (http:// or https://), tried in order before the registry itself.
	Mirrors map[string][]string `toml:"mirrors"`
}

// CNI is the [cni] table.
type CNI struct {
	// ConfDir holds the network configurations, one conflist per network.
	ConfDir string `toml:"conf_dir"`
	// PluginDir holds the CNI plugin binaries. Left at the default, berth
	// also looks in ../libexec/berth/cni and cni/ beside its own binary
	// (another install PREFIX, a development tree's bin/cni).
	PluginDir string `toml:"plugin_dir"`
	// DefaultNetwork is the network of a container run without --net (and
	// of the RUN steps of a build without --network):
	// "bridge" (docker's default), or "none" for no network unless one
	// is asked for (dockerd's --bridge=none), or another network's name.
	DefaultNetwork string `toml:"default_network"`
}

// Default returns the configuration berth uses without a berth.toml.
func Default() *Config {
	return &Config{
		Namespace: DefaultNamespace,
		DataRoot:  DefaultDataRoot,
		Containerd: Containerd{
			Root:              DefaultContainerdRoot,
			State:             DefaultContainerdState,
			Socket:            DefaultContainerdSocket,
			LogLevel:          DefaultLogLevel,
			ContainersPerShim: DefaultContainersPerShim,
			ShimLinger:        Duration(DefaultShimLinger),
			StopTimeout:       Duration(DefaultStopTimeout),
		},
		CNI: CNI{ConfDir: DefaultCNIConfDir, PluginDir: DefaultCNIPluginDir, DefaultNetwork: DefaultNetwork},
	}
}

// Load reads the configuration at path over the defaults, and validates
// it. A path that does not exist gives the defaults: berth needs no setup.
func Load(path string) (*Config, error) {
	cfg := Default()
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read berth config: %w", err)
	}
	if err := cfg.decode(path, body); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// decode reads body over cfg, refusing keys Config does not have.
func (c *Config) decode(path string, body []byte) error {
	dec := toml.NewDecoder(bytes.NewReader(body)).DisallowUnknownFields()
	err := dec.Decode(c)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		e := strict.Errors[0]
		row, _ := e.Position()
		return fmt.Errorf("%s:%d: unknown key %q: docs/CONFIG.md lists the keys berth.toml may have",
			path, row, keyString(e.Key()))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		if key := de.Key(); len(key) > 0 {
			return fmt.Errorf("%s:%d: key %q: %s", path, row, keyString(key), de.Error())
		}
		return fmt.Errorf("%s:%d: %s", path, row, de.Error())
	}
	// Type mismatches and our own value checks (Duration) arrive here.
	return fmt.Errorf("%s: %w", path, err)
}
