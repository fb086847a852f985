package images

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
)

// NormalizeReference turns a name as a user types it into the full name
// containerd stores, as docker does: "busybox" → "docker.io/library/busybox:latest".
func NormalizeReference(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("invalid reference format %q: %w", ref, err)
	}
	return named.String(), nil
}

// repoTag splits a stored name into docker's REPOSITORY and TAG columns
// ("docker.io/library/busybox:1" → "busybox", "1"); a name by digest only
// has tag "<none>". ok is false for a name that is no docker reference.
func repoTag(name string) (repo, tag string, ok bool) {
	if _, err := digest.Parse(name); err == nil {
		return "<none>", "<none>", true // an untagged image, stored by its ID
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", "", false
	}
	repo = reference.FamiliarName(named)
	tag = "<none>"
	if t, isTagged := named.(reference.Tagged); isTagged {
		tag = t.Tag()
	}
	return repo, tag, true
}

// familiar is the short name docker shows for a stored name.
func familiar(name string) string {
	if _, err := digest.Parse(name); err == nil {
		return name
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(named)
}

// ShortID is docker's IMAGE ID column: the first 12 hex digits of the
// config digest.
func ShortID(id digest.Digest) string {
	hex := id.Encoded()
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

var hexPrefix = regexp.MustCompile(`^(sha256:)?[0-9a-f]{1,64}$`)

// idPrefix says whether ref may name an image by (a prefix of) its ID,
// and gives the hex part.
func idPrefix(ref string) (string, bool) {
	if !hexPrefix.MatchString(ref) {
		return "", false
	}
	return strings.TrimPrefix(ref, "sha256:"), true
}

// createdSince is docker's CREATED column: "2 hours ago"; "N/A" when the
// config gives no time.
func createdSince(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

// humanSize is docker's SIZE column (decimal units, 3 significant digits).
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// FilterReference keeps the rows `docker images REPOSITORY[:TAG]` shows:
// those of that repository (docker's familiar or full form), and of that
// tag when one is given.
func FilterReference(rows []Summary, ref string) ([]Summary, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w", ref, err)
	}
	repo := reference.FamiliarName(named)
	tagged, hasTag := named.(reference.Tagged)
	var kept []Summary
	for _, r := range rows {
		if r.Repository == repo && (!hasTag || r.Tag == tagged.Tag()) {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// FamiliarName is the short name docker shows for a full name
// ("docker.io/library/busybox:latest" → "busybox:latest").
func FamiliarName(name string) string { return familiar(name) }

// Name is a reference split as pull and push show it.
type Name struct {
	Full       string // docker.io/library/busybox:latest
	Repository string // docker.io/library/busybox
	Path       string // library/busybox
	Tag        string // latest ("" for a reference by digest)
	DefaultTag bool   // the user gave no tag: "latest" was added
}

// ParseName normalises ref as docker does and splits it.
func ParseName(ref string) (Name, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Name{}, fmt.Errorf("invalid reference format %q: %w", ref, err)
	}
	_, tagged := named.(reference.Tagged)
	_, digested := named.(reference.Digested)
	full := reference.TagNameOnly(named)
	n := Name{Full: full.String(), Repository: named.Name(), Path: reference.Path(named), DefaultTag: !tagged && !digested}
	if t, ok := full.(reference.Tagged); ok {
		n.Tag = t.Tag()
	}
	return n, nil
}
