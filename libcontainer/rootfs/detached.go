package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Some bind mounts cannot be made by init itself, and the runtime makes
// them instead as detached mounts (open_tree(2)) that init only attaches:
//
//   - idmapped mounts: mount_setattr(MOUNT_ATTR_IDMAP) needs privileges
//     over the source's file system, which init in a user namespace lacks;
//   - sources init cannot reach, such as the runtime's own state directory
//     (0700) seen from a user namespace.
//
// Config.DetachedMount hands them to Prepare.

// IDMap is what an idmapped bind mount asks of the runtime.
type IDMap struct {
	// Source is the host path to clone, absolute.
	Source string
	// Option is "idmap" or "ridmap", for messages.
	Option string
	// Rbind clones the whole subtree (open_tree AT_RECURSIVE), as rbind
	// does for a plain bind.
	Rbind bool
	// Recursive ("ridmap") idmaps every mount of the subtree, not only
	// its top (mount_setattr AT_RECURSIVE).
	Recursive bool
	// UIDMappings and GIDMappings are the mount's own; both nil means
	// the container's user namespace.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
}

// IDMapOf says what m asks for when it is an idmapped mount, and nil when
// it is not. Mappings on the mount without an idmap or ridmap option mean
// idmap, as in runc. bundleDir resolves a relative source.
func IDMapOf(m *specs.Mount, bundleDir string) (*IDMap, error) {
	opts := parseMountOptions(m.Options)
	hasMaps := len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	if opts.idmap == "" && !hasMaps {
		return nil, nil
	}
	im := &IDMap{Option: opts.idmap, Rbind: opts.flags&unix.MS_REC != 0, Recursive: opts.idmap == "ridmap",
		UIDMappings: m.UIDMappings, GIDMappings: m.GIDMappings}
	if im.Option == "" {
		im.Option = "idmap"
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("mount option %s on %s: %s", im.Option, m.Destination, fmt.Sprintf(format, args...))
	}
	switch {
	case !opts.isBind() && m.Type != "bind":
		return nil, fail("only bind mounts can be idmapped (type %q, no bind or rbind option)", m.Type)
	case opts.flags&unix.MS_REMOUNT != 0:
		return nil, fail("a remount cannot be idmapped")
	case hasMaps && (len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0):
		return nil, fail("uidMappings and gidMappings must be given together")
	case m.Source == "":
		return nil, fail("a bind mount needs a source")
	}
	im.Source = m.Source
	if !filepath.IsAbs(im.Source) {
		if bundleDir == "" {
			return nil, fail("relative source %q and no bundle directory to resolve it against", m.Source)
		}
		im.Source = filepath.Join(bundleDir, im.Source)
	}
	return im, nil
}

// idmapped says whether the mount asks for an idmapping.
func (req *request) idmapped() bool {
	return req.opts.idmap != "" || len(req.m.UIDMappings) > 0 || len(req.m.GIDMappings) > 0
}

// detached asks the runtime for the mount it made for this request, if
// any. An idmapped mount must have one.
func (p *preparer) detached(req *request) (*os.File, error) {
	var f *os.File
	if p.cfg.DetachedMount != nil {
		var err error
		if f, err = p.cfg.DetachedMount(req.index); err != nil {
			return nil, p.errorf(req, err, "receive the mount the runtime made")
		}
	}
	if f == nil && req.idmapped() {
		return nil, p.errorf(req, errors.New("the runtime made no idmapped mount for it"), "")
	}
	return f, nil
}

// attachDetached moves the runtime's detached mount onto the destination,
// in place of mount(2) with MS_BIND.
func (p *preparer) attachDetached(req *request, f *os.File, t *target) error {
	if err := p.sys.mnt.MoveMount(f, t.path()); err != nil {
		return p.errorf(req, err, "attach the mount the runtime made (move_mount)")
	}
	return nil
}

// isDirFile says whether f (the root of a detached mount) is a directory.
func isDirFile(f *os.File) (bool, error) {
	st, err := fstat(f)
	if err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
