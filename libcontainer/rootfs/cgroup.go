package rootfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupHost is the host's cgroup layout as this process sees it.
type cgroupHost struct {
	// unified is set when /sys/fs/cgroup itself is cgroup2.
	unified bool
	// v2Source is this process's cgroup directory on the host's cgroup2
	// mount ("" when there is none): what a refused cgroup2 mount is
	// replaced with.
	v2Source string
	// v1 are the cgroup v1 hierarchies mounted under /sys/fs/cgroup.
	v1 []cgroupHierarchy
}

// cgroupHierarchy is one cgroup v1 hierarchy.
type cgroupHierarchy struct {
	name    string // base name of its mount point: "cpu", "cpu,cpuacct", "systemd"
	options string // what selects it in a new mount: "cpu,cpuacct", "name=systemd"
	source  string // this process's cgroup directory in it, for a bind mount
}

const cgroupRoot = "/sys/fs/cgroup"

// readCgroupHost inspects the host: what /sys/fs/cgroup is, which
// hierarchies are mounted, and which cgroup we are in.
func readCgroupHost() (*cgroupHost, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return nil, &os.PathError{Op: "statfs", Path: cgroupRoot, Err: err}
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	own, err := parseProcCgroup(f)
	if err != nil {
		return nil, err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	host := cgroupFromMounts(mounts, own)
	host.unified = st.Type == unix.CGROUP2_SUPER_MAGIC
	return host, nil
}

// parseProcCgroup reads /proc/self/cgroup into a map from the sorted
// hierarchy selector ("cpu,cpuacct", "name=systemd", "" for cgroup2) to the
// cgroup path.
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	own := map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("bad /proc/self/cgroup line %q", s.Text())
		}
		own[selectorKey(strings.Split(parts[1], ","))] = parts[2]
	}
	return own, s.Err()
}

// cgroupFlagOptions are super-block options of a v1 hierarchy that do not
// name a controller.
var cgroupFlagOptions = []string{
	"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode",
	"favordynmods", "nofavordynmods", "none",
}

// hierarchySelectors returns the controllers and name= of a v1 mount.
func hierarchySelectors(superOptions string) []string {
	var sel []string
	for _, o := range strings.Split(superOptions, ",") {
		if o == "" || slices.Contains(cgroupFlagOptions, o) || strings.HasPrefix(o, "release_agent=") {
			continue
		}
		sel = append(sel, o)
	}
	return sel
}

func selectorKey(sel []string) string {
	sel = slices.Clone(sel)
	slices.Sort(sel)
	return strings.Join(slices.DeleteFunc(sel, func(s string) bool { return s == "" }), ",")
}

func cgroupFromMounts(mounts []*mountinfo.Info, own map[string]string) *cgroupHost {
	host := &cgroupHost{}
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup2" && m.Mountpoint == cgroupRoot:
			// A unified host; it wins over a hybrid host's "unified"
			// mount below it, which it then covers.
			host.v2Source = cgroupSource(m, own[""])
		case m.FSType == "cgroup2" && host.v2Source == "" && filepath.Dir(m.Mountpoint) == cgroupRoot:
			host.v2Source = cgroupSource(m, own[""])
		case m.FSType == "cgroup" && filepath.Dir(m.Mountpoint) == cgroupRoot:
			sel := hierarchySelectors(m.VFSOptions)
			host.v1 = append(host.v1, cgroupHierarchy{
				name:    filepath.Base(m.Mountpoint),
				options: strings.Join(sel, ","),
				source:  cgroupSource(m, own[selectorKey(sel)]),
			})
		}
	}
	return host
}

// cgroupSource is the directory of our cgroup on mount m. A mount root we
// are not below (e.g. "/.." seen from inside a cgroup namespace) leaves no
// way to find it; the whole mount is then used.
func cgroupSource(m *mountinfo.Info, cgroupPath string) string {
	root := path.Clean("/" + m.Root)
	switch {
	case cgroupPath == "" || strings.HasPrefix(m.Root, "/.."):
		return m.Mountpoint
	case root == "/":
		return path.Join(m.Mountpoint, cgroupPath)
	case cgroupPath == root || strings.HasPrefix(cgroupPath, root+"/"):
		return path.Join(m.Mountpoint, strings.TrimPrefix(cgroupPath, root))
	}
	return m.Mountpoint
}

