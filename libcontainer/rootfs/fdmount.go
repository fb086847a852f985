package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The fd-based mounts of realMounter. Each falls back to mount(2) on a
// /proc/self/fd path only where the kernel lacks the new mount API
// (before 5.2; mount_setattr before 5.12), which is as safe as the
// container's /proc at that moment and no safer.

func (realMounter) BindOver(src, target *os.File, rec bool) error {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH
	msFlags := uintptr(unix.MS_BIND)
	if rec {
		flags |= unix.AT_RECURSIVE
		msFlags |= unix.MS_REC
	}
	tree, err := unix.OpenTree(int(src.Fd()), "", uint(flags))
	if errors.Is(err, unix.ENOSYS) {
		return unix.Mount(procFdPath(src), procFdPath(target), "", msFlags, "")
	}
	if err != nil {
		return os.NewSyscallError("open_tree", err)
	}
	defer unix.Close(tree)
	return attachOver(tree, target)
}

func (realMounter) MountOver(fstype string, flags uintptr, data string, target *os.File) error {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		return unix.Mount(fstype, procFdPath(target), fstype, flags, data)
	}
	if err != nil {
		return os.NewSyscallError("fsopen "+fstype, err)
	}
	defer unix.Close(fsfd)
	if err := fsconfigData(fsfd, data); err != nil {
		return fmt.Errorf("%s option %w", fstype, err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return os.NewSyscallError("fsconfig create "+fstype, err)
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, mountAttrs(flags))
	if err != nil {
		return os.NewSyscallError("fsmount "+fstype, err)
	}
	defer unix.Close(mnt)
	return attachOver(mnt, target)
}

func (realMounter) MakeReadonly(target *os.File) error {
	// AT_RECURSIVE: a read-only path stays read-only all the way down, the
	// mounts below it included.
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	err := unix.MountSetattr(int(target.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
	if errors.Is(err, unix.ENOSYS) {
		return remountReadonly(realMounter{}, procFdPath(target))
	}
	return os.NewSyscallError("mount_setattr", err)
}

// fsconfigData sets mount(2)'s comma-separated file system options on a
// file system context: key=value as a string, a bare key as a flag.
func fsconfigData(fsfd int, data string) error {
	for _, opt := range strings.Split(data, ",") {
		if opt == "" {
			continue
		}
		var err error
		if key, value, ok := strings.Cut(opt, "="); ok {
			err = unix.FsconfigSetString(fsfd, key, value)
		} else {
			err = unix.FsconfigSetFlag(fsfd, opt)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", opt, os.NewSyscallError("fsconfig", err))
		}
	}
	return nil
}

// attachOver attaches the detached mount mnt over the file target holds.
func attachOver(mnt int, target *os.File) error {
	err := unix.MoveMount(mnt, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	return os.NewSyscallError("move_mount", err)
}

// mountAttrs translates the per-mount MS_* flags fsmount(2) takes.
func mountAttrs(flags uintptr) int {
	attrs := 0
	for _, m := range []struct {
		ms   uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	} {
		if flags&m.ms != 0 {
			attrs |= m.attr
		}
	}
	return attrs
}
