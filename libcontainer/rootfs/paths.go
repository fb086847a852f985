package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// finisher holds the state of one Finish run. root is "/" for real; tests
// point it at a directory.
type finisher struct {
	cfg   *Config
	sys   *system
	root  *inRoot
	procs []verifiedProc // the container's procfs mounts, verified
	// maskFS is the root of the tmpfs the masked directories share, once
	// the first is masked; maskFSFailed, once a bind of it failed.
	maskFS       *os.File
	maskFSFailed bool
}

func finish(cfg *Config, sys *system, root string) error {
	if err := validate(cfg); err != nil {
		return err
	}
	in, err := newInRoot(root, verifiedFdPath)
	if err != nil {
		return fmt.Errorf("open root %s: %w", root, err)
	}
	f := &finisher{cfg: cfg, sys: sys, root: in}
	if f.procs, err = f.openProcMounts(); err != nil {
		return err
	}
	defer closeProcs(f.procs)
	defer func() { f.maskFS.Close() }()
	linux := linuxSpec(cfg.Spec)
	// Masks go last so that nothing mounted afterwards (a readonly bind of
	// a parent directory) can cover them.
	for _, p := range uniquePaths(linux.ReadonlyPaths) {
		if err := f.readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range uniquePaths(linux.MaskedPaths) {
		if err := f.maskPath(p); err != nil {
			return err
		}
	}
	// (With LateProc, Enter made it read-only.)
	if cfg.Spec.Root != nil && cfg.Spec.Root.Readonly && !cfg.LateProc {
		if err := remountReadonly(sys.mnt, root); err != nil {
			return fmt.Errorf("remount root read-only: %w", err)
		}
	}
	// Last, and only now that "/" is the container's: with MS_REC before
	// the root switch it would have reached the host's mounts.
	flags, _ := rootPropagation(linux.RootfsPropagation)
	if flags != 0 {
		if err := sys.mnt.Mount("", root, "", flags, ""); err != nil {
			return fmt.Errorf("set root propagation %s: %w", linux.RootfsPropagation, err)
		}
	}
	return nil
}

// readonlyPath makes path and everything mounted below it read-only; the
// rest of its flags (nosuid, nodev, noexec) stay as they are.
func (f *finisher) readonlyPath(path string) error {
	t, err := f.resolve(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("readonly path %s: %w", path, err)
	}
	defer t.close()
	if err := f.sys.mnt.BindOver(t.fd, t.fd, true); err != nil {
		return fmt.Errorf("readonly path %s: bind-mount onto itself: %w", path, err)
	}
	if err := t.reopen(); err != nil {
		return fmt.Errorf("readonly path %s: %w", path, err)
	}
	if err := f.sys.mnt.MakeReadonly(t.fd); err != nil {
		return fmt.Errorf("readonly path %s: remount read-only: %w", path, err)
	}
	return nil
}

// remountReadonly makes the mount at path read-only and keeps its other
// flags: a bare MS_RDONLY remount would drop nosuid, nodev and noexec.
func remountReadonly(mnt mounter, path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return remountBind(mnt, path, statfsToMountFlags(st.Flags)|unix.MS_RDONLY)
}

// uniquePaths drops the repeats of a path list, as written or as the same
// path once cleaned ("/testdir" and "/testdir/"), keeping the first: a
// path masked twice would get two stacked mounts, which mount(8) in the
// container lists twice, while runc masks it once.
func uniquePaths(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		c := filepath.Clean(p)
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, p)
	}
	return out
}

// maskPath hides path: a directory under an empty read-only tmpfs, anything
// else under /dev/null.
func (f *finisher) maskPath(path string) error {
	t, err := f.resolve(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("masked path %s: %w", path, err)
	}
	defer t.close()
	st, err := fstat(t.fd)
	if err != nil {
		return fmt.Errorf("masked path %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return f.maskDir(path, t)
	}
	null, err := f.openDevNull()
	if err != nil {
		return fmt.Errorf("masked path %s: %w", path, err)
	}
	defer null.Close()
	if err := f.sys.mnt.BindOver(null, t.fd, false); err != nil {
		return fmt.Errorf("masked path %s: bind-mount /dev/null: %w", path, err)
	}
	return nil
}

// maskDir hides the directory t under an empty read-only tmpfs: one
// tmpfs for all the masked directories, as runc has it, the first mounted
// and the others bind mounts of it (read-only too: a bind mount keeps its
// source's flags). One superblock instead of one per path; a bind that
// fails falls back to a tmpfs of its own.
func (f *finisher) maskDir(path string, t *target) error {
	if f.maskFS != nil {
		err := f.sys.mnt.BindOver(f.maskFS, t.fd, false)
		if err == nil {
			return nil
		}
		f.maskFS.Close()
		f.maskFS, f.maskFSFailed = nil, true
	}
	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := f.sys.mnt.MountOver("tmpfs", flags, "", t.fd); err != nil {
		return fmt.Errorf("masked path %s: mount tmpfs: %w", path, err)
	}
	if f.maskFSFailed {
		return nil
	}
	if err := t.reopen(); err != nil {
		return fmt.Errorf("masked path %s: %w", path, err)
	}
	// The target's handle is now the tmpfs's root: keep it.
	f.maskFS, t.fd = t.fd, nil
	return nil
}

// openDevNull opens the container's /dev/null and makes sure it is the
// real device. It is the container's to change, and a symlink or a plain
// file there would turn a mask into a writable window onto whatever it
// points at (CVE-2025-31133).
func (f *finisher) openDevNull() (*os.File, error) {
	t, err := f.root.lookup("/dev/null")
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	t.dir.Close()
	st, err := fstat(t.fd)
	if err != nil {
		t.fd.Close()
		return nil, err
	}
	if !f.sys.isDevNull(st) {
		t.fd.Close()
		return nil, fmt.Errorf("/dev/null is not the null device (mode %#o, rdev %#x)", st.Mode, st.Rdev)
	}
	return t.fd, nil
}
