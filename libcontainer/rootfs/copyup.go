package rootfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mountCopyUp implements "tmpcopyup": the tmpfs starts with a copy of what
// the image has at the destination. It is filled in a temporary directory
// and then moved over the destination, so the container never sees it
// half-filled and the copy reads the covered directory, not the tmpfs.
func (p *preparer) mountCopyUp(req *request, t *target, flags uintptr) (err error) {
	tmp, err := os.MkdirTemp("", "berth-copyup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mnt := p.sys.mnt
	// MS_MOVE refuses to move a mount whose parent is shared: give the
	// tmpfs a private parent of our own.
	if err := mnt.Mount(tmp, tmp, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s: %w", tmp, err)
	}
	defer mnt.Unmount(tmp, unix.MNT_DETACH)
	if err := mnt.Mount("", tmp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", tmp, err)
	}
	if err := mnt.Mount(req.m.Source, tmp, "tmpfs", flags, req.opts.dataString()); err != nil {
		return err
	}
	moved := false
	defer func() {
		if !moved {
			_ = mnt.Unmount(tmp, unix.MNT_DETACH)
		}
	}()
	if err := copyTree(t.fd, tmp); err != nil {
		return fmt.Errorf("copy up %s: %w", t.rel, err)
	}
	if err := mnt.Mount(tmp, t.path(), "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move tmpfs into place: %w", err)
	}
	moved = true
	return nil
}

// copyTree copies the contents of the directory src (any handle, O_PATH
// included) into the existing directory dst, keeping modes, owners and
// times. Symlinks are copied, never followed: the source is the image's.
func copyTree(src *os.File, dst string) error {
	fd, err := unix.Openat(int(src.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(fd), src.Name())
	defer dir.Close()
	return copyDirContents(dir, dst)
}

func copyDirContents(dir *os.File, dst string) error {
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyEntry(dir, e.Name(), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(dir *os.File, name, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fstatat", Path: name, Err: err}
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		err = copySubdir(dir, name, dst)
	case unix.S_IFREG:
		err = copyFile(dir, name, dst)
	case unix.S_IFLNK:
		err = copySymlink(dir, name, dst)
	case unix.S_IFSOCK:
		return nil // a socket is only meaningful to the process bound to it
	default:
		err = unix.Mknod(dst, st.Mode, int(st.Rdev))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return copyMetadata(dst, &st)
}

func copySubdir(dir *os.File, name, dst string) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	sub := os.NewFile(uintptr(fd), name)
	defer sub.Close()
	return copyDirContents(sub, dst)
}

func copyFile(dir *os.File, name, dst string) error {
	// O_NONBLOCK: should the file have been swapped for a FIFO, do not hang.
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(fd), name)
	defer in.Close()
	if st, err := fstat(in); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed while being copied", name)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copySymlink(dir *os.File, name, dst string) error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
	if err != nil {
		return err
	}
	return os.Symlink(string(buf[:n]), dst)
}

func copyMetadata(dst string, st *unix.Stat_t) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// After chown, which clears set-id bits.
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}
