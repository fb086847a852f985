package volumes

import (
	"errors"
	"fmt"
	"os"

	"github.com/containerd/continuity/fs"
	securejoin "github.com/cyphar/filepath-securejoin"
)

// CopyUp gives a new, empty volume a copy of what the image has at the
// path it is mounted on, as docker does the first time a volume is
// mounted. rootfs is the container's mounted root; ctrPath is resolved
// inside it (an image's symlink cannot point the copy at the host). A
// volume with anything in it, or an image without that directory, is
// left as it is.
func CopyUp(v Volume, rootfs, ctrPath string) error {
	entries, err := os.ReadDir(v.Mountpoint)
	if err != nil {
		return fmt.Errorf("copy image content into volume %s: %w", v.Name, err)
	}
	if len(entries) > 0 {
		return nil
	}
	src, err := securejoin.SecureJoin(rootfs, ctrPath)
	if err != nil {
		return fmt.Errorf("copy image content into volume %s: resolve %s in the image: %w", v.Name, ctrPath, err)
	}
	fi, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy image content into volume %s: %w", v.Name, err)
	}
	if !fi.IsDir() {
		return nil
	}
	// continuity's CopyDir keeps owners, modes, times, xattrs, hard links
	// and special files: what docker's copy-up keeps.
	if err := fs.CopyDir(v.Mountpoint, src, fs.WithAllowXAttrErrors()); err != nil {
		return fmt.Errorf("copy image content at %s into volume %s: %w", ctrPath, v.Name, err)
	}
	return nil
}
