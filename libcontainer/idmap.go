package libcontainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/rootfs"
)

// Detached mounts are bind mounts the parent makes for init with
// open_tree(2), because init cannot (see rootfs/detached.go): idmapped
// binds, which need privileges over the source's file system, and the
// notify socket's directory, inside the 0700 state directory. The parent
// sends them to init over a socket of their own, not the JSON sync socket
// (its decoder reads ahead, and an fd would arrive with the wrong bytes):
//
//	parent                                   init
//	  start init, send initConfig with
//	  DetachedMounts (spec mount indices)
//	  open_tree + mount_setattr per mount      rootfs.Prepare: at each of
//	  ---- index + SCM_RIGHTS fd, in order -->   those mounts, receive its fd
//	  close the socket                           and move_mount it into place
type mountSource struct {
	index int
	dest  string
	// source is the host path to clone; rbind clones its whole subtree.
	source string
	rbind  bool
	// idmap is nil for a plain clone.
	idmap *rootfs.IDMap
}

// planMountSources lists the spec's idmapped mounts, and checks that
// each can get a mapping: its own, or the container's user namespace.
func planMountSources(spec *specs.Spec, bundle string, hasUserNS bool) ([]mountSource, error) {
	var out []mountSource
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		im, err := rootfs.IDMapOf(m, bundle)
		if err != nil {
			return nil, err
		}
		if im == nil {
			continue
		}
		if im.UIDMappings == nil && !hasUserNS {
			return nil, fmt.Errorf("mount option %s on %s: the mount has no uidMappings and gidMappings, and the container no user namespace to take them from", im.Option, m.Destination)
		}
		out = append(out, mountSource{index: i, dest: m.Destination, source: im.Source, rbind: im.Rbind, idmap: im})
	}
	return out, nil
}

func mountSourceIndices(list []mountSource) []int {
	out := make([]int, 0, len(list))
	for _, d := range list {
		out = append(out, d.index)
	}
	return out
}

// sendDetachedMounts makes each planned mount and sends it to init, in
// mount order, then closes the socket. The user namespaces are opened first,
// in our own mount namespace: mountNS, when the container joins one, is
// only for resolving the sources. containerUserns opens the container's
// user namespace, for idmaps without mappings of their own.
func (l *launcher) sendDetachedMounts(list []mountSource, mountNS string, containerUserns func() (*os.File, error)) error {
	defer l.mountSock.Close()
	users := &usernsCache{container: containerUserns, byMaps: map[string]*os.File{}}
	defer users.close()
	for _, d := range list {
		if d.idmap == nil {
			continue
		}
		if _, err := users.get(d.idmap.UIDMappings, d.idmap.GIDMappings); err != nil {
			return fmt.Errorf("mount option %s on %s: %w", d.idmap.Option, d.dest, err)
		}
	}
	return inMountNS(mountNS, func() error {
		for _, d := range list {
			f, err := d.make(users)
			if err != nil {
				return err
			}
			err = sendMountFd(l.mountSock, d.index, f)
			f.Close()
			if err != nil {
				return errInitDied
			}
		}
		return nil
	})
}

// make clones the source as a detached mount and idmaps it if asked.
func (d *mountSource) make(users *usernsCache) (*os.File, error) {
	what := "bind"
	if d.idmap != nil {
		what = "mount option " + d.idmap.Option
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if d.rbind {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, d.source, flags)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: clone the source %s (open_tree): %w", what, d.dest, d.source, err)
	}
	f := os.NewFile(uintptr(fd), "detached:"+d.dest)
	if d.idmap == nil {
		return f, nil
	}
	if err := d.setIDMap(f, users); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s on %s: %w", what, d.dest, err)
	}
	return f, nil
}

