package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	"golang.org/x/sys/unix"
)

// inRoot resolves container paths inside a root directory so that neither
// ".." nor a symlink (absolute or relative) can lead outside of it, and
// hands out file descriptors instead of path strings: a mount is made on
// "/proc/self/fd/N", so nothing can swap a path component between the check
// and the mount (the CVE-2021-30465 class).
type inRoot struct {
	root string // as given; reopened for every lookup
	real string // canonical path of root, for the containment check
	// held, when set, is the root itself, held open and verified (a
	// procfs: see procmount.go); lookups start from it instead of from
	// root's path, which something could have replaced since.
	held *os.File
	// fdPath reads where a file is: hostFdPath before the root switch,
	// verifiedFdPath after it.
	fdPath func(*os.File) (string, error)
}

func newInRoot(root string, fdPath func(*os.File) (string, error)) (*inRoot, error) {
	f, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	real, err := fdPath(f)
	if err != nil {
		return nil, err
	}
	return &inRoot{root: root, real: real, fdPath: fdPath}, nil
}

// openRoot opens a fresh handle on the root. It is reopened for every lookup
// so that it sees the topmost mount on the root directory: a handle taken
// before mounts were made there would resolve into the covered directory.
func (r *inRoot) openRoot() (*os.File, error) {
	if r.held != nil {
		fd, err := unix.FcntlInt(r.held.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("dup", err)
		}
		return os.NewFile(uintptr(fd), r.root), nil
	}
	return os.OpenFile(r.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// target is a resolved path inside the root, held open.
type target struct {
	dir  *os.File // the parent directory, O_PATH
	name string   // the last component; never a symlink when opened
	fd   *os.File // the path itself, O_PATH|O_NOFOLLOW
	rel  string   // the resolved path relative to the root, starting with "/"
	in   *inRoot
}

// path is what to hand to mount(2) and friends: the kernel follows the
// magic link to exactly the file we hold.
func (t *target) path() string { return procFdPath(t.fd) }

func (t *target) close() {
	if t == nil {
		return
	}
	t.dir.Close()
	t.fd.Close()
}

// reopen looks the last component up again from the held parent. An
// existing handle keeps pointing at the directory a new mount now covers;
// remounts and propagation changes must be aimed at the new mount's root,
// which a fresh lookup from the parent crosses into.
func (t *target) reopen() error {
	fd, err := openNoFollow(t.dir, t.name)
	if err != nil {
		return fmt.Errorf("reopen %s after mount: %w", t.rel, err)
	}
	// Whatever now sits at the name must be inside the root and must not
	// be a symlink that was swapped in while we mounted.
	if st, err := fstat(fd); err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		fd.Close()
		return fmt.Errorf("%s was replaced after mounting on it", t.rel)
	}
	if err := t.in.checkInside(fd); err != nil {
		fd.Close()
		return err
	}
	t.fd.Close()
	t.fd = fd
	return nil
}

// lookup resolves an existing path. A missing path gives an error matching
// os.ErrNotExist.
func (r *inRoot) lookup(unsafePath string) (*target, error) {
	rootf, err := r.openRoot()
	if err != nil {
		return nil, err
	}
	defer rootf.Close()
	resolved, err := pathrs.OpenatInRoot(rootf, unsafePath)
	if err != nil {
		return nil, err
	}
	defer resolved.Close()
	rel, err := r.relative(resolved)
	if err != nil {
		return nil, err
	}
	if rel == "/" {
		return nil, fmt.Errorf("%s resolves to the root directory itself", unsafePath)
	}
	// Hold the parent and reopen the last component without following
	// symlinks: that pair is what reopen() needs later, and comparing it
	// with the resolved handle catches a rename racing with us.
	dir, err := pathrs.OpenatInRoot(rootf, filepath.Dir(rel))
	if err != nil {
		return nil, err
	}
	t := &target{dir: dir, name: filepath.Base(rel), rel: rel, in: r}
	if t.fd, err = openNoFollow(dir, t.name); err != nil {
		dir.Close()
		return nil, err
	}
	if !sameFile(t.fd, resolved) {
		t.close()
		return nil, fmt.Errorf("%s changed while it was being resolved", unsafePath)
	}
	return t, nil
}

// create resolves a path, creating it when missing: a directory, or an
// empty file when dir is false. Missing parents are created as directories.
func (r *inRoot) create(unsafePath string, dir bool) (*target, error) {
	t, err := r.lookup(unsafePath)
	if !errors.Is(err, os.ErrNotExist) {
		return t, err
	}
	clean, err := r.hallucinate(unsafePath)
	if err != nil {
		return nil, err
	}
	rootf, err := r.openRoot()
	if err != nil {
		return nil, err
	}
	defer rootf.Close()
	if dir {
		h, err := pathrs.MkdirAllHandle(rootf, clean, 0o755)
		if err != nil {
			return nil, err
		}
		h.Close()
		return r.lookup(clean)
	}
	parent, err := pathrs.MkdirAllHandle(rootf, filepath.Dir(clean), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	// O_NOFOLLOW|O_EXCL: never create through a symlink that appeared in
	// the meantime. EEXIST means someone else made it; lookup decides.
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(clean),
		unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	return r.lookup(clean)
}

// hallucinate rewrites a path whose symlinks dangle (a link to a directory
// the image does not have) into the path they would lead to if everything
// missing existed, the way container runtimes have always created such
// mount points: "/evil/x" with evil -> /etc becomes "/etc/x" even without
// an /etc. The result is only a better guess of what to create; creating
// and opening it still goes through the fd-based, root-confined calls, so
// a symlink changed meanwhile cannot lead outside either.
func (r *inRoot) hallucinate(unsafePath string) (string, error) {
	joined, err := securejoin.SecureJoin(r.real, unsafePath)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(r.real, joined)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s resolves outside of the root %s", unsafePath, r.real)
	}
	return filepath.Join("/", rel), nil
}

// mkdirAll creates a directory and returns an O_PATH handle on it.
func (r *inRoot) mkdirAll(unsafePath string) (*os.File, error) {
	clean, err := r.hallucinate(unsafePath)
	if err != nil {
		return nil, err
	}
	rootf, err := r.openRoot()
	if err != nil {
		return nil, err
	}
	defer rootf.Close()
	return pathrs.MkdirAllHandle(rootf, clean, 0o755)
}

// relative returns where f lives inside the root, or an error when it is
// not inside it (anymore).
func (r *inRoot) relative(f *os.File) (string, error) {
	p, err := r.fdPath(f)
	if err != nil {
		return "", err
	}
	if p == r.real {
		return "/", nil
	}
	prefix := strings.TrimSuffix(r.real, "/") + "/"
	if !strings.HasPrefix(p, prefix) {
		return "", fmt.Errorf("%s is outside of the root %s", p, r.real)
	}
	return "/" + strings.TrimPrefix(p, prefix), nil
}

func (r *inRoot) checkInside(f *os.File) error {
	_, err := r.relative(f)
	return err
}

func openNoFollow(dir *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func procFdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

// hostFdPath returns the path the kernel has for f, as seen from our root,
// from its /proc/self/fd link. Before the root switch that is the host's
// procfs, which nothing in the rootfs can replace, and a plain readlink is
// several times cheaper than a verified one (Prepare reads a few dozen).
func hostFdPath(f *os.File) (string, error) {
	return os.Readlink(procFdPath(f))
}

// verifiedFdPath is hostFdPath for after the root switch: it reads the link
// through a procfs that pathrs-lite has verified, never through the
// container's /proc, which something sharing the rootfs may have replaced.
func verifiedFdPath(f *os.File) (string, error) {
	return procfs.ProcSelfFdReadlink(f)
}

func fstat(f *os.File) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func sameFile(a, b *os.File) bool {
	sa, err1 := fstat(a)
	sb, err2 := fstat(b)
	return err1 == nil && err2 == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
