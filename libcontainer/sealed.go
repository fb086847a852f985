package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// sealedExe returns the binary that the container's init is exec'd from: a
// view of the runtime binary at path ("" for the running one) that nobody
// can write to. /proc/<init>/exe points at it, so a process in the
// container that opens it for writing cannot touch the host's
// berth-runtime (the CVE-2019-5736 class). Every process this one starts
// from the same binary shares the view (sealedExes); release gives it back.
//
// The view is a detached, read-only overlayfs over the binary's directory:
// it is never visible in any mount table, costs a few syscalls, and an
// overlay without an upper layer cannot be made writable. Where overlayfs
// is not available it falls back to a sealed memfd copy, which is as safe
// but copies the whole binary (milliseconds on a 9 MB binary).
func sealedExe(path string) (exe *os.File, release func(), err error) {
	sealedExes.Lock()
	defer sealedExes.Unlock()
	id, err := binaryID(path)
	if err != nil {
		return nil, nil, fmt.Errorf("the runtime binary: %w", err)
	}
	v := sealedExes.m[path]
	if v != nil && v.id != id {
		// The binary was replaced: new processes start from the new one;
		// the old view goes once the processes starting from it are out.
		delete(sealedExes.m, path)
		v.releaseLocked()
		v = nil
	}
	if v == nil {
		f, err := overlayExe(path)
		if err != nil {
			if f, err = memfdExe(path); err != nil {
				return nil, nil, err
			}
		}
		v = &sealedView{f: f, id: id, refs: 1}
		sealedExes.m[path] = v
	}
	v.refs++
	return v.f, func() {
		sealedExes.Lock()
		defer sealedExes.Unlock()
		v.releaseLocked()
	}, nil
}

// sealedExes keeps one sealed view per runtime binary for the life of the
// process: a shim starts all its containers and exec'd processes from the
// same one. A view is two superblocks (a tmpfs and an overlay), and the
// kernel's cost to set one up and tear it down grows with the memory
// cgroups it keeps, those of deleted containers included: on a host that
// had run a few hundred containers, tearing a view down in the container's
// exec took 18 ms, measured. Sharing a view gives a container nothing new:
// none of them can write to it.
var sealedExes = struct {
	sync.Mutex
	m map[string]*sealedView
}{m: map[string]*sealedView{}}

// sealedView is a sealed binary, with one reference for the cache while it
// is cached and one per process being started from it.
type sealedView struct {
	f    *os.File
	id   fileID
	refs int
}

func (v *sealedView) releaseLocked() {
	if v.refs--; v.refs == 0 {
		v.f.Close()
	}
}

// fileID tells a binary from the one that replaces it at the same path.
type fileID struct {
	dev, ino, size uint64
	mtime, ctime   unix.Timespec
}

func binaryID(path string) (fileID, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim, ctime: st.Ctim}, nil
}

func overlayExe(path string) (*os.File, error) {
	self := path
	if self == "" {
		var err error
		if self, err = os.Readlink("/proc/self/exe"); err != nil {
			return nil, err
		}
	}
	dir, name := filepath.Split(self)
	// lowerdir is a ':'- and ','-separated list; a path holding either
	// (or a binary deleted since it started) takes the memfd route.
	if strings.ContainsAny(dir, ":,") || strings.HasSuffix(name, " (deleted)") {
		return nil, errors.New("binary path unfit for overlayfs")
	}
	// An overlay without an upper layer needs two lower ones: the second
	// is the root of an empty, detached tmpfs.
	empty, err := detachedMount("tmpfs", nil)
	if err != nil {
		return nil, err
	}
	defer unix.Close(empty)
	lower := dir + ":/proc/self/fd/" + strconv.Itoa(empty)
	ovl, err := detachedMount("overlay", map[string]string{"lowerdir": lower})
	if err != nil {
		return nil, err
	}
	defer unix.Close(ovl)
	fd, err := unix.Openat(ovl, name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "sealed:"+name), nil
}

// detachedMount creates a read-only mount that belongs to no mount table
// and returns its root.
func detachedMount(fstype string, opts map[string]string) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return -1, fmt.Errorf("%s %s=%s: %w", fstype, k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create %s: %w", fstype, err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return mfd, nil
}

// memfdExe copies the binary into a memfd and seals it against writing,
// shrinking and growing.
func memfdExe(path string) (*os.File, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	self, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the runtime binary: %w", err)
	}
	defer self.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("create sealed copy of the runtime: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "memfd:berth-runtime")
	// io.Copy between two files uses copy_file_range or sendfile: the
	// bytes never pass through user space.
	if _, err := io.Copy(mem, self); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy the runtime into its sealed copy: %w", err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal the runtime's copy: %w", err)
	}
	return mem, nil
}
