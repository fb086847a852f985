package libcontainer

import (
	"fmt"
	"syscall"
)

// Kill sends sig to the container's init. Only a stopped container refuses
// it: created and paused containers can be signalled (a paused one receives
// the signal once thawed, except SIGKILL, which works at once).
func (c *Container) Kill(sig syscall.Signal) error {
	if st := c.Status(); st == Stopped {
		return fmt.Errorf("%w: %s", ErrNotRunning, c.state.ID)
	}
	return c.state.signal(sig)
}
