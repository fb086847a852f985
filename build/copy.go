package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/sys/user"
	"github.com/opencontainers/go-digest"
)

// copySpec is what a COPY or ADD copies, and how.
type copySpec struct {
	sd           *instructions.SourcesAndDest
	from         string // COPY --from
	chown, chmod string
	add          bool // ADD: unpack local archives, download URLs
	// unsupported are the flags given that berth does not implement yet
	// (refused rather than ignored).
	unsupported []string
}

func specOf(cmd instructions.Command) (copySpec, bool) {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		return copySpec{sd: &c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			unsupported: flagsSet(map[string]bool{"--exclude": len(c.ExcludePatterns) > 0, "--parents": c.Parents})}, true
	case *instructions.AddCommand:
		return copySpec{sd: &c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, add: true,
			unsupported: flagsSet(map[string]bool{"--exclude": len(c.ExcludePatterns) > 0, "--checksum": c.Checksum != "",
				"--keep-git-dir": c.KeepGitDir != nil, "--unpack": c.Unpack != nil})}, true
	}
	return copySpec{}, false
}

// flagsSet is the names of the flags set, in order.
func flagsSet(set map[string]bool) []string {
	var names []string
	for _, name := range sortedKeys(set) {
		if set[name] {
			names = append(names, name)
		}
	}
	return names
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// sourcesHash is the content hash of what a COPY or ADD copies: the files
// from the context, the image ID of a --from stage or image, and the
// downloaded bytes of an ADD's URL.
func (b *builder) sourcesHash(ctx context.Context, spec copySpec) (string, error) {
	if len(spec.sd.SourceContents) > 0 {
		return "", fmt.Errorf("COPY/ADD with a heredoc is not supported yet: %w", errdefs.ErrNotImplemented)
	}
	if len(spec.unsupported) > 0 {
		return "", fmt.Errorf("%s is not supported yet: %w", strings.Join(spec.unsupported, ", "), errdefs.ErrNotImplemented)
	}
	if spec.from != "" {
		src, err := b.fromState(ctx, spec.from)
		if err != nil {
			return "", err
		}
		return "from " + src.id.String(), nil
	}
	var local []string
	var remote []string
	for _, s := range spec.sd.SourcePaths {
		if spec.add && isURL(s) {
			d, err := b.download(ctx, s)
			if err != nil {
				return "", err
			}
			remote = append(remote, s+"@"+d.String())
		} else {
			local = append(local, s)
		}
	}
	if len(local) == 0 {
		return strings.Join(remote, " "), nil
	}
	if b.context.dir == "" {
		return "", fmt.Errorf("no build context (the Dockerfile came on stdin): cannot copy %s", strings.Join(local, " "))
	}
	srcs, err := match(b.context.dir, "build context "+b.context.dir, local, b.context.ignored)
	if err != nil {
		return "", err
	}
	h, err := hashTree(b.context.dir, srcs, b.context.ignored)
	if err != nil {
		return "", err
	}
	return strings.Join(append(remote, h), " "), nil
}

// fromState is the state COPY --from names: an earlier stage (by name or
// index), else an image.
func (b *builder) fromState(ctx context.Context, from string) (*state, error) {
	if i, ok := instructions.HasStage(b.df.Stages[:len(b.stages)], from); ok {
		return b.stages[i], nil
	}
	if i, err := strconv.Atoi(from); err == nil && i >= 0 && i < len(b.stages) {
		return b.stages[i], nil
	}
	if b.fromImages == nil {
		b.fromImages = map[string]*state{}
	}
	if st, ok := b.fromImages[from]; ok {
		return st, nil
	}
	stored, err := b.baseImage(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("COPY --from=%s: no stage or image of that name: %w", from, err)
	}
	st := &state{id: stored.ID, layers: stored.Layers}
	if err := jsonUnmarshal(stored.Config, &st.img); err != nil {
		return nil, err
	}
	b.fromImages[from] = st
	return st, nil
}

// copy runs a COPY or ADD into a new layer over st.
func (b *builder) copy(ctx context.Context, st *state, cmd instructions.Command) error {
	spec, _ := specOf(cmd)
	return b.withLayer(ctx, st, func(key string) error {
		return b.withMounted(ctx, key, func(root string) error {
			owner, err := parseChown(root, spec.chown)
			if err != nil {
				return err
			}
			mode, err := parseChmod(spec.chmod)
			if err != nil {
				return err
			}
			dest := copyDest(st.img.Config.WorkingDir, spec.sd.DestPath)
			w := &writer{root: root, owner: owner, mode: mode}
			return b.copySources(ctx, spec, w, dest)
		})
	})
}

// copyDest is a COPY or ADD destination in the image: a relative one
// under the WORKDIR, and one that names a directory (a trailing "/", or
// "." and "/." as in `COPY app.py .`) ending in "/", as docker's.
func copyDest(workdir, dest string) string {
	dir := dest == "" || dest == "." || strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		if workdir == "" {
			workdir = "/"
		}
		dest = path.Join(workdir, dest)
	} else if dir {
		dest = path.Clean(dest)
	}
	if dir && !strings.HasSuffix(dest, "/") {
		dest += "/"
	}
	return dest
}

