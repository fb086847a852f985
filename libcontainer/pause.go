package libcontainer

import (
	"fmt"
)

// Pause freezes every process of a running container (the v1 freezer, or
// cgroup.freeze on v2).
func (c *Container) Pause() error {
	if st := c.Status(); st != Running {
		return fmt.Errorf("cannot pause container %s: it is %s, not running", c.state.ID, st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return fmt.Errorf("pause %s: %w", c.state.ID, err)
	}
	if err := cg.Freeze(); err != nil {
		return fmt.Errorf("pause %s: %w", c.state.ID, err)
	}
	return nil
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != Paused {
		return fmt.Errorf("cannot resume container %s: it is %s, not paused", c.state.ID, st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return fmt.Errorf("resume %s: %w", c.state.ID, err)
	}
	if err := cg.Thaw(); err != nil {
		return fmt.Errorf("resume %s: %w", c.state.ID, err)
	}
	return nil
}

// Pids lists the processes in the container's cgroup.
func (c *Container) Pids() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, fmt.Errorf("list processes of %s: %w", c.state.ID, err)
	}
	return cg.Procs()
}
