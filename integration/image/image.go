// Package image writes OCI image archives for tests: an OCI image layout
// (oci-layout, index.json, blobs/sha256/…) packed as one tar, the format
// `ctr images import`, `skopeo copy oci-archive:` and `docker load` read.
//
// The CI machine has no registry to pull from, so every image a test runs is
// made here from a rootfs on disk: one gzip-compressed layer, a config with
// the command and environment, a manifest and an index naming the image.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/integration/bundle"
)

// annotationImageName is containerd's name for an image in index.json
// (containerd's images.AnnotationImageName): `ctr images import` names the
// image after it.
const annotationImageName = "io.containerd.image.name"

// epoch is every file's time in a layer, so that the same rootfs always
// gives the same layer digest.
var epoch = time.Unix(0, 0).UTC()

// Config is what the image's config blob says about how to run it.
type Config struct {
	Cmd        []string
	Entrypoint []string
	Env        []string
	WorkingDir string
}

// Busybox writes to w an archive of an image named name (a full reference,
// e.g. "docker.io/berthtest/busybox:latest") whose one layer is the busybox
// rootfs of bundle.Busybox, with Cmd ["sh"] and a PATH.
func Busybox(w io.Writer, name string) error {
	return busybox(w, name, Write)
}

// BusyboxDocker is Busybox in docker-archive form (`docker save`'s classic
// layout: manifest.json, the config as <hex>.json, the layer uncompressed
// as <hex>/layer.tar), the form `docker load` and containerd's importer
// read without an index.
func BusyboxDocker(w io.Writer, name string) error {
	return busybox(w, name, WriteDocker)
}

func busybox(w io.Writer, name string, write func(io.Writer, string, string, Config) error) error {
	dir, err := os.MkdirTemp("", "berth-image-")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(dir)
	if _, err := bundle.Busybox(dir, "sh"); err != nil {
		return err
	}
	return write(w, name, filepath.Join(dir, "rootfs"), Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	})
}

// Write writes to w an OCI image archive named name whose single layer is
// the tree at rootfs, for this machine's platform.
func Write(w io.Writer, name, rootfs string, cfg Config) error {
	layer, config, platform, err := build(rootfs, cfg)
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(v1.Manifest{
		Versioned: ocispec.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    descriptor(v1.MediaTypeImageConfig, config),
		Layers:    []v1.Descriptor{descriptor(v1.MediaTypeImageLayerGzip, layer)},
	})
	if err != nil {
		return fmt.Errorf("image: manifest: %w", err)
	}
	md := descriptor(v1.MediaTypeImageManifest, manifest)
	md.Platform = &platform
	md.Annotations = map[string]string{
		annotationImageName:  name,
		v1.AnnotationRefName: refName(name),
	}
	index, err := json.Marshal(v1.Index{
		Versioned: ocispec.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{md},
	})
	if err != nil {
		return fmt.Errorf("image: index: %w", err)
	}
	layout, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})

	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{v1.ImageLayoutFile, layout},
		{"index.json", index},
		{blobPath(layer), layer},
		{blobPath(config), config},
		{blobPath(manifest), manifest},
	} {
		if err := writeFile(tw, f.name, f.data); err != nil {
			return fmt.Errorf("image: archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image: archive: %w", err)
	}
	return nil
}

// build makes the gzip-compressed layer of the tree at rootfs and the
// config blob that names it, for this machine's platform.
func build(rootfs string, cfg Config) (layer, config []byte, platform v1.Platform, err error) {
	layer, diffID, err := layerBlob(rootfs)
	if err != nil {
		return nil, nil, v1.Platform{}, fmt.Errorf("image: layer of %s: %w", rootfs, err)
	}
	platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	config, err = json.Marshal(v1.Image{
		Created:  &epoch,
		Platform: platform,
		Config: v1.ImageConfig{
			Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint, Env: cfg.Env, WorkingDir: cfg.WorkingDir,
		},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []v1.History{{Created: &epoch, CreatedBy: "berth integration/image"}},
	})
	if err != nil {
		return nil, nil, v1.Platform{}, fmt.Errorf("image: config: %w", err)
	}
	return layer, config, platform, nil
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteDocker writes to w a docker-archive (classic `docker save` layout)
// of an image named name whose single layer is the tree at rootfs.
func WriteDocker(w io.Writer, name, rootfs string, cfg Config) error {
	gzLayer, config, _, err := build(rootfs, cfg)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzLayer))
	if err != nil {
		return fmt.Errorf("image: layer: %w", err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("image: layer: %w", err)
	}
	configFile := fmt.Sprintf("%x.json", sha256.Sum256(config))
	layerFile := fmt.Sprintf("%x/layer.tar", sha256.Sum256(layer))
	manifest, err := json.Marshal([]dockerManifest{{Config: configFile, RepoTags: []string{dockerRepoTag(name)}, Layers: []string{layerFile}}})
	if err != nil {
		return fmt.Errorf("image: manifest.json: %w", err)
	}
	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{configFile, config}, {layerFile, layer}, {"manifest.json", manifest}} {
		if err := writeFile(tw, f.name, f.data); err != nil {
			return fmt.Errorf("image: archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image: archive: %w", err)
	}
	return nil
}

// dockerRepoTag is the name as docker's manifest.json writes it: without
// "docker.io/" and "library/".
func dockerRepoTag(name string) string {
	name = strings.TrimPrefix(name, "docker.io/")
	return strings.TrimPrefix(name, "library/")
}

// refName is the OCI ref name for a full reference: its tag ("latest" for
// "docker.io/x/y:latest"), as OCI suggests.
func refName(name string) string {
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == ':' {
			return name[i+1:]
		}
	}
	return "latest"
}

func descriptor(mediaType string, blob []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
}

func blobPath(blob []byte) string {
	return fmt.Sprintf("blobs/sha256/%x", sha256.Sum256(blob))
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// layerBlob tars and gzips the tree at root, returning the compressed blob
// and the digest of the uncompressed tar (the diff ID). Every entry is owned
// by root with the file's own mode; the order is sorted so the digest is
// stable.
func layerBlob(root string) (blob []byte, diffID digest.Digest, err error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	digester := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, digester.Hash()))
	if err := addTree(tw, root); err != nil {
		return nil, "", err
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digester.Digest(), nil
}

func addTree(tw *tar.Writer, root string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := addEntry(tw, root, p); err != nil {
			return err
		}
	}
	return nil
}

func addEntry(tw *tar.Writer, root, p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var link string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
