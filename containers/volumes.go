package containers

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/volumes"
)

// volumeMount is a volume a container mounts, as create resolved it;
// it is kept with the container (inspect's .Mounts, rm -v).
type volumeMount struct {
	Name        string
	Source      string // the volume's _data directory
	Destination string
	ReadOnly    bool `json:",omitempty"`
	// Anonymous says the volume was made for this container (-v /path,
	// --mount without a source, the image's VOLUME): rm -v removes it.
	Anonymous bool `json:",omitempty"`
	// Mode is inspect's .Mode: "ro" for a read-only -v, as docker shows.
	Mode string `json:",omitempty"`
	// NoCopy leaves an empty volume without the image's content.
	NoCopy bool `json:",omitempty"`
}

// volumeRequests are the volume mounts a container asks for, in docker's
// order: -v, --mount, then each of the image's VOLUME paths that no
// mount of the flags covers already (sorted, so that a create is the same
// each time). A request without a Source is an anonymous volume.
func volumeRequests(hc HostConfig, img ocispec.ImageConfig) ([]Mount, error) {
	var out []Mount
	covered := map[string]bool{}
	for _, b := range hc.Binds {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		covered[filepath.Clean(m.Target)] = true
		if m.Type == "volume" {
			out = append(out, m)
		}
	}
	for _, m := range hc.Mounts {
		covered[filepath.Clean(m.Target)] = true
		if m.Type == "volume" {
			out = append(out, m)
		}
	}
	for dest := range hc.Tmpfs {
		covered[filepath.Clean(dest)] = true
	}
	var fromImage []string
	for dest := range img.Volumes {
		if dest = filepath.Clean(dest); filepath.IsAbs(dest) && !covered[dest] {
			covered[dest] = true
			fromImage = append(fromImage, dest)
		}
	}
	sort.Strings(fromImage)
	for _, dest := range fromImage {
		out = append(out, Mount{Type: "volume", Target: dest})
	}
	return out, nil
}

// createVolumes finds or makes (docker's rule: a named volume that is
// missing is created) the volume of each volume mount the container asks
// for. undo removes the anonymous volumes it made, for a create that
// fails later.
func createVolumes(ctx context.Context, client *containerd.Client, store *volumes.Store, hc HostConfig, img ocispec.ImageConfig) ([]volumeMount, func(), error) {
	reqs, err := volumeRequests(hc, img)
	if err != nil {
		return nil, nil, err
	}
	var made []volumeMount
	undo := func() {
		removeAnonymousVolumes(context.WithoutCancel(ctx), client, store, made)
	}
	for _, r := range reqs {
		v, _, err := store.Create(ctx, volumes.CreateOptions{Name: r.Source})
		if err != nil {
			undo()
			return nil, nil, fmt.Errorf("volume for %s: %w", r.Target, err)
		}
		vm := volumeMount{Name: v.Name, Source: v.Mountpoint, Destination: filepath.Clean(r.Target),
			ReadOnly: r.ReadOnly, Anonymous: r.Source == "", NoCopy: r.VolumeOptions != nil && r.VolumeOptions.NoCopy}
		if r.ReadOnly {
			vm.Mode = "ro"
		}
		made = append(made, vm)
	}
	return made, undo, nil
}

// volumeNames is the value of the container's volumes label: the names
// of the volumes it mounts, comma-separated, each once.
func volumeNames(vms []volumeMount) string {
	var names []string
	seen := map[string]bool{}
	for _, vm := range vms {
		if !seen[vm.Name] {
			seen[vm.Name] = true
			names = append(names, vm.Name)
		}
	}
	return strings.Join(names, ",")
}

// copyUpVolumes gives each empty volume of container c a copy of what its
// image has at the volume's path, as docker does when a container first
// mounts a volume (unless nocopy). The rootfs is mounted read-only for it.
func copyUpVolumes(ctx context.Context, client *containerd.Client, c containerd.Container, vms []volumeMount) error {
	var todo []volumeMount
	for _, vm := range vms {
		if !vm.NoCopy {
			todo = append(todo, vm)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return withRootfs(ctx, client, c, false, func(root string) error {
		for _, vm := range todo {
			if err := volumes.CopyUp(volumes.Volume{Name: vm.Name, Mountpoint: vm.Source}, root, vm.Destination); err != nil {
				return err
			}
		}
		return nil
	})
}

// removeAnonymousVolumes removes the anonymous volumes among vms (rm -v,
// run --rm). One another container still uses is kept, as docker keeps it.
func removeAnonymousVolumes(ctx context.Context, client *containerd.Client, store *volumes.Store, vms []volumeMount) error {
	users := volumes.ContainerUsers{Client: client}
	for _, vm := range vms {
		if !vm.Anonymous {
			continue
		}
		if err := store.Remove(ctx, vm.Name, users); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			return fmt.Errorf("remove anonymous volume %s: %w", vm.Name, err)
		}
	}
	return nil
}
