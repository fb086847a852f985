package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// makeParentMountPrivate: pivot_root fails when the mount the new root sits
// on is shared, which it still is when rootfsPropagation asked for a shared
// "/", and the rootfs cannot even be bind-mounted when that mount is
// unbindable ("unbindable"). Making just that one mount private is enough;
// Finish gives the container's root the asked-for propagation.
func (p *preparer) makeParentMountPrivate() error {
	mounts, err := p.sys.mountTable(mountinfo.ParentsFilter(canonical(p.cfg.Rootfs)))
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	var parent *mountinfo.Info
	for _, m := range mounts {
		if parent == nil || len(m.Mountpoint) > len(parent.Mountpoint) {
			parent = m
		}
	}
	if parent == nil || !strings.Contains(parent.Optional, "shared:") && !strings.Contains(parent.Optional, "unbindable") {
		return nil
	}
	if err := p.sys.mnt.Mount("", parent.Mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s (the mount holding rootfs %s) private: %w", parent.Mountpoint, p.cfg.Rootfs, err)
	}
	return nil
}

func enter(cfg *Config, sys *system) error {
	if err := validate(cfg); err != nil {
		return err
	}
	switch {
	case cfg.HostMountNS:
		return chrootOnly(cfg.Rootfs, sys)
	}
	var err error
	if cfg.NoPivot {
		err = moveRoot(cfg.Rootfs, sys)
	} else {
		err = pivotRoot(cfg.Rootfs, sys)
	}
	if err == nil && cfg.LateProc && cfg.Spec.Root != nil && cfg.Spec.Root.Readonly {
		// Before the process that finishes (MountProc, Finish) exists in
		// the shared pid namespace, where another container may write
		// through its /proc/<pid>/root.
		if err = remountReadonly(sys.mnt, "/"); err != nil {
			err = fmt.Errorf("remount root read-only: %w", err)
		}
	}
	return err
}

// chrootOnly changes the root without touching any mount: in the host's
// mount namespace, moving or detaching mounts would change the host.
func chrootOnly(rootfs string, sys *system) error {
	fd, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(fd)
	if err := sys.roots.Fchdir(fd); err != nil {
		return fmt.Errorf("chdir to rootfs %s: %w", rootfs, err)
	}
	if err := sys.roots.Chroot("."); err != nil {
		return fmt.Errorf("chroot into %s: %w", rootfs, err)
	}
	if err := sys.roots.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to / in %s: %w", rootfs, err)
	}
	return nil
}

// Unmount detaches every mount at or below rootfs in the caller's mount
// namespace, deepest first. It cleans up after a container that had no
// mount namespace of its own.
func Unmount(rootfs string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(canonical(rootfs)))
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

// pivotRoot uses pivot_root(".", "."): the old root ends up stacked under
// the new one at "/", where it is detached, without needing a directory to
// put it in (the rootfs may be read-only).
func pivotRoot(rootfs string, sys *system) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(newRoot)
	if err := sys.roots.Fchdir(newRoot); err != nil {
		return fmt.Errorf("chdir to rootfs %s: %w", rootfs, err)
	}
	if err := sys.roots.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", rootfs, err)
	}
	// Back to the old root, now under us, to get rid of it.
	if err := sys.roots.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// The detach must not propagate to the host's mounts that the old
	// root shares a peer group with.
	if err := sys.mnt.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := sys.mnt.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := sys.roots.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	return nil
}

// moveRoot is --no-pivot: move the rootfs mount over "/" and chroot into
// it. The host's mounts stay in the namespace below the chroot.
func moveRoot(rootfs string, sys *system) error {
	if err := hideHostKernelFS(rootfs, sys); err != nil {
		return err
	}
	if err := sys.roots.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir to rootfs %s: %w", rootfs, err)
	}
	if err := sys.mnt.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs %s to /: %w", rootfs, err)
	}
	if err := sys.roots.Chroot("."); err != nil {
		return fmt.Errorf("chroot into %s: %w", rootfs, err)
	}
	if err := sys.roots.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	return nil
}

// hideHostKernelFS removes the host's procfs and sysfs mounts that stay
// behind in the namespace with --no-pivot. The kernel only lets a user
// namespace mount a new proc or sysfs when it can already see one in full
// (mnt_too_revealing), so a half-covered host /proc would stop nested
// containers; and a chroot is no reason to keep the host's /proc around.
func hideHostKernelFS(rootfs string, sys *system) error {
	rootfs = canonical(rootfs)
	mounts, err := sys.mountTable(func(m *mountinfo.Info) (skip, stop bool) {
		if m.FSType != "proc" && m.FSType != "sysfs" {
			return true, false
		}
		return m.Mountpoint == rootfs || strings.HasPrefix(m.Mountpoint, rootfs+"/"), false
	})
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	// Deepest first, so that a parent's detach does not take the paths of
	// the mounts below it away before we get to them.
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := filepath.Clean(mounts[i].Mountpoint)
		if err := sys.mnt.Mount("", mp, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("make %s rslave: %w", mp, err)
		}
		err := sys.mnt.Unmount(mp, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
		// Locked in a user namespace: cover it instead.
		if err := sys.mnt.Mount("tmpfs", mp, "tmpfs", 0, ""); err != nil {
			return fmt.Errorf("cover %s: %w", mp, err)
		}
	}
	return nil
}

// canonical resolves symlinks in a host path so it compares with the mount
// table's paths; on failure the path is used as it is.
func canonical(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return path
}
