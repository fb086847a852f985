package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// readArchive returns the files of an archive by name.
func readArchive(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = b
	}
}

func blob(t *testing.T, files map[string][]byte, d v1.Descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s (%s) missing", d.Digest, d.MediaType)
	}
	if digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: content does not match its descriptor", d.Digest)
	}
	return b
}

func TestWriteIsAValidLayout(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool", filepath.Join(root, "bin", "alias")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cfg := Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}
	if err := Write(&buf, "docker.io/berthtest/tool:v1", root, cfg); err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, buf.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", files["oci-layout"])
	}

	var index v1.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(index.Manifests))
	}
	md := index.Manifests[0]
	if md.Annotations[annotationImageName] != "docker.io/berthtest/tool:v1" || md.Annotations[v1.AnnotationRefName] != "v1" {
		t.Errorf("manifest annotations = %v", md.Annotations)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("manifest platform = %+v", md.Platform)
	}

	var m v1.Manifest
	if err := json.Unmarshal(blob(t, files, md), &m); err != nil {
		t.Fatal(err)
	}
	var img v1.Image
	if err := json.Unmarshal(blob(t, files, m.Config), &img); err != nil {
		t.Fatal(err)
	}
	if len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "sh" || len(img.Config.Env) != 1 {
		t.Errorf("image config = %+v", img.Config)
	}
	if len(m.Layers) != 1 || len(img.RootFS.DiffIDs) != 1 {
		t.Fatalf("layers %d, diff ids %d; want 1 and 1", len(m.Layers), len(img.RootFS.DiffIDs))
	}

	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, m.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(layer) != img.RootFS.DiffIDs[0] {
		t.Errorf("diff id %s does not match the uncompressed layer", img.RootFS.DiffIDs[0])
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[hdr.Name] = hdr
	}
	if h := entries["bin/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("layer lacks the directory bin/: %v", entries)
	}
	if h := entries["bin/tool"]; h == nil || h.Mode&0o777 != 0o755 || h.Uid != 0 {
		t.Errorf("bin/tool header = %+v", h)
	}
	if h := entries["bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("bin/alias header = %+v", h)
	}

	// The same tree gives the same bytes: the digests are stable.
	var again bytes.Buffer
	if err := Write(&again, "docker.io/berthtest/tool:v1", root, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two archives of the same tree differ")
	}
}

func TestRefName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/berthtest/busybox:latest": "latest",
		"localhost:5000/x/y:v2":              "v2",
		"localhost:5000/x/y":                 "latest",
		"busybox":                            "latest",
	} {
		if got := refName(in); got != want {
			t.Errorf("refName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWriteDockerIsAValidArchive checks the docker-archive: manifest.json
// names the image as docker does and points at a config whose diff ID is
// the digest of the uncompressed layer.tar holding the tree.
func TestWriteDockerIsAValidArchive(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteDocker(&buf, "docker.io/library/tool:v1", root, Config{Cmd: []string{"sh"}}); err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, buf.Bytes())
	var manifest []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json %q: %v", files["manifest.json"], err)
	}
	m := manifest[0]
	if len(m.RepoTags) != 1 || m.RepoTags[0] != "tool:v1" || len(m.Layers) != 1 {
		t.Fatalf("manifest.json entry %+v, want RepoTags [tool:v1] and one layer", m)
	}
	var img v1.Image
	if err := json.Unmarshal(files[m.Config], &img); err != nil {
		t.Fatalf("config %s: %v", m.Config, err)
	}
	layer, ok := files[m.Layers[0]]
	if !ok || len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0] != digest.FromBytes(layer) {
		t.Fatalf("layer %s (present %v) does not match the config's diff IDs %v", m.Layers[0], ok, img.RootFS.DiffIDs)
	}
	if got := readArchive(t, layer); string(got["hello"]) != "hi\n" {
		t.Errorf("layer.tar's hello = %q", got["hello"])
	}
	if img.OS != "linux" || img.Architecture != runtime.GOARCH || len(img.Config.Cmd) != 1 {
		t.Errorf("config: os %q arch %q cmd %v", img.OS, img.Architecture, img.Config.Cmd)
	}
}