// copySources copies each source of spec to dest through w.
func (b *builder) copySources(ctx context.Context, spec copySpec, w *writer, dest string) error {
	many := len(spec.sd.SourcePaths) > 1
	if spec.from != "" {
		src, err := b.fromState(ctx, spec.from)
		if err != nil {
			return err
		}
		return b.withView(ctx, src, func(srcRoot string) error {
			srcs, err := match(srcRoot, "stage or image "+spec.from, spec.sd.SourcePaths, func(string) bool { return false })
			if err != nil {
				return err
			}
			return w.copyAll(srcRoot, srcs, dest, many || len(srcs) > 1, func(string) bool { return false })
		})
	}
	var local []string
	for _, s := range spec.sd.SourcePaths {
		if spec.add && isURL(s) {
			if err := w.addURL(b.downloads[s], s, dest, many); err != nil {
				return err
			}
			continue
		}
		local = append(local, s)
	}
	if len(local) == 0 {
		return nil
	}
	srcs, err := match(b.context.dir, "build context "+b.context.dir, local, b.context.ignored)
	if err != nil {
		return err
	}
	if spec.add {
		var rest []string
		for _, s := range srcs {
			ok, err := w.untarIfArchive(ctx, filepath.Join(b.context.dir, s), dest)
			if err != nil {
				return fmt.Errorf("ADD %s: %w", s, err)
			}
			if !ok {
				rest = append(rest, s)
			}
		}
		srcs = rest
	}
	return w.copyAll(b.context.dir, srcs, dest, many || len(srcs) > 1, b.context.ignored)
}

// download fetches an ADD's URL once per build into a temporary file.
func (b *builder) download(ctx context.Context, rawURL string) (digest.Digest, error) {
	if d, ok := b.downloads[rawURL]; ok {
		return d.digest, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ADD %s: download: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ADD %s: download: %s", rawURL, resp.Status)
	}
	f, err := os.CreateTemp("", "berth-build-add-")
	if err != nil {
		return "", err
	}
	defer f.Close()
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(io.MultiWriter(f, dg.Hash()), resp.Body); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("ADD %s: download: %w", rawURL, err)
	}
	if b.downloads == nil {
		b.downloads = map[string]downloaded{}
	}
	b.downloads[rawURL] = downloaded{path: f.Name(), digest: dg.Digest()}
	return dg.Digest(), nil
}

// downloaded is an ADD URL's content, fetched.
type downloaded struct {
	path   string
	digest digest.Digest
}

// addURL puts a downloaded file at dest (into it, named after the URL's
// last path element, when dest is a directory), mode 0600 as docker's.
func (w *writer) addURL(d downloaded, rawURL, dest string, many bool) error {
	if strings.HasSuffix(dest, "/") || many {
		u, err := url.Parse(rawURL)
		if err != nil {
			return err
		}
		name := path.Base(u.Path)
		if name == "/" || name == "." {
			return fmt.Errorf("ADD %s: cannot tell a file name from the URL: give one in the destination", rawURL)
		}
		dest = path.Join(dest, name)
	}
	mode := w.mode
	if mode == nil {
		m := fs.FileMode(0o600)
		mode = &m
	}
	ww := *w
	ww.mode = mode
	return ww.file(d.path, dest)
}

// untarIfArchive unpacks a local tar archive (plain or compressed) into
// the directory dest, as ADD does; it says whether src was one.
func (w *writer) untarIfArchive(ctx context.Context, src, dest string) (bool, error) {
	fi, err := os.Stat(src)
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r, err := compression.DecompressStream(f)
	if err != nil {
		return false, nil
	}
	defer r.Close()
	if !isTar(r) {
		return false, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	r2, err := compression.DecompressStream(f)
	if err != nil {
		return false, err
	}
	defer r2.Close()
	dir, err := w.mkdirAll(dest)
	if err != nil {
		return false, err
	}
	if _, err := archive.Apply(ctx, dir, r2); err != nil {
		return false, fmt.Errorf("unpack into %s: %w", dest, err)
	}
	return true, nil
}

// jsonUnmarshal is json.Unmarshal with the error saying what it parsed.
func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse image config: %w", err)
	}
	return nil
}

// parseChown is --chown's owner, USER[:GROUP] by name or number, names
// from the image's /etc/passwd and /etc/group; "" is root.
func parseChown(root, chown string) (*user.ExecUser, error) {
	if chown == "" {
		return &user.ExecUser{}, nil
	}
	passwd, _ := securejoin.SecureJoin(root, "/etc/passwd")
	group, _ := securejoin.SecureJoin(root, "/etc/group")
	u, err := user.GetExecUserPath(chown, &user.ExecUser{}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("--chown=%s: %w", chown, err)
	}
	if _, err := strconv.Atoi(chown); err == nil {
		// docker: --chown=UID alone is that UID and the same GID.
		u.Gid = u.Uid
	}
	return u, nil
}

// parseChmod is --chmod's octal mode; "" keeps the sources' modes.
func parseChmod(chmod string) (*fs.FileMode, error) {
	if chmod == "" {
		return nil, nil
	}
	m, err := strconv.ParseUint(chmod, 8, 32)
	if err != nil || m > 0o7777 {
		return nil, fmt.Errorf("--chmod=%s: not an octal mode", chmod)
	}
	mode := fs.FileMode(m & 0o777)
	return &mode, nil
}
