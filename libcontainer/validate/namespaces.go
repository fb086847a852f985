package validate

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// source says where the container's namespace of one kind comes from.
type source int

const (
	shared  source = iota // the runtime's own: the host's, as far as the container goes
	created               // a new one, made for the container
	joined                // another one, joined by path
)

// namespaces is the source of each kind of namespace; a kind not listed is
// shared.
type namespaces map[specs.LinuxNamespaceType]source

// CloneFlags are the kernel's names for each kind: clone(2), unshare(2)
// and setns(2) take them, and NS_GET_NSTYPE answers with them.
var CloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procNames are the kinds' names under /proc/<pid>/ns.
var procNames = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// readNamespaces checks that every path in linux.namespaces is a namespace
// of the kind it is listed as, and says where each kind comes from. A path
// to the runtime's own namespace counts as shared: joining it isolates
// nothing.
func readNamespaces(list []specs.LinuxNamespace) (namespaces, error) {
	out := namespaces{}
	for _, ns := range list {
		if _, ok := CloneFlags[ns.Type]; !ok {
			return nil, fmt.Errorf("unknown namespace type %q in linux.namespaces", ns.Type)
		}
		if ns.Path == "" {
			out[ns.Type] = created
			continue
		}
		own, err := checkNamespacePath(ns.Type, ns.Path)
		if err != nil {
			return nil, err
		}
		out[ns.Type] = joined
		if own {
			out[ns.Type] = shared
		}
	}
	return out, nil
}

// checkNamespacePath makes sure path is a namespace of the kind, and says
// whether it is the runtime's own.
func checkNamespacePath(kind specs.LinuxNamespaceType, path string) (own bool, err error) {
	// The paths reach nsenter's constructor as one comma-separated list.
	if strings.Contains(path, ",") {
		return false, fmt.Errorf("linux.namespaces: %s namespace path %s has a comma, which berth-runtime cannot pass on: bind-mount the namespace file at a path without one", kind, path)
	}
	// O_PATH first: opening an arbitrary file for reading could block (a
	// fifo) or act on a device.
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("linux.namespaces: %s namespace path %s: %w", kind, path, err)
	}
	defer unix.Close(fd)
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return false, fmt.Errorf("linux.namespaces: %s namespace path %s: %w", kind, path, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return false, fmt.Errorf("linux.namespaces: %s namespace path %s is not a namespace (want a file like /proc/<pid>/ns/%s or a bind mount of one)", kind, path, procNames[kind])
	}
	nsFd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("linux.namespaces: open %s namespace %s: %w", kind, path, err)
	}
	defer unix.Close(nsFd)
	got, err := unix.IoctlRetInt(nsFd, unix.NS_GET_NSTYPE)
	if err != nil {
		return false, fmt.Errorf("linux.namespaces: read the type of namespace %s: %w", path, err)
	}
	if uintptr(got) != CloneFlags[kind] {
		return false, fmt.Errorf("linux.namespaces: %s is a namespace of type %s, listed as %s", path, kindOf(got), kind)
	}
	var theirs, ours unix.Stat_t
	if err := unix.Fstat(nsFd, &theirs); err != nil {
		return false, fmt.Errorf("linux.namespaces: %s: %w", path, err)
	}
	if err := unix.Stat("/proc/self/ns/"+procNames[kind], &ours); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("linux.namespaces: read the runtime's own %s namespace: %w", kind, err)
	}
	return theirs.Dev == ours.Dev && theirs.Ino == ours.Ino, nil
}

func kindOf(flag int) string {
	for k, f := range CloneFlags {
		if f == uintptr(flag) {
			return string(k)
		}
	}
	return fmt.Sprintf("unknown (%#x)", flag)
}
