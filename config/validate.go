package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/pelletier/go-toml/v2"
)

// Unix socket paths have room for 107 bytes. containerd puts a shim's
// socket at <State>/s/<64 hex digits>, and its own ttrpc socket at
// Socket + ".ttrpc".
const (
	maxSocketPath = 107
	maxStatePath  = maxSocketPath - len("/s/") - 64
	maxSocket     = maxSocketPath - len(".ttrpc")
)

// maxContainersPerShim bounds the blast radius of one shim's crash.
const maxContainersPerShim = 64

// Validate checks every value, and names the key and what is allowed in
// the first it refuses.
func (c *Config) Validate() error {
	if c.Address != "" {
		if err := checkAbs("address", strings.TrimPrefix(c.Address, "unix://")); err != nil {
			return err
		}
	}
	if err := identifiers.Validate(c.Namespace); err != nil {
		return fmt.Errorf("namespace = %q: want letters, digits, '.', '_' and '-', starting with a letter or digit: %w", c.Namespace, err)
	}
	checks := []struct{ key, path string }{
		{"data_root", c.DataRoot},
		{"containerd.root", c.Containerd.Root},
		{"containerd.state", c.Containerd.State},
		{"containerd.socket", c.Containerd.Socket},
		{"cni.conf_dir", c.CNI.ConfDir},
	}
	for _, ch := range checks {
		if err := checkAbs(ch.key, ch.path); err != nil {
			return err
		}
	}
	for key, path := range map[string]string{"containerd.binary": c.Containerd.Binary, "cni.plugin_dir": c.CNI.PluginDir} {
		if path != "" {
			if err := checkAbs(key, path); err != nil {
				return err
			}
		}
	}
	if err := c.Containerd.validate(); err != nil {
		return err
	}
	if c.CNI.DefaultNetwork == "" || strings.HasPrefix(c.CNI.DefaultNetwork, "container:") {
		return fmt.Errorf("cni.default_network = %q: want bridge, none, host or a network's name", c.CNI.DefaultNetwork)
	}
	return c.Registry.validate()
}

func (c *Containerd) validate() error {
	if n := len(c.State); n > maxStatePath {
		return fmt.Errorf("containerd.state = %q is %d bytes: at most %d, since the shims' sockets go under it", c.State, n, maxStatePath)
	}
	if n := len(c.Socket); n > maxSocket {
		return fmt.Errorf("containerd.socket = %q is %d bytes: at most %d (a unix socket path)", c.Socket, n, maxSocket)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic":
	default:
		return fmt.Errorf("containerd.log_level = %q: want trace, debug, info, warn, error, fatal or panic", c.LogLevel)
	}
	if c.ContainersPerShim < 1 || c.ContainersPerShim > maxContainersPerShim {
		return fmt.Errorf("containerd.containers_per_shim = %d: want 1 (a shim per container) to %d", c.ContainersPerShim, maxContainersPerShim)
	}
	if c.ShimLinger < 0 {
		return fmt.Errorf("containerd.shim_linger = %q: want a duration of 0s or more", c.ShimLinger)
	}
	if c.StopTimeout <= 0 {
		return fmt.Errorf("containerd.stop_timeout = %q: want a duration above 0s, such as \"10s\"", c.StopTimeout)
	}
	return nil
}

func (r *Registry) validate() error {
	for _, host := range r.Insecure {
		if err := checkHost("registry.insecure", host); err != nil {
			return err
		}
	}
	for host, mirrors := range r.Mirrors {
		if err := checkHost("registry.mirrors", host); err != nil {
			return err
		}
		for _, m := range mirrors {
			u, err := url.Parse(m)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("registry.mirrors.%q: mirror %q: want an http:// or https:// URL", host, m)
			}
		}
	}
	return nil
}

// checkHost accepts a registry's host[:port], the form image references use.
func checkHost(key, host string) error {
	if host == "" || strings.Contains(host, "://") || strings.ContainsAny(host, "/ \t") {
		return fmt.Errorf("%s: %q: want a registry host or host:port, without a scheme or path (such as \"registry.local:5000\")", key, host)
	}
	return nil
}

func checkAbs(key, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s = %q: want an absolute path", key, path)
	}
	return nil
}

// Duration is a TOML string such as "2s" or "1m30s" (Go's syntax).
type Duration time.Duration

// UnmarshalText reads a duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration: want a number with a unit, such as \"2s\" or \"500ms\"", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in the same syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String is the duration in Go's syntax ("2s").
func (d Duration) String() string { return time.Duration(d).String() }

// keyString joins a TOML key path with dots, as the file writes it.
func keyString(key toml.Key) string { return strings.Join(key, ".") }
