package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// request is one spec mount, parsed.
type request struct {
	m      *specs.Mount
	index  int    // in spec.Mounts
	dest   string // absolute, cleaned container path
	source string // host path for binds, m.Source otherwise
	opts   mountOptions
}

// errorf describes a failed step of a mount: which mount, from what, where.
func (p *preparer) errorf(req *request, err error, step string, args ...any) error {
	typ := req.m.Type
	if req.opts.isBind() {
		typ = "bind"
	}
	where := fmt.Sprintf("mount %s from %q on %s (rootfs %s)", typ, req.m.Source, req.dest, p.cfg.Rootfs)
	if step == "" {
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %s: %w", where, fmt.Sprintf(step, args...), err)
}

func (p *preparer) newRequest(i int, m *specs.Mount) (*request, error) {
	req := &request{
		m:      m,
		index:  i,
		dest:   filepath.Join("/", m.Destination),
		source: m.Source,
		opts:   parseMountOptions(m.Options),
	}
	// A "bind" type without a bind option still means a bind mount; the
	// kernel has no "bind" file system.
	if m.Type == "bind" && !req.opts.isBind() {
		req.opts.flags |= unix.MS_BIND
	}
	if req.idmapped() {
		// The runtime made the mount; this only checks the request is
		// one, for the same message as the runtime's.
		if _, err := IDMapOf(m, p.cfg.BundleDir); err != nil {
			return nil, p.errorf(req, err, "")
		}
	}
	if !req.opts.isBind() || req.opts.flags&unix.MS_REMOUNT != 0 {
		return req, nil
	}
	if req.source == "" {
		return nil, p.errorf(req, errors.New("a bind mount needs a source"), "")
	}
	if !filepath.IsAbs(req.source) {
		if p.cfg.BundleDir == "" {
			return nil, p.errorf(req, errors.New("no bundle directory to resolve it against"), "relative source")
		}
		req.source = filepath.Join(p.cfg.BundleDir, req.source)
	}
	return req, nil
}

// mount performs spec.Mounts[i].
func (p *preparer) mount(i int, m *specs.Mount) error {
	req, err := p.newRequest(i, m)
	if err != nil {
		return err
	}
	switch {
	case req.opts.flags&unix.MS_REMOUNT != 0:
		// Also "bind,remount,ro": changing an existing bind mount.
		return p.remount(req)
	case req.opts.isBind():
		return p.mountBind(req)
	case m.Type == "cgroup":
		return p.mountCgroup(req)
	case m.Type == "cgroup2":
		return p.mountCgroup2(req)
	default:
		return p.mountFS(req)
	}
}

func (p *preparer) mountBind(req *request) error {
	detached, err := p.detached(req)
	if err != nil {
		return err
	}
	if detached != nil {
		defer detached.Close()
	}
	isDir, err := p.bindSourceIsDir(req, detached)
	if err != nil {
		return p.errorf(req, err, "")
	}
	t, err := p.root.create(req.dest, isDir)
	if err != nil {
		return p.errorf(req, err, "create mount point")
	}
	defer t.close()
	if err := p.checkProcDest(req, t.rel); err != nil {
		return err
	}
	if detached != nil {
		err = p.attachDetached(req, detached, t)
	} else if err = p.sys.mnt.Mount(req.source, t.path(), "", req.opts.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		err = p.errorf(req, err, "")
	}
	if err != nil {
		return err
	}
	if err := t.reopen(); err != nil {
		return p.errorf(req, err, "")
	}
	p.recordProcMount(t)
	// The kernel ignores every other flag on the first bind call.
	if req.opts.fsFlagsSeen {
		if err := p.remountBind(t.path(), req.opts.flags); err != nil {
			return p.errorf(req, err, "remount with flags %#x", req.opts.flags)
		}
	}
	return p.applyPropagation(req, t)
}

// bindSourceIsDir says whether the bind's source is a directory: the mount
// point to create must be of the same kind.
func (p *preparer) bindSourceIsDir(req *request, detached *os.File) (bool, error) {
	if detached != nil {
		return isDirFile(detached)
	}
	fi, err := os.Stat(req.source)
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

// remount changes an existing mount at the destination.
func (p *preparer) remount(req *request) error {
	t, err := p.root.lookup(req.dest)
	if err != nil {
		return p.errorf(req, err, "")
	}
	defer t.close()
	if err := p.sys.mnt.Mount(req.m.Source, t.path(), req.m.Type, req.opts.flags, req.opts.dataString()); err != nil {
		return p.errorf(req, err, "")
	}
	return p.applyPropagation(req, t)
}

// mountFS mounts a file system (tmpfs, proc, sysfs, devpts, mqueue, overlay,
// anything) on a directory.
func (p *preparer) mountFS(req *request) error {
	t, err := p.fsMountPoint(req)
	if err != nil {
		return err
	}
	defer t.close()
	flags := req.opts.flags
	// A read-only /dev must stay writable until the devices exist, and a
	// tmpfs to copy up into must be writable while the copy runs.
	deferRO := flags&unix.MS_RDONLY != 0 && (req.dest == "/dev" || req.opts.copyUp)
	if deferRO {
		flags &^= unix.MS_RDONLY
	}
	if req.opts.copyUp && req.m.Type == "tmpfs" {
		err = p.mountCopyUp(req, t, flags)
	} else {
		err = p.sys.mnt.Mount(req.m.Source, t.path(), req.m.Type, flags, req.opts.dataString())
		if err != nil && req.m.Type == "sysfs" && p.cfg.UserNS && isRetryableInUserNS(err) {
			err = p.bindSysfs(req, t)
		}
	}
	if err != nil {
		return p.errorf(req, err, "")
	}
	if err := t.reopen(); err != nil {
		return p.errorf(req, err, "")
	}
	p.recordProcMount(t)
	if deferRO && req.dest == "/dev" {
		p.devReadonly, p.devFlags = true, req.opts.flags
	} else if deferRO {
		if err := p.remountBind(t.path(), req.opts.flags); err != nil {
			return p.errorf(req, err, "remount read-only")
		}
	}
	return p.applyPropagation(req, t)
}

// fsMountPoint makes and checks the directory a file system is mounted on.
func (p *preparer) fsMountPoint(req *request) (*target, error) {
	t, err := p.root.lookup(req.dest)
	existed := err == nil
	if errors.Is(err, os.ErrNotExist) {
		t, err = p.root.create(req.dest, true)
	}
	if err != nil {
		return nil, p.errorf(req, err, "create mount point")
	}
	if existed && req.m.Type == "tmpfs" {
		if err := req.opts.keepTmpfsMode(t.fd); err != nil {
			t.close()
			return nil, p.errorf(req, err, "read the mount point's mode")
		}
	}
	if err := p.checkProcDest(req, t.rel); err != nil {
		t.close()
		return nil, err
	}
	if (req.m.Type == "proc" || req.m.Type == "sysfs") && t.rel != req.dest {
		t.close()
		// Such a mount through a symlink would go where the image says,
		// while masked and readonly paths are set up on the spec's path.
		return nil, p.errorf(req, errors.New("destination must not be reached through a symlink"), "resolved to %s", t.rel)
	}
	return t, nil
}

// bindSysfs stands in for a sysfs mount the kernel refuses in a user
// namespace that owns no network namespace: the host's /sys, recursively.
func (p *preparer) bindSysfs(req *request, t *target) error {
	if err := p.sys.mnt.Mount("/sys", t.path(), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := t.reopen(); err != nil {
		return err
	}
	return p.remountBind(t.path(), req.opts.flags)
}

// applyPropagation runs the propagation options, one mount(2) call each as
// the kernel requires, then the recursive mount_setattr attributes.
func (p *preparer) applyPropagation(req *request, t *target) error {
	for _, flag := range req.opts.propagation {
		if err := p.sys.mnt.Mount("", t.path(), "", flag, ""); err != nil {
			return p.errorf(req, err, "set propagation %#x", flag)
		}
	}
	if a := req.opts.recAttr; a != nil {
		if err := p.sys.mnt.SetAttrRecursive(t.path(), a); err != nil {
			return p.errorf(req, err, "set recursive attributes (set %#x, clear %#x)", a.Attr_set, a.Attr_clr)
		}
	}
	return nil
}

// lockedFlags are the per-mount flags the kernel locks when a mount is
// handed to a less privileged user namespace; a remount must repeat them.
const lockedFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NODIRATIME

// remountBind changes the per-mount flags of the mount at path. In a user
// namespace the mount may carry locked flags the spec did not repeat; the
// kernel then says EPERM, and the flags are retried with the locked ones
// added.
func remountBind(mnt mounter, path string, flags uintptr) error {
	flags = flags&^(unix.MS_REC|unix.MS_REMOUNT|unix.MS_BIND) | unix.MS_BIND | unix.MS_REMOUNT
	err := mnt.Mount("", path, "", flags, "")
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(path, &st); serr != nil {
		return err
	}
	current := statfsToMountFlags(st.Flags)
	extra := current & lockedFlags
	if flags&atimeFlags == 0 {
		extra |= current & atimeFlags
	}
	if flags|extra == flags {
		return err
	}
	return mnt.Mount("", path, "", flags|extra, "")
}

func (p *preparer) remountBind(path string, flags uintptr) error {
	return remountBind(p.sys.mnt, path, flags)
}

// procAllowed are the files inside /proc something may be mounted over:
// the ones lxcfs emulates, and ns_last_pid for checkpoint/restore.
var procAllowed = []string{
	"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
	"/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
	"/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
	"/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
}

// checkProcDest refuses mounts that would replace /proc with something
// that is not a procfs, or cover parts of it (masked and readonly paths
// would then protect the wrong thing). rel is the resolved destination.
func (p *preparer) checkProcDest(req *request, rel string) error {
	switch {
	case rel == "/proc":
		if req.m.Type == "proc" || req.opts.isBind() && p.sys.isProcfs(req.source) {
			return nil
		}
		return p.errorf(req, errors.New("only a procfs may be mounted on /proc"), "")
	case strings.HasPrefix(rel, "/proc/"):
		if slices.Contains(procAllowed, rel) {
			return nil
		}
		return p.errorf(req, fmt.Errorf("%s is inside /proc", rel), "")
	}
	return nil
}
