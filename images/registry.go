package images

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"

	"github.com/berthrt/berth/config"
)

// dockerHubHost is where docker.io's API answers, and dockerHubAuthKey
// the key docker's config.json files Docker Hub's credentials under.
const (
	dockerHubHost    = "registry-1.docker.io"
	dockerHubAuthKey = "https://index.docker.io/v1/"
)

// RegistryOptions say how berth reaches registries: berth.toml's
// [registry] table and where credentials come from.
type RegistryOptions struct {
	// Config is berth.toml's [registry]: the insecure registries and the
	// mirrors.
	Config config.Registry
	// Credentials gives the user name and secret for a registry host;
	// nil reads them from docker's config.json ($DOCKER_CONFIG, else
	// ~/.docker), which `berth login` writes.
	Credentials func(host string) (user, secret string, err error)
	// Tracker, when set, records the progress of pushes.
	Tracker docker.StatusTracker
}

// resolver is containerd's docker resolver over the hosts berth.toml
// describes.
func (o RegistryOptions) resolver() remotes.Resolver {
	creds := o.Credentials
	if creds == nil {
		creds = DockerConfigCredentials
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: o.hosts(creds), Tracker: o.Tracker})
}

// hosts is the RegistryHosts function: for a registry name, its mirrors
// (pull and resolve only) in berth.toml's order, then the registry itself.
// Loopback registries and those berth.toml marks insecure are reached
// over plain http (insecure ones: https without certificate checks
// first, as docker does).
func (o RegistryOptions) hosts(creds func(string) (string, string, error)) docker.RegistryHosts {
	return func(name string) ([]docker.RegistryHost, error) {
		var hosts []docker.RegistryHost
		for _, mirror := range o.Config.Mirrors[name] {
			u, err := url.Parse(mirror)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return nil, fmt.Errorf("berth.toml: registry mirror %q of %s: want an http:// or https:// URL", mirror, name)
			}
			h := o.host(u.Host, u.Scheme, creds)
			h.Path = strings.TrimSuffix(u.Path, "/") + "/v2"
			h.Capabilities = docker.HostCapabilityPull | docker.HostCapabilityResolve
			hosts = append(hosts, h)
		}
		host := name
		if name == "docker.io" {
			host = dockerHubHost
		}
		scheme := "https"
		if isLoopback(host) {
			scheme = "http"
		}
		h := o.host(host, scheme, creds)
		h.Capabilities = docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush
		return append(hosts, h), nil
	}
}

// host is one registry endpoint at host with its own client and
// authorizer (credentials are asked for by host).
func (o RegistryOptions) host(host, scheme string, creds func(string) (string, string, error)) docker.RegistryHost {
	insecure := o.insecure(host)
	transport := docker.DefaultHTTPTransport(&tls.Config{InsecureSkipVerify: insecure}) //nolint:gosec // only for registries berth.toml marks insecure
	var rt http.RoundTripper = transport
	if insecure && scheme == "https" {
		rt = docker.NewHTTPFallback(transport)
	}
	client := &http.Client{Transport: rt}
	return docker.RegistryHost{
		Client:     client,
		Authorizer: docker.NewDockerAuthorizer(docker.WithAuthClient(client), docker.WithAuthCreds(creds)),
		Host:       host,
		Scheme:     scheme,
		Path:       "/v2",
	}
}

// insecure says whether berth.toml lists host (host:port, or the host
// alone for every port) as insecure.
func (o RegistryOptions) insecure(host string) bool {
	if slices.Contains(o.Config.Insecure, host) {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return slices.Contains(o.Config.Insecure, h)
	}
	return false
}

// isLoopback says whether host (host or host:port) is this machine:
// localhost or a loopback address. Those registries speak plain http,
// as docker lets them.
func isLoopback(host string) bool {
	ok, err := docker.MatchLocalhost(host)
	return err == nil && ok
}

// DockerConfigCredentials reads a registry host's credentials from
// docker's config.json (and the credential helpers it names), as docker
// does: an identity token is returned as the secret with no user name.
func DockerConfigCredentials(host string) (string, string, error) {
	cf, err := dockerconfig.Load(dockerconfig.Dir())
	if err != nil {
		return "", "", fmt.Errorf("read docker credentials: %w", err)
	}
	auth, err := cf.GetAuthConfig(authKey(host))
	if err != nil {
		return "", "", fmt.Errorf("read credentials for %s from %s: %w", host, cf.Filename, err)
	}
	if auth.IdentityToken != "" {
		return "", auth.IdentityToken, nil
	}
	return auth.Username, auth.Password, nil
}

// authKey is the key docker's config.json files a registry host's
// credentials under.
func authKey(host string) string {
	if host == "docker.io" || host == dockerHubHost || host == "index.docker.io" {
		return dockerHubAuthKey
	}
	return host
}

// dockerConfig loads docker's config.json for login and logout.
func dockerConfig() (*configfile.ConfigFile, error) {
	cf, err := dockerconfig.Load(dockerconfig.Dir())
	if err != nil {
		return nil, fmt.Errorf("read docker's config.json: %w", err)
	}
	return cf, nil
}
