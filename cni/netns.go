package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NewNetNS makes a network namespace that outlives its processes, bound
// at path (as `ip netns add` binds them under /run/netns), with lo up. A
// container joins it by path; Attach wires it to networks before the
// container starts, and Detach still finds it after the container died.
//
// The namespace is made on a locked thread (onNetNSThread).
func NewNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("new network namespace %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("new network namespace %s: %w", path, err)
	}
	f.Close()
	err = onNetNSThread(func() error { return enterNewNetNS(path) }, nil)
	if err != nil {
		unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
		return fmt.Errorf("new network namespace %s: %w", path, err)
	}
	return nil
}

// withNetNS runs fn on a locked thread in the network namespace at path
// (netlink calls and /proc/sys/net writes then act in it).
func withNetNS(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return onNetNSThread(func() error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }, fn)
}

// onNetNSThread runs enter, then fn (if any and enter worked), on a
// locked thread that goes back to its own network namespace before it is
// unlocked. Where it cannot, it stays locked, and Go ends it with the
// goroutine (or parks it, if it is the main thread): no other goroutine
// ever runs in the other namespace. Going back matters even so: a parked
// main thread would keep the namespace alive.
func onNetNSThread(enter, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		err = enter()
		if err == nil && fn != nil {
			err = fn()
		}
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr == nil {
			runtime.UnlockOSThread()
		} else if err == nil {
			err = fmt.Errorf("back to the caller's namespace: %w", serr)
		}
		done <- err
	}()
	return <-done
}

// enterNewNetNS moves the calling (locked) thread into a new network
// namespace, binds it at path and sets its lo up.
func enterNewNetNS(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", self, err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// RemoveNetNS unbinds and removes a namespace NewNetNS made; the
// namespace goes when its last process does. A path that is gone is no
// error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// Release takes the container off every network and removes its network
// namespace at netnsPath, in the order that costs least: the namespace
// first, so that its veths go with it (the kernel deletes them after
// Release returns; one by one, each would hold Detach up 15-30 ms), then
// DetachAll, which frees the addresses, the published ports and the
// records. Call it once the container's processes are gone: one still in
// the namespace would keep its veths on the bridge until it exits. A
// namespace or an attachment that is gone already is no error, so
// Release may be called again after a failure.
func (s *Store) Release(ctx context.Context, containerID, netnsPath string) error {
	var errs []error
	if netnsPath != "" {
		errs = append(errs, RemoveNetNS(netnsPath))
	}
	errs = append(errs, s.DetachAll(ctx, containerID))
	return errors.Join(errs...)
}
