package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/logs/jsonfile"
)

// copyBufSize is the size of one read of a process's output.
const copyBufSize = 32 << 10

// copyBufs are the read buffers of every output copy in the shim. A copy
// takes one only while it has data to move: one that waits for output
// (nearly all of them, nearly always) holds none, so a shim serving
// many quiet containers keeps one or two buffers, not one per stream.
var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// clientStallTimeout is how long a container with a log waits for its
// client to take output before the client counts as gone.
var clientStallTimeout = 5 * time.Second

// copyOutput moves a process's output from src (a pipe, or a pty
// master: the runtime's poller serves it) to the container's log and to
// the client's dst, each optional, until every writer has closed it
// (EOF, or EIO from a master once the terminal is gone). A failing log
// does not stop the client's copy, nor a gone client the log's.
func copyOutput(ctx context.Context, what string, src *os.File, dst io.Writer, logs *jsonfile.Stream) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return fmt.Errorf("copy %s: %w", what, err)
	}
	client := newClientOut(dst, logs != nil)
	var logErr, dstErr error
	for {
		var n int
		var rerr error
		var buf *[copyBufSize]byte
		// The buffer is taken inside the read, after the poller said
		// there is data: waiting holds nothing.
		err := rc.Read(func(fd uintptr) bool {
			buf = copyBufs.Get().(*[copyBufSize]byte)
			for {
				n, rerr = unix.Read(int(fd), buf[:])
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				copyBufs.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if n > 0 {
			// The log first: a slow client does not hold it back.
			if logs != nil {
				if _, werr := logs.Write(buf[:n]); werr != nil && logErr == nil {
					logErr = werr
					log.G(ctx).WithError(werr).Warnf("write %s to the container's log", what)
				}
			}
			if client != nil && dstErr == nil {
				if dstErr = client.write(buf[:n]); dstErr != nil {
					log.G(ctx).WithError(dstErr).Warnf("copy %s to the client", what)
				}
			}
		}
		if buf != nil {
			copyBufs.Put(buf)
		}
		if n > 0 && err == nil {
			continue
		}
		if logs != nil {
			if ferr := logs.Flush(); ferr != nil && logErr == nil {
				log.G(ctx).WithError(ferr).Warnf("write %s to the container's log", what)
			}
		}
		if err == nil || errors.Is(err, unix.EIO) || errors.Is(err, os.ErrClosed) {
			// EOF (a read of 0), or the end of a terminal.
			return nil
		}
		return fmt.Errorf("copy %s: %w", what, err)
	}
}

// clientOut is the client's end of an output stream. Without a log, a
// client that does not read holds the container's output back, as with
// containerd's runc shim (and docker's attach). With one, everything is
// in the log anyway, so a client that takes nothing for
// clientStallTimeout (a `berth run -it` detached with Ctrl-P Ctrl-Q, or
// killed, leaving the fifo unread) no longer stalls the container and its
// log: what it does not take is dropped until it reads again (a new
// attach).
type clientOut struct {
	w io.Writer
	// deadline is the fifo's write deadline; nil: writes block.
	deadline interface{ SetWriteDeadline(time.Time) error }
	stalled  bool
}

func newClientOut(dst io.Writer, logged bool) *clientOut {
	if dst == nil {
		return nil
	}
	c := &clientOut{w: dst}
	if d, ok := dst.(interface{ SetWriteDeadline(time.Time) error }); ok && logged {
		// Only a pollable file (a fifo) takes a deadline; a plain one
		// says so and keeps blocking writes.
		if d.SetWriteDeadline(time.Time{}) == nil {
			c.deadline = d
		}
	}
	return c
}

func (c *clientOut) write(p []byte) error {
	if c.deadline == nil {
		_, err := c.w.Write(p)
		return err
	}
	for len(p) > 0 {
		wait := clientStallTimeout
		if c.stalled {
			wait = 0 // one attempt: is it reading again?
		}
		if err := c.deadline.SetWriteDeadline(time.Now().Add(wait)); err != nil {
			return err
		}
		n, err := c.w.Write(p)
		p = p[n:]
		switch {
		case err == nil:
			c.stalled = false
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return err
		case n == 0:
			c.stalled = true // nothing taken in time: drop this
			return nil
		}
		c.stalled = false // it took some: give it the rest, in time
	}
	return nil
}
