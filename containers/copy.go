package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Copies in and out of a container never trust a path inside it: the path
// the user gave is resolved within the container's root (pathrs-lite,
// RESOLVE_IN_ROOT semantics: the container's symlinks, absolute ones too,
// stay inside it), and everything below it is walked through directory
// fds with O_NOFOLLOW, so a container that swaps a directory for a symlink
// meanwhile cannot send berth out to the host.

// withCopyRoot runs fn with a directory that is container c's root as its
// processes see it: a running container's through its init's
// /proc/PID/root (its binds and tmpfs mounts too, as docker cp sees
// them), a stopped one's snapshot mounted for fn.
func withCopyRoot(ctx context.Context, client *containerd.Client, c containerd.Container, writable bool, fn func(root string) error) error {
	task, running, err := runningTask(ctx, c)
	if err != nil {
		return err
	}
	if running {
		return fn(fmt.Sprintf("/proc/%d/root", task.Pid()))
	}
	return withRootfs(ctx, client, c, writable, fn)
}

// containerPath is path as docker cp reads it: relative to the
// container's /.
func containerPath(p string) string {
	return path.Clean("/" + p)
}

// CopyFrom copies src in container c to dst on the host, as `docker cp
// CONTAINER:SRC DST` does: into an existing directory dst under src's
// name (src ending in /. gives its contents instead), else to dst.
func CopyFrom(ctx context.Context, client *containerd.Client, c containerd.Container, src, dst string) error {
	return withCopyRoot(ctx, client, c, false, func(root string) error {
		h, err := pathrs.OpenInRoot(root, containerPath(src))
		if err != nil {
			return fmt.Errorf("cp: could not find the source %s in the container: %w", src, err)
		}
		defer h.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(h.Fd()), &st); err != nil {
			return fmt.Errorf("cp: %s: %w", src, err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		target, err := hostTarget(dst, path.Base(containerPath(src)), isDir, strings.HasSuffix(src, "/."))
		if err != nil {
			return err
		}
		flags := unix.O_RDONLY
		if isDir {
			flags |= unix.O_DIRECTORY
		}
		f, err := pathrs.Reopen(h, flags)
		if err != nil {
			return fmt.Errorf("cp: open %s: %w", src, err)
		}
		defer f.Close()
		return copyOut(f, &st, target)
	})
}

// hostTarget is where a copy out lands: inside dst when it is a directory
// (unless contents), else dst itself.
func hostTarget(dst, name string, srcIsDir, contents bool) (string, error) {
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir() && !contents:
		return filepath.Join(dst, name), nil
	case err == nil && !fi.IsDir() && srcIsDir:
		return "", fmt.Errorf("cp: cannot copy a directory onto the file %s", dst)
	case err != nil && !os.IsNotExist(err):
		return "", fmt.Errorf("cp: destination %s: %w", dst, err)
	case err != nil:
		if _, err := os.Stat(filepath.Dir(dst)); err != nil {
			return "", fmt.Errorf("cp: the destination's directory does not exist: %w", err)
		}
	}
	return dst, nil
}

// copyOut copies the open file or directory f (stat st) of the container
// to the host path target, keeping modes and owners.
func copyOut(f *os.File, st *unix.Stat_t, target string) error {
	mode := os.FileMode(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return fmt.Errorf("cp: %w", err)
		}
		_, err = io.Copy(out, f)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("cp to %s: %w", target, err)
		}
	case unix.S_IFDIR:
		if err := os.Mkdir(target, mode); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cp: %w", err)
		}
		names, err := f.Readdirnames(-1)
		if err != nil {
			return fmt.Errorf("cp: read the container's directory for %s: %w", target, err)
		}
		for _, name := range names {
			if err := copyOutEntry(f, name, filepath.Join(target, name)); err != nil {
				return err
			}
		}
	default:
		return nil // devices, fifos and sockets stay in the container
	}
	if err := os.Chmod(target, mode); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return os.Lchown(target, int(st.Uid), int(st.Gid))
}