func (d *mountSource) setIDMap(f *os.File, users *usernsCache) error {
	userns, err := users.get(d.idmap.UIDMappings, d.idmap.GIDMappings)
	if err != nil {
		return err
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	flags := unix.AT_EMPTY_PATH
	if d.idmap.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	err = unix.MountSetattr(int(f.Fd()), "", uint(flags), attr)
	switch {
	case errors.Is(err, unix.EINVAL) && d.idmap.Recursive:
		return fmt.Errorf("the file system of %s, or of a mount below it, does not support idmapped mounts (%w)", d.source, errnoName{unix.EINVAL})
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the file system of %s does not support idmapped mounts (%w)", d.source, errnoName{unix.EINVAL})
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("this kernel has no mount_setattr(2) for idmapped mounts (Linux 5.12 or later needed): %w", err)
	case err != nil:
		return fmt.Errorf("idmap %s (mount_setattr): %w", d.source, err)
	}
	return nil
}

// errnoName shows an errno by its name, for messages that explain it.
type errnoName struct{ unix.Errno }

func (e errnoName) Error() string { return unix.ErrnoName(e.Errno) }
func (e errnoName) Unwrap() error { return e.Errno }

// usernsCache holds the user namespaces the idmaps of one create use: one
// per distinct set of mappings, and the container's own.
type usernsCache struct {
	container func() (*os.File, error)
	byMaps    map[string]*os.File
}

func (c *usernsCache) get(uid, gid []specs.LinuxIDMapping) (*os.File, error) {
	key := "container"
	if uid != nil {
		key = fmt.Sprint(uid, gid)
	}
	if f := c.byMaps[key]; f != nil {
		return f, nil
	}
	var f *os.File
	var err error
	if uid == nil {
		f, err = c.container()
	} else {
		f, err = newUserns(uid, gid)
	}
	if err != nil {
		return nil, err
	}
	c.byMaps[key] = f
	return f, nil
}

func (c *usernsCache) close() {
	for _, f := range c.byMaps {
		f.Close()
	}
}

// newUserns makes a user namespace with the mappings and returns an fd of
// it. A namespace needs a process to be made: this one is traced, so it
// stops at its exec before it runs any code, and is killed once its
// namespace is open (the fd keeps the namespace alive).
func newUserns(uid, gid []specs.LinuxIDMapping) (*os.File, error) {
	// The tracer is the forking thread: keep it until the tracee is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := os.StartProcess("/proc/self/exe", []string{"berth-runtime-userns"}, &os.ProcAttr{Sys: &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: idMaps(uid),
		GidMappings: idMaps(gid),
		Ptrace:      true,
	}})
	if err != nil {
		return nil, fmt.Errorf("make a user namespace with the mount's mappings: %w", err)
	}
	defer func() {
		p.Kill()
		p.Wait()
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(p.Pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("open the user namespace with the mount's mappings: %w", err)
	}
	return f, nil
}

// inMountNS runs fn in the mount namespace at path ("" for ours), so that
// sources resolve as init sees them when the container joins one. The
// thread is never unlocked: Go discards it rather than reuse a thread
// that sits in another mount namespace (offMainThread).
func inMountNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go offMainThread(func() {
		// setns(CLONE_NEWNS) refuses a thread that shares its fs_struct.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs attributes: %w", err)
			return
		}
		if err := setnsPath(path, unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("join mount namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	})
	return <-errc
}

func mountFdPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create mount fd socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "mounts-parent"), os.NewFile(uintptr(fds[1]), "mounts-child"), nil
}

// sendMountFd sends the detached mount for spec mount index.
func sendMountFd(sock *os.File, index int, f *os.File) error {
	msg := binary.LittleEndian.AppendUint32(nil, uint32(index))
	return unix.Sendmsg(int(sock.Fd()), msg, unix.UnixRights(int(f.Fd())), nil, 0)
}

// recvMountFd is init's side of sendMountFd.
func recvMountFd(sock int) (int, *os.File, error) {
	buf := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, errors.New("the runtime closed the socket")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return 0, nil, fmt.Errorf("bad control message (%d bytes): %v", oobn, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return 0, nil, fmt.Errorf("want one fd, got %d: %v", len(fds), err)
	}
	return int(binary.LittleEndian.Uint32(buf)), os.NewFile(uintptr(fds[0]), "detached mount"), nil
}

// detachedMountFunc is init's rootfs.Config.DetachedMount: the mounts in
// cfg.DetachedMounts come, in order, from the mount fd socket.
func (cfg *initConfig) detachedMountFunc() func(int) (*os.File, error) {
	if len(cfg.DetachedMounts) == 0 {
		return nil
	}
	return func(i int) (*os.File, error) {
		if !slices.Contains(cfg.DetachedMounts, i) {
			return nil, nil
		}
		got, f, err := recvMountFd(cfg.MountFd)
		if err != nil {
			return nil, fmt.Errorf("receive the mount from the runtime: %w", err)
		}
		if got != i {
			f.Close()
			return nil, fmt.Errorf("container init protocol: got the mount for spec mount %d, want %d", got, i)
		}
		return f, nil
	}
}

// systemdAndMounts applies the runtime's systemd environment (socket
// activation, notify socket) to the spec, and plans the mounts the parent
// makes for init.
func (b *builder) systemdAndMounts() error {
	setListenEnv(b.spec.Process, b.opts.ListenFds)
	list, err := planMountSources(b.spec, b.bundle, b.plan.newUser || b.plan.joinUser)
	if err != nil {
		return err
	}
	if b.opts.NotifySocket != "" {
		m, err := b.addNotifyMount()
		if err != nil {
			return err
		}
		list = append(list, *m)
	}
	b.mountSources = list
	return nil
}

// containerUserns opens the container's user namespace: the one it joins,
// or the one init was cloned into.
func (b *builder) containerUserns() (*os.File, error) {
	path := b.plan.joinPath(specs.UserNamespace)
	if path == "" {
		path = "/proc/" + strconv.Itoa(b.proc.Pid) + "/ns/user"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the container's user namespace: %w", err)
	}
	return f, nil
}

// joinPath is the path of the namespace of that kind init joins, or "".
func (p *nsPlan) joinPath(kind specs.LinuxNamespaceType) string {
	for _, j := range p.initJoins {
		if j.kind == kind {
			return j.path
		}
	}
	return ""
}
