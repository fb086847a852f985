package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// device is a node to create in the container.
type device struct {
	path         string // absolute, cleaned container path
	typ          uint32 // S_IFCHR, S_IFBLK or S_IFIFO
	major, minor int64
	perm         uint32
	uid, gid     uint32
}

// defaultDevices are the nodes every container gets (runtime-spec, "Default
// Devices"); /dev/ptmx and /dev/console are handled apart.
var defaultDevices = []device{
	{path: "/dev/null", typ: unix.S_IFCHR, major: 1, minor: 3, perm: 0o666},
	{path: "/dev/zero", typ: unix.S_IFCHR, major: 1, minor: 5, perm: 0o666},
	{path: "/dev/full", typ: unix.S_IFCHR, major: 1, minor: 7, perm: 0o666},
	{path: "/dev/random", typ: unix.S_IFCHR, major: 1, minor: 8, perm: 0o666},
	{path: "/dev/urandom", typ: unix.S_IFCHR, major: 1, minor: 9, perm: 0o666},
	{path: "/dev/tty", typ: unix.S_IFCHR, major: 5, minor: 0, perm: 0o666},
}

// devSymlinks are the links into /proc that programs expect in /dev.
var devSymlinks = [][2]string{ // name in /dev, target
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
}

// needsDevSetup follows runc: /dev is populated unless the spec
// bind-mounts a /dev of its own, which then is taken as it is.
func needsDevSetup(s *specs.Spec) bool {
	for _, m := range s.Mounts {
		if filepath.Join("/", m.Destination) != "/dev" {
			continue
		}
		if m.Type == "bind" || parseMountOptions(m.Options).isBind() {
			return false
		}
	}
	return true
}

// deviceList is the default devices plus linux.devices; an entry of the
// spec replaces a default one with the same path.
func deviceList(s *specs.Spec) ([]device, error) {
	devs := append([]device(nil), defaultDevices...)
	for _, d := range linuxSpec(s).Devices {
		dev, err := specDevice(d)
		if err != nil {
			return nil, err
		}
		i := 0
		for ; i < len(devs) && devs[i].path != dev.path; i++ {
		}
		if i < len(devs) {
			devs[i] = dev
		} else {
			devs = append(devs, dev)
		}
	}
	return devs, nil
}

func specDevice(d specs.LinuxDevice) (device, error) {
	dev := device{path: filepath.Join("/", d.Path), major: d.Major, minor: d.Minor, perm: 0o666}
	switch d.Type {
	case "c", "u":
		dev.typ = unix.S_IFCHR
	case "b":
		dev.typ = unix.S_IFBLK
	case "p":
		dev.typ = unix.S_IFIFO
		dev.major, dev.minor = 0, 0
	default:
		return device{}, fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
	}
	if dev.path == "/" {
		return device{}, fmt.Errorf("device %q: not a file path", d.Path)
	}
	if d.FileMode != nil {
		dev.perm = uint32(d.FileMode.Perm())
	}
	if d.UID != nil {
		dev.uid = *d.UID
	}
	if d.GID != nil {
		dev.gid = *d.GID
	}
	return dev, nil
}

// setupDev creates the devices, /dev/ptmx and the /dev symlinks.
func (p *preparer) setupDev() error {
	devs, err := deviceList(p.cfg.Spec)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if err := p.createDevice(d); err != nil {
			return fmt.Errorf("create device %s (rootfs %s): %w", d.path, p.cfg.Rootfs, err)
		}
	}
	dev, err := p.root.mkdirAll("/dev")
	if err != nil {
		return fmt.Errorf("create /dev (rootfs %s): %w", p.cfg.Rootfs, err)
	}
	defer dev.Close()
	if err := setupPtmx(dev); err != nil {
		return fmt.Errorf("set up /dev/ptmx (rootfs %s): %w", p.cfg.Rootfs, err)
	}
	links := devSymlinks
	if p.sys.hasKcore() {
		links = append(links[:len(links):len(links)], [2]string{"core", "/proc/kcore"})
	}
	for _, l := range links {
		err := unix.Symlinkat(l[1], int(dev.Fd()), l[0])
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s -> %s (rootfs %s): %w", l[0], l[1], p.cfg.Rootfs, err)
		}
	}
	return nil
}

// setupPtmx makes /dev/ptmx the devpts instance's own ptmx, so that ptys
// come from the container's devpts and not the host's.
func setupPtmx(dev *os.File) error {
	if err := unix.Unlinkat(int(dev.Fd()), "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return unix.Symlinkat("pts/ptmx", int(dev.Fd()), "ptmx")
}

func (p *preparer) createDevice(d device) error {
	if p.cfg.UserNS {
		return p.bindDevice(d)
	}
	err := p.mknodDevice(d)
	if errors.Is(err, unix.EPERM) {
		// No CAP_MKNOD (or a user namespace we were not told about).
		return p.bindDevice(d)
	}
	return err
}

// bindDevice bind-mounts the host's node of the same path onto an empty
// file, for where mknod is not allowed.
func (p *preparer) bindDevice(d device) error {
	t, err := p.root.create(d.path, false)
	if err != nil {
		return err
	}
	defer t.close()
	if err := p.sys.mnt.Mount(d.path, t.path(), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount host %s: %w", d.path, err)
	}
	return nil
}

func (p *preparer) mknodDevice(d device) error {
	dir, err := p.root.mkdirAll(filepath.Dir(d.path))
	if err != nil {
		return err
	}
	defer dir.Close()
	name := filepath.Base(d.path)
	rdev := int(unix.Mkdev(uint32(d.major), uint32(d.minor)))
	err = p.sys.nodes.Mknodat(int(dir.Fd()), name, d.typ|d.perm, rdev)
	if errors.Is(err, unix.EEXIST) {
		err = p.replaceNode(dir, name, d, rdev)
	}
	if err != nil {
		return err
	}
	node, err := openNoFollow(dir, name)
	if err != nil {
		return err
	}
	defer node.Close()
	st, err := fstat(node)
	if err != nil {
		return err
	}
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFLNK || t == unix.S_IFDIR {
		return fmt.Errorf("%s was replaced while it was being created", d.path)
	}
	// mknod applied the umask; the spec's mode is meant literally.
	if err := unix.Fchmodat(unix.AT_FDCWD, procFdPath(node), d.perm, 0); err != nil {
		return err
	}
	return p.sys.nodes.Chown(int(node.Fd()), int(d.uid), int(d.gid))
}

// replaceNode deals with a node that already exists: the right device is
// kept, anything else but a directory is replaced.
func (p *preparer) replaceNode(dir *os.File, name string, d device, rdev int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == d.typ && (d.typ == unix.S_IFIFO || int(st.Rdev) == rdev) {
		return nil
	}
	if err := unix.Unlinkat(int(dir.Fd()), name, 0); err != nil {
		return err
	}
	return p.sys.nodes.Mknodat(int(dir.Fd()), name, d.typ|d.perm, rdev)
}

// remountDevReadonly finishes a read-only /dev once it is populated.
func (p *preparer) remountDevReadonly() error {
	t, err := p.root.lookup("/dev")
	if err != nil {
		return fmt.Errorf("remount /dev read-only (rootfs %s): %w", p.cfg.Rootfs, err)
	}
	defer t.close()
	if err := p.remountBind(t.path(), p.devFlags|unix.MS_RDONLY); err != nil {
		return fmt.Errorf("remount /dev read-only (rootfs %s): %w", p.cfg.Rootfs, err)
	}
	return nil
}