// copyOutEntry copies name in the container's directory dir, never
// following a symlink of the container's.
func copyOutEntry(dir *os.File, name, target string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cp: %s: %w", target, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return fmt.Errorf("cp: %s: %w", target, err)
		}
		if err := os.Symlink(string(buf[:n]), target); err != nil {
			return fmt.Errorf("cp: %w", err)
		}
		return os.Lchown(target, int(st.Uid), int(st.Gid))
	case unix.S_IFREG, unix.S_IFDIR:
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(int(dir.Fd()), name, flags, 0)
		if err != nil {
			return fmt.Errorf("cp: %s: %w", target, err)
		}
		f := os.NewFile(uintptr(fd), target)
		defer f.Close()
		return copyOut(f, &st, target)
	}
	return nil
}

// CopyTo copies src on the host into container c at dst, as `docker cp
// SRC CONTAINER:DST` does: into an existing directory dst under src's
// name (src ending in /. gives its contents instead), else to dst, whose
// directory must exist. What it makes is root's, as under docker.
func CopyTo(ctx context.Context, client *containerd.Client, c containerd.Container, src, dst string) error {
	srcInfo, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("cp: could not find the source %s: %w", src, err)
	}
	return withCopyRoot(ctx, client, c, true, func(root string) error {
		dir, name, err := containerTarget(root, containerPath(dst), filepath.Base(src), srcInfo.IsDir(), strings.HasSuffix(src, "/."))
		if err != nil {
			return fmt.Errorf("cp to %s: %w", dst, err)
		}
		defer dir.Close()
		if name == "" { // the contents of src into dir
			return copyInChildren(src, dir)
		}
		return copyIn(src, dir, name)
	})
}

// containerTarget opens the container directory a copy in lands in, and
// the name it takes there ("" for a directory's contents into dst).
func containerTarget(root, dst, srcName string, srcIsDir, contents bool) (*os.File, string, error) {
	h, err := pathrs.OpenInRoot(root, dst)
	if err == nil {
		defer h.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(h.Fd()), &st); err != nil {
			return nil, "", err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			dir, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY)
			if err != nil || contents {
				return dir, "", err
			}
			return dir, srcName, nil
		}
		if srcIsDir {
			return nil, "", errors.New("cannot copy a directory onto a file")
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	ph, err := pathrs.OpenInRoot(root, path.Dir(dst))
	if err != nil {
		return nil, "", fmt.Errorf("the destination's directory %s: %w", path.Dir(dst), err)
	}
	defer ph.Close()
	dir, err := pathrs.Reopen(ph, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, "", fmt.Errorf("the destination's directory %s: %w", path.Dir(dst), err)
	}
	return dir, path.Base(dst), nil
}

// copyIn copies the host path src to name in the container's directory
// dir, never following a symlink of the container's.
func copyIn(src string, dir *os.File, name string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	dfd, perm := int(dir.Fd()), uint32(fi.Mode().Perm())
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err == nil {
			err = unix.Symlinkat(link, dfd, name)
		}
		if err != nil {
			return fmt.Errorf("cp %s: %w", src, err)
		}
		return unix.Fchownat(dfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW)
	case fi.IsDir():
		if err := unix.Mkdirat(dfd, name, perm); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("cp %s: %w", src, err)
		}
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cp %s: %w", src, err)
		}
		sub := os.NewFile(uintptr(fd), name)
		defer sub.Close()
		if err := unix.Fchmod(fd, perm); err != nil {
			return fmt.Errorf("cp %s: %w", src, err)
		}
		return copyInChildren(src, sub)
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("cp: %w", err)
		}
		defer in.Close()
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err != nil {
			return fmt.Errorf("cp %s: %w", src, err)
		}
		out := os.NewFile(uintptr(fd), name)
		_, err = io.Copy(out, in)
		if err == nil {
			err = unix.Fchmod(fd, perm) // the umask had its say at create
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("cp %s: %w", src, err)
		}
	}
	return nil // devices, fifos and sockets of the host stay there
}

// copyInChildren copies the entries of the host directory src into dir.
func copyInChildren(src string, dir *os.File) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	for _, e := range entries {
		if err := copyIn(filepath.Join(src, e.Name()), dir, e.Name()); err != nil {
			return err
		}
	}
	return nil
}
