package images

import (
	"context"
	"fmt"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ImageInspect is `docker image inspect`'s shape: docker's field names
// (docker's api/types/image.InspectResponse), so that templates such as
// '{{.Config.Cmd}}' work. Docker's API module is not in berth's module
// graph, and it would bring the whole engine; this holds the fields berth
// can fill from containerd.
type ImageInspect struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Created      string
	Author       string `json:",omitempty"`
	Config       *ContainerConfig
	Architecture string
	Variant      string `json:",omitempty"`
	Os           string
	Size         int64
	RootFS       RootFS
	Metadata     Metadata
}

// ContainerConfig is the part of docker's container.Config an image sets.
type ContainerConfig struct {
	User         string
	ExposedPorts map[string]struct{} `json:",omitempty"`
	Env          []string
	Cmd          []string
	Volumes      map[string]struct{} `json:",omitempty"`
	WorkingDir   string
	Entrypoint   []string
	Labels       map[string]string
	StopSignal   string `json:",omitempty"`
	// Docker's extensions of the OCI config, which `build` writes.
	Healthcheck *dockerspec.HealthcheckConfig `json:",omitempty"`
	OnBuild     []string
	Shell       []string `json:",omitempty"`
}

// RootFS is docker's image RootFS: the layers' diff IDs.
type RootFS struct {
	Type   string
	Layers []string
}

// Metadata is docker's image Metadata.
type Metadata struct {
	LastTagTime string `json:",omitempty"`
}

// Inspect describes the image ref names, for the host's platform.
func Inspect(ctx context.Context, client *containerd.Client, ref string) (ImageInspect, error) {
	r, err := resolve(ctx, client, ref)
	if err != nil {
		return ImageInspect{}, err
	}
	img := r.image()
	cfg, err := readConfig(ctx, client.ContentStore(), img.Target)
	if err != nil {
		return ImageInspect{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	size, err := imageSize(ctx, client, img)
	if err != nil {
		return ImageInspect{}, fmt.Errorf("inspect image %s: size: %w", ref, err)
	}
	out := ImageInspect{
		ID: r.id.String(), RepoTags: []string{}, RepoDigests: []string{},
		Author: cfg.image.Author, Architecture: cfg.image.Architecture, Variant: cfg.image.Variant, Os: cfg.image.OS,
		Size: size, RootFS: RootFS{Type: cfg.image.RootFS.Type, Layers: []string{}},
		Config: containerConfig(cfg),
	}
	if cfg.image.Created != nil {
		out.Created = cfg.image.Created.Format(time.RFC3339Nano)
	}
	for _, l := range cfg.image.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, l.String())
	}
	out.RepoTags, out.RepoDigests = repoNames(r.names)
	return out, nil
}

func containerConfig(cfg imageConfig) *ContainerConfig {
	c := cfg.image.Config
	return &ContainerConfig{
		User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Cmd: c.Cmd, Volumes: c.Volumes,
		WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint, Labels: c.Labels, StopSignal: c.StopSignal,
		Healthcheck: cfg.docker.Config.Healthcheck, OnBuild: cfg.docker.Config.OnBuild, Shell: cfg.docker.Config.Shell,
	}
}

// repoNames gives docker's RepoTags ("busybox:latest") and RepoDigests
// ("busybox@sha256:…", the manifest digest) of the stored names.
func repoNames(names []images.Image) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	seen := map[string]bool{}
	for _, img := range names {
		if _, err := digest.Parse(img.Name); err == nil {
			continue // untagged, stored by its ID
		}
		named, err := reference.ParseNormalizedNamed(img.Name)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.Tagged); ok {
			tags = append(tags, reference.FamiliarString(named))
		}
		byDigest, err := reference.WithDigest(reference.TrimNamed(named), img.Target.Digest)
		if err == nil && !seen[byDigest.String()] {
			seen[byDigest.String()] = true
			digests = append(digests, reference.FamiliarString(byDigest))
		}
	}
	return tags, digests
}
