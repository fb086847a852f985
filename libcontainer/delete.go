package libcontainer

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/hooks"
	"github.com/berthrt/berth/libcontainer/rootfs"
)

// Delete removes a stopped container: its cgroup and its state, then runs
// the poststop hooks. A container in any other state is refused, as the
// runtime spec asks, unless force is set: its processes are killed first.
// A failing poststop hook is only a warning.
func (c *Container) Delete(ctx context.Context, force bool, warn io.Writer) error {
	switch st := c.Status(); st {
	case Stopped:
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is %s: stop it first or use --force", c.state.ID, st)
		}
		if err := c.killAndWait(); err != nil {
			return err
		}
	}
	if err := c.destroy(); err != nil {
		return err
	}
	st := c.state.ociState(Stopped)
	if err := hooks.Run(ctx, hooks.Poststop, hooks.ForPoint(c.state.Hooks, hooks.Poststop), st); err != nil {
		fmt.Fprintf(warn, "warning: %v\n", err)
	}
	return nil
}

// killAndWait SIGKILLs init (and, without a pid namespace of its own, every
// other process in the cgroup) and waits for it to die.
func (c *Container) killAndWait() error {
	cg, cgErr := c.cgroup()
	if cgErr == nil {
		// A frozen process cannot die; thaw so SIGKILL is delivered.
		cg.Thaw()
	}
	fd, err := pidfdOpen(c.state.InitPid)
	if err != nil {
		fd = -1
	} else {
		defer unix.Close(fd)
		if c.state.alive() {
			pidfdSignal(fd, syscall.SIGKILL)
		}
	}
	if cgErr == nil {
		if pids, err := cg.Procs(); err == nil {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
	if c.cmd != nil {
		c.cmd.Wait()
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.state.alive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s (pid %d) did not die after SIGKILL", c.state.ID, c.state.InitPid)
		}
		if fd >= 0 {
			// A pidfd polls readable once the process has exited.
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// destroy removes the cgroup and the state directory.
func (c *Container) destroy() error {
	if cg, err := c.cgroup(); err == nil {
		if err := deleteCgroup(cg); err != nil {
			return fmt.Errorf("delete container %s: %w", c.state.ID, err)
		}
	}
	if c.state.HostMounts {
		if err := rootfs.Unmount(c.state.Rootfs); err != nil {
			return fmt.Errorf("delete container %s: %w", c.state.ID, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("delete container %s: remove state: %w", c.state.ID, err)
	}
	return nil
}

// deleteCgroup retries for a moment: a process that was just killed can
// hold its cgroup for a few milliseconds after it is reported dead.
func deleteCgroup(cg interface{ Delete() error }) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = cg.Delete(); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}
