package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A container's masked and read-only paths mostly live in its procfs, and
// Finish reaches them after the root switch, through the rootfs. Something
// sharing the rootfs (a second container, a volume) can rename the proc
// directory while create runs: the procfs mount moves with the name, and a
// fake /proc takes its place. Masks would then land on the fake and leave
// the real procfs open (the CVE-2025-52881 class). So Prepare records each
// procfs it mounts, and Finish finds it again at its mount point, verified,
// and resolves the paths inside it from that handle.

// procMount is a procfs mounted for the container.
type procMount struct {
	dest string // container path of the mount point, cleaned
	// dev and ino identify the mount's root as Prepare left it; zero when
	// Prepare did not record it.
	dev, ino uint64
}

// procRootIno is the inode number of every procfs's root directory.
const procRootIno = 1

// recordProcMount notes a mount Prepare made when its root is the root of
// a procfs (a proc mount, or a bind of one).
func (p *preparer) recordProcMount(t *target) {
	if !p.sys.isProcfsFile(t.fd) {
		return
	}
	st, err := fstat(t.fd)
	if err != nil || st.Ino != procRootIno {
		return
	}
	p.cfg.procMounts = append(p.cfg.procMounts, procMount{dest: t.rel, dev: st.Dev, ino: st.Ino})
}

// procMountsToCheck are the recorded procfs mounts, plus the spec's proc
// mounts when Prepare ran elsewhere (tests).
func procMountsToCheck(cfg *Config) []procMount {
	out := append([]procMount(nil), cfg.procMounts...)
	for _, m := range cfg.Spec.Mounts {
		dest := filepath.Join("/", m.Destination)
		if m.Type == "proc" && !hasProcMount(out, dest) {
			out = append(out, procMount{dest: dest})
		}
	}
	return out
}

func hasProcMount(list []procMount, dest string) bool {
	for _, m := range list {
		if m.dest == dest {
			return true
		}
	}
	return false
}

// verifiedProc is a procfs mount point found again by Finish.
type verifiedProc struct {
	dest string
	in   *inRoot // anchored at the procfs root, held open
}

// openProcMounts finds every procfs mount of the container at its mount
// point: reached without a symlink, a procfs, and the very one Prepare
// mounted.
func (f *finisher) openProcMounts() ([]verifiedProc, error) {
	var out []verifiedProc
	for _, pm := range procMountsToCheck(f.cfg) {
		fd, err := f.openProcMount(pm)
		if err != nil {
			closeProcs(out)
			return nil, fmt.Errorf("procfs at %s: %w: refusing to set up masked and read-only paths on it (is the rootfs shared with something that renames in it?)", pm.dest, err)
		}
		real, err := verifiedFdPath(fd)
		if err != nil {
			fd.Close()
			closeProcs(out)
			return nil, fmt.Errorf("procfs at %s: %w", pm.dest, err)
		}
		in := &inRoot{root: pm.dest, real: real, held: fd, fdPath: verifiedFdPath}
		out = append(out, verifiedProc{dest: pm.dest, in: in})
	}
	return out, nil
}

func (f *finisher) openProcMount(pm procMount) (*os.File, error) {
	t, err := f.root.lookup(pm.dest)
	if err != nil {
		return nil, err
	}
	t.dir.Close()
	fd := t.fd
	st, err := fstat(fd)
	switch {
	case err != nil:
	case t.rel != pm.dest:
		err = fmt.Errorf("the mount point was replaced by a link to %s", t.rel)
	case !f.sys.isProcfsFile(fd):
		err = errors.New("the mount point was replaced: it is no longer a procfs")
	case pm.ino != 0 && (st.Dev != pm.dev || st.Ino != pm.ino):
		err = errors.New("the mount point was replaced: it is not the procfs mounted for the container")
	}
	if err != nil {
		fd.Close()
		return nil, err
	}
	return fd, nil
}

func closeProcs(list []verifiedProc) {
	for _, p := range list {
		p.in.held.Close()
	}
}

// resolve looks up a masked or read-only path: inside a verified procfs
// when the path lies under its mount point, from the root otherwise. A
// path that reaches a procfs any other way (a symlink) is refused, as
// what it reached could not be verified.
func (f *finisher) resolve(path string) (*target, error) {
	clean := filepath.Join("/", path)
	for _, p := range f.procs {
		if rest, ok := strings.CutPrefix(clean, p.dest+"/"); ok {
			return p.in.lookup(rest)
		}
	}
	t, err := f.root.lookup(clean)
	if err != nil {
		return nil, err
	}
	if f.sys.isProcfsFile(t.fd) && !f.isProcMountPoint(t) {
		t.close()
		return nil, errors.New("it leads into a procfs other than through the procfs's mount point; name it by its path there")
	}
	return t, nil
}

// isProcMountPoint says whether t is one of the verified procfs roots
// themselves (a read-only path of "/proc").
func (f *finisher) isProcMountPoint(t *target) bool {
	for _, p := range f.procs {
		if p.dest == t.rel && sameFile(p.in.held, t.fd) {
			return true
		}
	}
	return false
}

// underProc says a mount's destination is /proc or inside it.
func underProc(m *specs.Mount) bool {
	dest := filepath.Join("/", m.Destination)
	return dest == "/proc" || strings.HasPrefix(dest, "/proc/")
}

// mountProc makes the mounts under /proc that Prepare left (LateProc), in
// the root the process has switched to. Only procfs mounts can be made
// there: a bind's source is a host path, out of reach after the switch.
// Each is made by fd (fsopen and move_mount): there is no /proc yet to
// name a held mount point through.
func mountProc(cfg *Config, sys *system, root string) error {
	in, err := newInRoot(root, verifiedFdPath)
	if err != nil {
		return fmt.Errorf("open root %s: %w", root, err)
	}
	p := &preparer{cfg: cfg, sys: sys, root: in}
	for i := range cfg.Spec.Mounts {
		if m := &cfg.Spec.Mounts[i]; underProc(m) {
			if err := p.mountProcLate(i, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *preparer) mountProcLate(i int, m *specs.Mount) error {
	req, err := p.newRequest(i, m)
	if err != nil {
		return err
	}
	if m.Type != "proc" || req.opts.isBind() || req.opts.flags&unix.MS_REMOUNT != 0 {
		return p.errorf(req, errors.New("a container that joins a pid namespace takes only procfs mounts at and under /proc (they are made after the root switch, out of reach of any host path); drop this mount or the pid namespace's path"), "")
	}
	t, err := p.fsMountPoint(req)
	if err != nil {
		return err
	}
	defer t.close()
	if err := p.sys.mnt.MountOver("proc", req.opts.flags, req.opts.dataString(), t.fd); err != nil {
		return p.errorf(req, err, "")
	}
	if err := t.reopen(); err != nil {
		return p.errorf(req, err, "")
	}
	p.recordProcMount(t)
	return p.applyPropagation(req, t)
}

// lateMountPoint makes the directory a procfs mount MountProc makes later
// will sit on.
func (p *preparer) lateMountPoint(m *specs.Mount) error {
	if m.Type != "proc" {
		return nil // MountProc refuses it
	}
	t, err := p.root.create(filepath.Join("/", m.Destination), true)
	if err != nil {
		return fmt.Errorf("create mount point of %s for later: %w", m.Destination, err)
	}
	t.close()
	return nil
}
