package images

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"

	"github.com/berthrt/berth/config"
)

func TestRegistryHosts(t *testing.T) {
	opts := RegistryOptions{Config: config.Registry{
		Insecure: []string{"lan.example:5000", "insecure.example"},
		Mirrors: map[string][]string{
			"docker.io":        {"https://mirror.example/prefix/", "http://127.0.0.1:5001"},
			"lan.example:5000": {"http://127.0.0.1:5002"},
			"bad.example":      {"ftp://mirror.example"},
		},
	}}
	const pull = docker.HostCapabilityPull | docker.HostCapabilityResolve
	const all = pull | docker.HostCapabilityPush
	for _, tc := range []struct {
		name string
		want []string // scheme://host/path capabilities
		err  bool
	}{
		{name: "docker.io", want: []string{"https://mirror.example/prefix/v2 3", "http://127.0.0.1:5001/v2 3", "https://registry-1.docker.io/v2 7"}},
		{name: "127.0.0.1:5000", want: []string{"http://127.0.0.1:5000/v2 7"}},
		{name: "localhost:5000", want: []string{"http://localhost:5000/v2 7"}},
		{name: "lan.example:5000", want: []string{"http://127.0.0.1:5002/v2 3", "https://lan.example:5000/v2 7"}},
		{name: "ghcr.io", want: []string{"https://ghcr.io/v2 7"}},
		{name: "bad.example", err: true},
	} {
		hosts, err := opts.hosts(func(string) (string, string, error) { return "", "", nil })(tc.name)
		if tc.err {
			if err == nil {
				t.Errorf("%s: no error for a bad mirror", tc.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, h := range hosts {
			got = append(got, fmt.Sprintf("%s://%s%s %d", h.Scheme, h.Host, h.Path, h.Capabilities&all))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: hosts %v, want %v", tc.name, got, tc.want)
		}
	}
	if pull != 3 || all != 7 {
		t.Fatalf("containerd's capability bits changed: pull|resolve %d, all %d", pull, all)
	}
}

func TestRegistryInsecure(t *testing.T) {
	opts := RegistryOptions{Config: config.Registry{Insecure: []string{"lan.example:5000", "any.example"}}}
	for host, want := range map[string]bool{
		"lan.example:5000": true, "lan.example:5001": false, "any.example": true, "any.example:443": true, "ghcr.io": false,
	} {
		if got := opts.insecure(host); got != want {
			t.Errorf("insecure(%q) = %v, want %v", host, got, want)
		}
	}
	// An insecure https registry skips certificate checks and falls back to http.
	h := opts.host("lan.example:5000", "https", nil)
	if _, ok := h.Client.Transport.(*http.Transport); ok {
		t.Errorf("an insecure registry's transport is plain, want containerd's http fallback")
	}
}

func TestSplitSearchAndNextPage(t *testing.T) {
	for q, want := range map[string][2]string{
		"127.0.0.1:5000/busy": {"127.0.0.1:5000", "busy"},
		"localhost/x":         {"localhost", "x"},
		"reg.example/a/b":     {"reg.example", "a/b"},
		"library/busybox":     {"docker.io", "library/busybox"},
		"busybox":             {"docker.io", "busybox"},
	} {
		if h, term := splitSearch(q); h != want[0] || term != want[1] {
			t.Errorf("splitSearch(%q) = %q, %q; want %q", q, h, term, want)
		}
	}
	if got := nextPage(`</v2/_catalog?last=b&n=1000>; rel="next"`); got != "/_catalog?last=b&n=1000" {
		t.Errorf("nextPage: %q", got)
	}
	if got := nextPage(""); got != "" {
		t.Errorf("nextPage of no link: %q", got)
	}
}
