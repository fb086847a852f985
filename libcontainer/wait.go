package libcontainer

import (
	"errors"
)

// ErrNotParent means this process did not start the container's init, so
// it cannot wait for it (only the parent gets the exit status).
var ErrNotParent = errors.New("this process is not the container's parent")

// Wait waits for an init this process started and returns its exit code
// the way a shell reports it: the status, or 128+signal.
func (c *Container) Wait() (int, error) {
	if c.proc == nil {
		return -1, ErrNotParent
	}
	return waitCode(c.proc)
}
