package libcontainer

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// bringLoopbackUp sets lo up in a network namespace the runtime has just
// created, as runc does: a new namespace starts with lo down, which leaves
// no 127.0.0.1 and no ::1, and every server that binds to localhost breaks.
// A namespace joined by path belongs to whoever made it and is left alone.
//
// Two ioctls on a throwaway socket, not netlink: init runs this for every
// container, and the netlink library would add its package setup to every
// start of the runtime binary for a single flag.
func bringLoopbackUp(namespaces []specs.LinuxNamespace) error {
	if !createsNamespace(namespaces, specs.NetworkNamespace) {
		return nil
	}
	fd, ifr, err := loopbackFlags()
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up in the container's network namespace: %w", err)
	}
	return nil
}

// loopbackFlags reads lo's flags into ifr, on a socket for the ioctl that
// changes them; the caller closes fd.
func loopbackFlags() (fd int, ifr *unix.Ifreq, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	if ifr, err = unix.NewIfreq("lo"); err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("read the flags of lo: %w", err)
	}
	return fd, ifr, nil
}

// createsNamespace says whether the spec asks for a new namespace of typ
// (listed without a path).
func createsNamespace(namespaces []specs.LinuxNamespace, typ specs.LinuxNamespaceType) bool {
	for _, ns := range namespaces {
		if ns.Type == typ && ns.Path == "" {
			return true
		}
	}
	return false
}
