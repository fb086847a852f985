package restart

import (
	"context"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/volumes"
)

// removeAnonymousVolumes removes the anonymous volumes of an auto-remove
// container the monitor removed, as docker's daemon does for --rm. The
// names come from the container's volumes label; the store's place from
// the spec's mount of each (<DataRoot>/volumes/NAME/_data), so that the
// monitor needs no configuration of its own. A volume another container
// uses stays.
func removeAnonymousVolumes(ctx context.Context, client *containerd.Client, labels map[string]string, mounts []specs.Mount) {
	for _, name := range strings.Split(labels[volumes.ContainerLabel], ",") {
		dataRoot := volumeDataRoot(name, mounts)
		if name == "" || dataRoot == "" {
			continue
		}
		store := volumes.NewStore(dataRoot)
		v, err := store.Get(name)
		if err != nil || !v.Anonymous() {
			continue // gone already, or named: named volumes outlive --rm
		}
		err = store.Remove(ctx, name, volumes.ContainerUsers{Client: client})
		if err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			log.G(ctx).WithError(err).WithField("volume", name).Warn("berth restart monitor: auto-remove: remove an anonymous volume")
		}
	}
}

// volumeDataRoot is the data root of the volume called name, from the
// spec's bind of its _data directory; "" unless a mount has exactly that
// layout, so that nothing but a volume of berth's is ever removed.
func volumeDataRoot(name string, mounts []specs.Mount) string {
	for _, m := range mounts {
		src := m.Source
		if m.Type != "bind" || !filepath.IsAbs(src) || filepath.Clean(src) != src || filepath.Base(src) != "_data" {
			continue
		}
		volDir := filepath.Dir(src)
		if filepath.Base(volDir) == name && filepath.Base(filepath.Dir(volDir)) == "volumes" {
			return filepath.Dir(filepath.Dir(volDir))
		}
	}
	return ""
}
