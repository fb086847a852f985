package libcontainer

import (
	"fmt"
	"syscall"
)

// Kill sends sig to the container's init. Only a stopped container refuses
// it. A paused container gets the signal when it is resumed, except
// SIGKILL: a frozen process cannot die, so the container is thawed for it.
//
// SIGKILL to a container without a pid namespace of its own goes to every
// process in its cgroup, as in runc: there, init's death does not take the
// others with it.
//
// That holds after its init is gone, too: such a container counts as
// stopped, but what it started lives on in its cgroup, and SIGKILL is how
// to end it (as runc, which refuses only once the cgroup is gone too).
func (c *Container) Kill(sig syscall.Signal) error {
	st := c.Status()
	if sig == syscall.SIGKILL && c.state.SharedPidNS {
		if _, err := c.cgroup(); err == nil {
			return c.KillAll(sig)
		}
	}
	if st == Stopped {
		return fmt.Errorf("%w: %s", ErrNotRunning, c.state.ID)
	}
	if err := c.state.signal(sig); err != nil {
		return err
	}
	if st == Paused && sig == syscall.SIGKILL {
		if cg, err := c.cgroup(); err == nil {
			return cg.Thaw()
		}
	}
	return nil
}

// KillAll sends sig to every process in the container's cgroup (runc's
// kill --all). A stopped container is no error: what is left of it, if
// anything, still gets the signal, and callers such as containerd's shim
// use it to make sure nothing is left.
func (c *Container) KillAll(sig syscall.Signal) error {
	cg, err := c.cgroup()
	if err != nil {
		if c.Status() == Stopped {
			return nil
		}
		return fmt.Errorf("kill all processes of %s: %w", c.state.ID, err)
	}
	pids, err := cg.Procs()
	if err != nil {
		return fmt.Errorf("kill all processes of %s: %w", c.state.ID, err)
	}
	for _, p := range pids {
		syscall.Kill(p, sig)
	}
	if sig == syscall.SIGKILL {
		cg.Thaw() // a frozen process cannot die
	}
	return nil
}
