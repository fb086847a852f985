package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/hooks"
	"github.com/berthrt/berth/libcontainer/rootfs"
)

// Delete removes a container: what is left of its processes, its cgroup,
// its host mounts and its state, then runs the poststop hooks. A failing
// poststop hook is only a warning.
//
// A stopped container is deleted as it is; so is a created one, whose
// waiting init is killed first. The runtime spec asks for a stopped
// container, but runc deletes a created one too, and containerd's runc
// shim deletes a task that was created and never started that way. A
// running or paused container needs force: its processes are killed
// first. A container whose create is still at work is refused; once that
// create is gone (killed, say), what it left is stopped and deleted.
func (c *Container) Delete(ctx context.Context, force bool, warn io.Writer) error {
	switch st := c.Status(); st {
	case Stopped:
		// Without a pid namespace of its own, the container's other
		// processes outlive its init; an interrupted create may have left
		// its init waiting. Neither may keep the cgroup alive.
		if c.state.SharedPidNS || c.state.Creator != nil {
			if err := c.killCgroup(); err != nil {
				return err
			}
		}
	case Created:
		if err := c.killAndWait(); err != nil {
			return err
		}
	case Creating:
		// Its create would go on making things, and its undo could then
		// remove those of a new container under the same id.
		return fmt.Errorf("cannot delete container %s: it is still being created by process %d; wait for it, or kill that process and delete again", c.state.ID, c.state.Creator.Pid)
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

// killAndWait SIGKILLs init and every other process in the cgroup, and
// waits for them to die.
func (c *Container) killAndWait() error {
	fd, err := pidfdOpen(c.state.InitPid)
	if c.state.InitPid <= 0 || err != nil {
		fd = -1
	} else {
		defer unix.Close(fd)
		if c.state.alive() {
			pidfdSignal(fd, syscall.SIGKILL)
		}
	}
	if err := c.killCgroup(); err != nil {
		return err
	}
	if c.proc != nil {
		c.proc.Wait()
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

// killCgroup SIGKILLs every process in the container's cgroup until none
// is left: a process that forks while the list is walked leaves a child
// the first sweep missed. A cgroup that is gone has nothing to kill.
func (c *Container) killCgroup() error {
	if c.state.CgroupPath == "" {
		return nil // an interrupted create that made no cgroup
	}
	cg, err := c.cgroup()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kill the processes of container %s: %w", c.state.ID, err)
	}
	// A frozen process cannot die.
	cg.Thaw()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := cg.Procs()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill the processes of container %s: %w", c.state.ID, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill the processes of container %s: pids %v are still in cgroup %s after SIGKILL", c.state.ID, pids, c.state.CgroupPath)
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// destroy removes the cgroup, the host mounts and the state directory.
func (c *Container) destroy() error {
	if cg, err := c.cgroup(); err == nil && c.state.CgroupPath != "" {
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
func deleteCgroup(cg cgroups.Manager) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = cg.Delete(); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}
