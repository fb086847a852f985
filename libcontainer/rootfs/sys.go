package rootfs

import (
	"errors"
	"os"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The syscalls that change the mount table or need privilege sit behind
// these small interfaces so that the logic deciding *what* to call, in which
// order and with which flags can be tested by recording fakes, without root.
// Plain file-system work inside a directory (mkdir, symlink, open) is done
// directly: it works unprivileged on a temporary directory.

// mounter changes the mount table.
type mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	// SetAttrRecursive applies mount_setattr(2) attributes to target and
	// every mount below it.
	SetAttrRecursive(target string, attr *unix.MountAttr) error
	// MoveMount attaches the detached mount f (from open_tree(2)) at
	// target.
	MoveMount(f *os.File, target string) error

	// The calls below name their mount points by the files held open on
	// them, never by a path. They are what Finish uses: after the root
	// switch, a /proc/self/fd/N path would be resolved through the
	// container's /proc, which something sharing the rootfs can replace
	// (the CVE-2025-52881 class).

	// BindOver bind-mounts src (with every mount below it when rec) over
	// target.
	BindOver(src, target *os.File, rec bool) error
	// MountOver mounts a new file system of type fstype with the MS_*
	// flags and the file system's options in data (comma-separated, as
	// for mount(2)) over target.
	MountOver(fstype string, flags uintptr, data string, target *os.File) error
	// MakeReadonly makes the mount whose root target is, and every mount
	// below it, read-only, and keeps their other flags.
	MakeReadonly(target *os.File) error
}

// nodeMaker creates device nodes and gives them their owner.
type nodeMaker interface {
	Mknodat(dirfd int, name string, mode uint32, dev int) error
	// Chown changes the owner of the file behind fd, never following a
	// symlink.
	Chown(fd int, uid, gid int) error
}

// rootChanger switches the process's root directory.
type rootChanger interface {
	PivotRoot(newroot, putold string) error
	Chroot(path string) error
	Fchdir(fd int) error
	Chdir(path string) error
}

// system bundles the syscalls and the host facts a run needs.
type system struct {
	mnt   mounter
	nodes nodeMaker
	roots rootChanger
	// mountTable reads the current mount namespace's mount table.
	mountTable func(mountinfo.FilterFunc) ([]*mountinfo.Info, error)
	// cgroups describes the host's cgroup layout.
	cgroups func() (*cgroupHost, error)
	// hasKcore reports whether the host has /proc/kcore.
	hasKcore func() bool
	// isProcfs reports whether path is on a procfs.
	isProcfs func(path string) bool
	// isProcfsFile reports whether f is on a procfs.
	isProcfsFile func(f *os.File) bool
	// isDevNull reports whether st describes the real /dev/null device.
	isDevNull func(st *unix.Stat_t) bool
}

func hostSystem() *system {
	return &system{
		mnt:        realMounter{},
		nodes:      realNodes{},
		roots:      realRoots{},
		mountTable: mountinfo.GetMounts,
		cgroups:    readCgroupHost,
		hasKcore: func() bool {
			_, err := os.Lstat("/proc/kcore")
			return err == nil
		},
		isProcfs:     isProcfs,
		isProcfsFile: isProcfsFile,
		isDevNull:    IsDevNull,
	}
}

type realMounter struct{}

func (realMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

func (realMounter) Unmount(target string, flags int) error {
	return unix.Unmount(target, flags)
}

func (realMounter) SetAttrRecursive(target string, attr *unix.MountAttr) error {
	return unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, attr)
}

// MoveMount follows target's symlinks: target is a /proc/self/fd/N magic
// link to a mount point held open, as for mount(2).
func (realMounter) MoveMount(f *os.File, target string) error {
	return unix.MoveMount(int(f.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS)
}

type realNodes struct{}

func (realNodes) Mknodat(dirfd int, name string, mode uint32, dev int) error {
	return unix.Mknodat(dirfd, name, mode, dev)
}

func (realNodes) Chown(fd int, uid, gid int) error {
	return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

type realRoots struct{}

func (realRoots) PivotRoot(newroot, putold string) error { return unix.PivotRoot(newroot, putold) }
func (realRoots) Chroot(path string) error               { return unix.Chroot(path) }
func (realRoots) Fchdir(fd int) error                    { return unix.Fchdir(fd) }
func (realRoots) Chdir(path string) error                { return unix.Chdir(path) }

func isProcfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

func isProcfsFile(f *os.File) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

// IsDevNull says whether st is the null device (1:3), whoever made it.
func IsDevNull(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR &&
		unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
}

// isRetryableInUserNS reports the errors a user namespace turns a
// privileged mount into, for which a bind-mount fallback exists.
func isRetryableInUserNS(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)
}