// mountCgroup mounts the cgroup tree the way the host has it: cgroup2 on a
// unified host, otherwise a tmpfs with one mount per v1 hierarchy.
func (p *preparer) mountCgroup(req *request) error {
	host, err := p.sys.cgroups()
	if err != nil {
		return p.errorf(req, err, "inspect host cgroups")
	}
	if host.unified {
		return p.mountCgroup2With(req, host)
	}
	return p.mountCgroup1(req, host)
}

func (p *preparer) mountCgroup2(req *request) error {
	host, err := p.sys.cgroups()
	if err != nil {
		return p.errorf(req, err, "inspect host cgroups")
	}
	return p.mountCgroup2With(req, host)
}

func (p *preparer) mountCgroup2With(req *request, host *cgroupHost) error {
	t, err := p.root.create(req.dest, true)
	if err != nil {
		return p.errorf(req, err, "create mount point")
	}
	defer t.close()
	err = p.sys.mnt.Mount("cgroup2", t.path(), "cgroup2", req.opts.flags, req.opts.dataString())
	if err != nil && isRetryableInUserNS(err) && host.v2Source != "" {
		// cgroup2 cannot be mounted from a user namespace whose cgroup
		// namespace it does not own: show our own cgroup instead.
		err = p.bindInstead(t, host.v2Source, req.opts.flags)
	}
	if err == nil {
		err = t.reopen()
	}
	if err != nil {
		return p.errorf(req, err, "")
	}
	return p.applyPropagation(req, t)
}

// cgroupTmpfsFlags are what the tmpfs holding the v1 hierarchies gets.
const cgroupTmpfsFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

func (p *preparer) mountCgroup1(req *request, host *cgroupHost) error {
	t, err := p.root.create(req.dest, true)
	if err != nil {
		return p.errorf(req, err, "create mount point")
	}
	defer t.close()
	if err := p.sys.mnt.Mount("tmpfs", t.path(), "tmpfs", cgroupTmpfsFlags, "mode=755"); err != nil {
		return p.errorf(req, err, "mount tmpfs")
	}
	if err := t.reopen(); err != nil {
		return p.errorf(req, err, "")
	}
	flags := req.opts.flags | cgroupTmpfsFlags
	for _, h := range host.v1 {
		if err := p.mountHierarchy(req, h, flags); err != nil {
			return p.errorf(req, err, "hierarchy %s", h.name)
		}
		if err := linkControllers(t.fd, h.name); err != nil {
			return p.errorf(req, err, "hierarchy %s", h.name)
		}
	}
	if req.opts.flags&unix.MS_RDONLY != 0 {
		if err := p.remountBind(t.path(), cgroupTmpfsFlags|unix.MS_RDONLY); err != nil {
			return p.errorf(req, err, "remount tmpfs read-only")
		}
	}
	return p.applyPropagation(req, t)
}

// mountHierarchy mounts one v1 hierarchy below the cgroup tmpfs. Inside a
// cgroup namespace a fresh cgroup mount shows exactly the container's
// subtree; without one, or when the kernel refuses (user namespace), the
// container's own cgroup directory is bind-mounted instead.
func (p *preparer) mountHierarchy(req *request, h cgroupHierarchy, flags uintptr) error {
	sub, err := p.root.create(path.Join(req.dest, h.name), true)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	defer sub.close()
	if hasNamespace(p.cfg.Spec, specs.CgroupNamespace) {
		err := p.sys.mnt.Mount("cgroup", sub.path(), "cgroup", flags, h.options)
		if err == nil || !isRetryableInUserNS(err) {
			return err
		}
	}
	return p.bindInstead(sub, h.source, flags)
}

// bindInstead bind-mounts source (a host path) on t and applies flags.
func (p *preparer) bindInstead(t *target, source string, flags uintptr) error {
	if err := p.sys.mnt.Mount(source, t.path(), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s instead: %w", source, err)
	}
	if err := t.reopen(); err != nil {
		return err
	}
	return p.remountBind(t.path(), flags)
}

// linkControllers makes "cpu" and "cpuacct" point to a co-mounted
// "cpu,cpuacct" hierarchy, as the host has them.
func linkControllers(dir *os.File, name string) error {
	if !strings.Contains(name, ",") {
		return nil
	}
	for _, c := range strings.Split(name, ",") {
		err := unix.Symlinkat(name, int(dir.Fd()), c)
		if err != nil && err != unix.EEXIST {
			return &os.LinkError{Op: "symlink", Old: name, New: c, Err: err}
		}
	}
	return nil
}
