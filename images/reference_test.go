package images

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestNormalizeReference(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"berthtest/busybox", "docker.io/berthtest/busybox:latest"},
		{"localhost:5000/a/b:v1", "localhost:5000/a/b:v1"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest"},
		{"busybox@sha256:" + hex64, "docker.io/library/busybox@sha256:" + hex64},
	} {
		got, err := NormalizeReference(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeReference(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Busybox", "a b", "busybox:"} {
		if got, err := NormalizeReference(bad); err == nil {
			t.Errorf("NormalizeReference(%q) = %q; want an error", bad, got)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestRepoTag(t *testing.T) {
	for _, tc := range []struct{ in, repo, tag string }{
		{"docker.io/library/busybox:latest", "busybox", "latest"},
		{"docker.io/berthtest/busybox:1", "berthtest/busybox", "1"},
		{"localhost:5000/x:v2", "localhost:5000/x", "v2"},
		{"docker.io/library/busybox@sha256:" + hex64, "busybox", "<none>"},
		{"sha256:" + hex64, "<none>", "<none>"},
	} {
		repo, tag, ok := repoTag(tc.in)
		if !ok || repo != tc.repo || tag != tc.tag {
			t.Errorf("repoTag(%q) = %q, %q, %v; want %q, %q", tc.in, repo, tag, ok, tc.repo, tc.tag)
		}
	}
	if _, _, ok := repoTag("Not/A/Reference"); ok {
		t.Errorf("repoTag of a name docker cannot parse should say so")
	}
}

func TestShortIDAndIDPrefix(t *testing.T) {
	if got := ShortID(digest.Digest("sha256:" + hex64)); got != "0123456789ab" {
		t.Errorf("ShortID = %q, want 0123456789ab", got)
	}
	for _, tc := range []struct {
		in, hex string
		ok      bool
	}{
		{"0123", "0123", true},
		{"sha256:0123456789ab", "0123456789ab", true},
		{"busybox", "", false},
		{"ABC", "", false},
		{"sha256:", "", false},
	} {
		hex, ok := idPrefix(tc.in)
		if hex != tc.hex || ok != tc.ok {
			t.Errorf("idPrefix(%q) = %q, %v; want %q, %v", tc.in, hex, ok, tc.hex, tc.ok)
		}
	}
}

func TestColumns(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(-2 * time.Hour), "2 hours ago"},
		{now.Add(-3 * 24 * time.Hour), "3 days ago"},
		{time.Time{}, "N/A"},
	} {
		if got := createdSince(tc.t, now); got != tc.want {
			t.Errorf("createdSince(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{{1234567, "1.23MB"}, {4261000, "4.26MB"}, {999, "999B"}} {
		if got := humanSize(tc.n); got != tc.want {
			t.Errorf("humanSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestErrorsKeepKind(t *testing.T) {
	err := notFound("nosuch:1")
	if err.Error() != "No such image: nosuch:1" || !errors.Is(err, ErrNotFound) {
		t.Errorf("notFound = %q (is not-found: %v)", err, errors.Is(err, ErrNotFound))
	}
}

func TestFilterReference(t *testing.T) {
	rows := []Summary{
		{Repository: "busybox", Tag: "latest"},
		{Repository: "busybox", Tag: "1"},
		{Repository: "berthtest/busybox", Tag: "latest"},
	}
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"busybox", []string{"busybox:latest", "busybox:1"}},
		{"docker.io/library/busybox:1", []string{"busybox:1"}},
		{"berthtest/busybox", []string{"berthtest/busybox:latest"}},
		{"other", nil},
	} {
		got, err := FilterReference(rows, tc.ref)
		if err != nil {
			t.Fatalf("FilterReference(%q): %v", tc.ref, err)
		}
		var names []string
		for _, r := range got {
			names = append(names, r.Repository+":"+r.Tag)
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("FilterReference(%q) = %v, want %v", tc.ref, names, tc.want)
		}
	}
	if _, err := FilterReference(rows, "Bad Name"); err == nil {
		t.Error("FilterReference of a bad name: no error")
	}
}
