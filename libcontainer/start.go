package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthrt/berth/libcontainer/hooks"
)

// Start releases a created container's init to exec the user's program,
// then runs the poststart hooks. A failing poststart hook fails the start
// and kills the container, as runc's; warn gets what goes wrong on the way.
func (c *Container) Start(ctx context.Context, warn io.Writer) error {
	if st := c.Status(); st != Created {
		return fmt.Errorf("cannot start container %s: it is %s, not created", c.state.ID, st)
	}
	if err := c.notFrozen(); err != nil {
		return fmt.Errorf("cannot start container %s: %w", c.state.ID, err)
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
	out, err := c.readInit(f)
	f.Close()
	if errors.Is(err, errFrozen) && len(out) == 0 {
		// Still waiting for start, and still created once thawed.
		return fmt.Errorf("start %s: %w", c.state.ID, err)
	}
	os.Remove(fifo)
	if errors.Is(err, errFrozen) {
		// Past the wait: paused now, it runs once thawed.
		return fmt.Errorf("start %s: frozen as it started: %w", c.state.ID, err)
	}
	if err != nil || len(out) == 0 {
		return fmt.Errorf("start %s: container init exited before it could start (%v)", c.state.ID, err)
	}
	if len(out) > 1 {
		return &ProcessStartError{ID: c.state.ID, Reason: string(out[1:])}
	}
	if err := hooks.Run(ctx, hooks.Poststart, hooks.ForPoint(c.state.Hooks, hooks.Poststart), c.state.ociState(Running)); err != nil {
		// As runc (which tools built on it expect, its own tests among
		// them): the container is killed and start fails, rather than
		// the spec's warning and carry on. What a poststart hook was to
		// set up around the program is missing.
		if kerr := c.Kill(syscall.SIGKILL); kerr != nil && !errors.Is(kerr, ErrNotRunning) {
			fmt.Fprintf(warn, "warning: kill %s after its poststart hook failed: %v\n", c.state.ID, kerr)
		}
		return fmt.Errorf("start %s: %w", c.state.ID, err)
	}
	return nil
}

// ProcessStartError is init's own account of why the container's program
// did not start, once start had released it: a startContainer hook, the
// credentials, or the exec itself ("exec /run.sh: no such file or
// directory", runc's words). The runtime's CLI prints Reason alone, as runc
// does, since it already says what failed.
type ProcessStartError struct {
	ID     string
	Reason string
}

func (e *ProcessStartError) Error() string { return "start " + e.ID + ": " + e.Reason }

var errFrozen = errors.New("its cgroup is frozen, and its init cannot run until it is thawed (berth-runtime resume, or write the freezer)")

// notFrozen says errFrozen when the container's cgroup is frozen.
func (c *Container) notFrozen() error {
	cg, err := c.cgroup()
	if err != nil {
		return nil // nothing to tell: the reads go on as before
	}
	if frozen, err := cg.Frozen(); err == nil && frozen {
		return errFrozen
	}
	return nil
}

// readInit reads the exec fifo to EOF. A cgroup frozen under init while
// start waits (init would never write) ends the wait with errFrozen.
func (c *Container) readInit(f *os.File) ([]byte, error) {
	var out []byte
	buf := make([]byte, 512)
	for {
		// A fifo is pollable: Go reads it with deadlines.
		f.SetReadDeadline(time.Now().Add(stallCheck))
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			if ferr := c.notFrozen(); ferr != nil {
				return out, ferr
			}
		case err != nil:
			return out, err
		}
	}
}
