package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer"
	"github.com/berthrt/berth/logs/jsonfile"
)

// consoleSocket is the --console-socket of a process with a terminal: the
// process's init sends the pty master over it (libcontainer.ReceivePty).
type consoleSocket struct {
	dir string
	ln  *net.UnixListener
}

func newConsoleSocket() (*consoleSocket, error) {
	// A short path under /tmp: unix socket paths must stay under 108
	// bytes, which bundle paths do not promise.
	dir, err := os.MkdirTemp("", "berth-pty")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "pty.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{dir: dir, ln: ln}, nil
}

func (s *consoleSocket) Path() string { return s.ln.Addr().String() }

// receive takes the pty master. libcontainer connects before the process
// starts and sends the master during set-up, so once Create or Exec has
// returned it is there; the deadline only guards against a bug.
func (s *consoleSocket) receive() (*os.File, error) {
	s.ln.SetDeadline(time.Now().Add(30 * time.Second))
	f, err := libcontainer.ReceivePty(s.ln)
	if err != nil {
		return nil, err
	}
	return nonBlocking(f)
}

func (s *consoleSocket) Close() {
	s.ln.Close()
	os.RemoveAll(s.dir)
}

// nonBlocking re-wraps a received fd in non-blocking mode, so that the
// runtime poller serves it and Close interrupts a Read in progress.
func nonBlocking(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var derr error
	rc.Control(func(raw uintptr) { fd, derr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) })
	if derr != nil {
		return nil, fmt.Errorf("pty master: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty master: %w", err)
	}
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

// console copies between a process's pty master and its client: the
// stdin fifo into the master, the master out to the stdout fifo (a
// terminal has no separate stderr).
type console struct {
	master    *os.File
	stdinHold *os.File
	copiers   sync.WaitGroup
	closeOnce sync.Once
	closers   []io.Closer
}

func newConsole(ctx context.Context, master *os.File, s Stdio, logw *jsonfile.Writer) (_ *console, err error) {
	c := &console{master: master}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if s.Stdin != "" {
		src, err := os.OpenFile(s.Stdin, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("open stdin %s: %w", s.Stdin, err)
		}
		c.closers = append(c.closers, src)
		if c.stdinHold, err = os.OpenFile(s.Stdin, os.O_WRONLY|unix.O_NONBLOCK, 0); err != nil {
			return nil, fmt.Errorf("open stdin %s: %w", s.Stdin, err)
		}
		go func() {
			buf := make([]byte, 32<<10)
			io.CopyBuffer(master, src, buf)
			src.Close()
		}()
	}
	if s.Stdout == "" && logw == nil {
		return c, nil
	}
	// The terminal's output, to the client and the log (as stdout: a
	// terminal has no stderr of its own).
	var dst io.WriteCloser
	var to io.Writer
	if s.Stdout != "" {
		if dst, err = openOutput(s.Stdout); err != nil {
			return nil, err
		}
		to = dst
	}
	var logs *jsonfile.Stream
	if logw != nil {
		logs = logw.Stream("stdout")
	}
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		if err := copyOutput(ctx, "terminal output", master, to, logs); err != nil {
			log.G(ctx).WithError(err).Warn("copy terminal output")
		}
		if dst != nil {
			dst.Close()
		}
	}()
	return c, nil
}

// Resize sets the terminal's size.
func (c *console) Resize(width, height uint32) error {
	rc, err := c.master.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Col: uint16(width), Row: uint16(height)}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	if ierr != nil {
		return fmt.Errorf("resize terminal: %w", ierr)
	}
	return nil
}

// CloseStdin stops holding the stdin fifo open. A terminal has no EOF of
// its own to give; the copy ends when the client closes its end.
func (c *console) CloseStdin() error {
	if c.stdinHold == nil {
		return nil
	}
	if err := c.stdinHold.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// Wait waits until the output has been copied out, or ctx ends.
func (c *console) Wait(ctx context.Context) error { return waitGroup(ctx, &c.copiers) }

func (c *console) Close() error {
	c.closeOnce.Do(func() {
		c.CloseStdin()
		for _, cl := range c.closers {
			cl.Close()
		}
		c.master.Close()
	})
	return nil
}
