package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/docker/cli/cli/config/types"
)

// ErrUnauthorized is wrapped by the errors for credentials a registry refuses.
var ErrUnauthorized = errors.New("unauthorized")

// Login checks user and secret against the registry server (a host or
// host:port; "docker.io" for Docker Hub) and stores them in docker's
// config.json, as `docker login` does.
func Login(ctx context.Context, server, user, secret string, opts RegistryOptions) error {
	host := loginHost(server)
	opts.Credentials = func(string) (string, string, error) { return user, secret, nil }
	resp, err := registryGet(ctx, opts, host, "/")
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	resp.Body.Close()
	cf, err := dockerConfig()
	if err != nil {
		return err
	}
	key := authKey(host)
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: user, Password: secret, ServerAddress: key}); err != nil {
		return fmt.Errorf("login to %s: store the credentials in %s: %w", host, cf.Filename, err)
	}
	return nil
}

// Logout removes server's credentials from docker's config.json; removed
// is false when there were none.
func Logout(server string) (removed bool, err error) {
	cf, err := dockerConfig()
	if err != nil {
		return false, err
	}
	key := authKey(loginHost(server))
	if _, ok := cf.GetAuthConfigs()[key]; !ok && cf.CredentialsStore == "" && cf.CredentialHelpers[key] == "" {
		return false, nil
	}
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return false, fmt.Errorf("logout from %s: %w", server, err)
	}
	return true, nil
}

// loginHost is the registry host a login names: docker.io for Docker
// Hub's names, the host of a URL.
func loginHost(server string) string {
	server = strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	server, _, _ = strings.Cut(server, "/")
	if server == "" || server == "index.docker.io" || server == dockerHubHost {
		return "docker.io"
	}
	return server
}

// registryGet GETs path under the registry's /v2 API with the
// credentials of opts, answering the registry's auth challenge (basic or
// bearer) as containerd's authorizer does. A non-2xx answer is an error.
func registryGet(ctx context.Context, opts RegistryOptions, name, path string) (*http.Response, error) {
	creds := opts.Credentials
	if creds == nil {
		creds = DockerConfigCredentials
	}
	hosts, err := opts.hosts(creds)(name)
	if err != nil {
		return nil, err
	}
	h := hosts[len(hosts)-1] // the registry itself, not a mirror
	url := h.Scheme + "://" + h.Host + h.Path + path
	do := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if err := h.Authorizer.Authorize(ctx, req); err != nil {
			return nil, err
		}
		return h.Client.Do(req)
	}
	resp, err := do()
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		if err := h.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		resp, err = do()
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("GET %s: %w: %s %s", url, ErrUnauthorized, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil, fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

// SearchOptions are `search`'s flags.
type SearchOptions struct {
	Registry RegistryOptions
	Limit    int // at most this many results; 0: no limit
}

// SearchResult is one row of `search`, docker's registry.SearchResult
// (a catalog has no stars or descriptions: they are zero).
type SearchResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
}

// catalogPage is how many repositories Search asks a catalog for at once.
const catalogPage = 1000

// Search lists the repositories of a registry's catalog (/v2/_catalog)
// whose name contains the term. query is [REGISTRY/]TERM; a registry must
// be named unless it is Docker Hub, which has no catalog.
func Search(ctx context.Context, query string, opts SearchOptions) ([]SearchResult, error) {
	host, term := splitSearch(query)
	if host == "docker.io" {
		return nil, fmt.Errorf("search %q: Docker Hub serves no catalog; name a registry: berth search REGISTRY/%s", query, term)
	}
	var found []SearchResult
	next := fmt.Sprintf("/_catalog?n=%d", catalogPage)
	for next != "" {
		resp, err := registryGet(ctx, opts.Registry, host, next)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", host, err)
		}
		var catalog struct{ Repositories []string }
		err = json.NewDecoder(resp.Body).Decode(&catalog)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("search %s: read the catalog: %w", host, err)
		}
		for _, repo := range catalog.Repositories {
			if strings.Contains(repo, term) {
				found = append(found, SearchResult{Name: host + "/" + repo})
			}
		}
		next = nextPage(resp.Header.Get("Link"))
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	if opts.Limit > 0 && len(found) > opts.Limit {
		found = found[:opts.Limit]
	}
	return found, nil
}

// splitSearch splits [REGISTRY/]TERM: the first part names a registry when
// it has a dot or a port, or is localhost, as in an image reference.
func splitSearch(query string) (host, term string) {
	first, rest, ok := strings.Cut(query, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, rest
	}
	return "docker.io", query
}

// nextPage is the path of the next page a catalog's Link header names
// (`</v2/_catalog?last=x&n=1000>; rel="next"`), without its /v2 prefix.
func nextPage(link string) string {
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start || !strings.Contains(link[end:], `rel="next"`) {
		return ""
	}
	return strings.TrimPrefix(link[start+1:end], "/v2")
}
