package libcontainer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berthrt/berth/libcontainer/hooks"
)

// Start releases a created container's init to exec the user's program,
// then runs the poststart hooks. A failing poststart hook is reported as a
// warning on warn, as the spec asks, and does not fail the start.
func (c *Container) Start(ctx context.Context, warn io.Writer) error {
	if st := c.Status(); st != Created {
		return fmt.Errorf("cannot start container %s: it is %s, not created", c.state.ID, st)
	}
	fifo := filepath.Join(c.dir, execFifo)
	// Opening the read side unblocks init, which waits in an open for
	// writing; the byte it then writes says it got past that point.
	f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("start %s: open exec fifo: %w", c.state.ID, err)
	}
	// init writes one byte when it wakes, then holds the fifo open until
	// its exec closes it; anything more it writes is why it failed.
	out, err := io.ReadAll(f)
	f.Close()
	os.Remove(fifo)
	if err != nil || len(out) == 0 {
		return fmt.Errorf("start %s: container init exited before it could start (%v)", c.state.ID, err)
	}
	if len(out) > 1 {
		return fmt.Errorf("start %s: %s", c.state.ID, out[1:])
	}
	if err := hooks.Run(ctx, hooks.Poststart, hooks.ForPoint(c.state.Hooks, hooks.Poststart), c.state.ociState(Running)); err != nil {
		fmt.Fprintf(warn, "warning: %v\n", err)
	}
	return nil
}
