package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/logs/jsonfile"
)

// Stdio names the client's ends of a process's standard streams, as the
// task API gives them: fifo paths (or plain files), a file:// or
// binary:// URI in Stdout for a log file or a logging driver, or "" for
// none.
type Stdio struct {
	Stdin, Stdout, Stderr string
	Terminal              bool
}

// IsNull reports whether the process has no stdio at all.
func (s Stdio) IsNull() bool { return s.Stdin == "" && s.Stdout == "" && s.Stderr == "" }

// Reaper is the part of the shim's reaper that processes use: a child
// the shim starts for a process (a logging binary) is waited for through
// it, never with exec.Cmd.Wait, which would race it.
type Reaper interface {
	Track(pid int, onExit func(Exit))
	Hold() (release func())
}

// pipeIO connects a process without a terminal to its client. The
// process always gets pipes (or /dev/null), never the client's fifos: a
// pipe keeps what the process wrote after it exited, and the shim copies
// it all out before it closes the client's end, so a process that exits
// at once loses no output.
type pipeIO struct {
	// proc are the process's ends (stdin, stdout, stderr), handed to
	// libcontainer and closed once it has started the process.
	proc [3]*os.File
	// stdinHold is the shim's own writer on the client's stdin fifo. It
	// keeps the copy from seeing EOF when a client closes and reopens the
	// fifo (an attach); CloseIO closes it.
	stdinHold *os.File
	copiers   sync.WaitGroup // output copies, done when the process side is closed
	logger    *loggerProc
	// log is the container's json-file log (an init's, when its spec
	// asks for one): every output copy also writes there.
	log       *jsonfile.Writer
	closeOnce sync.Once
	closers   []io.Closer
}

// newPipeIO opens the client's ends and starts the copies. uid and gid,
// when not -1, own the pipes, so that a process in a user namespace can
// reopen /proc/self/fd/1. With logw, the output also goes to that log,
// whatever the client's ends are (none at all included).
func newPipeIO(ctx context.Context, id, ns string, s Stdio, uid, gid int, r Reaper, logw *jsonfile.Writer) (_ *pipeIO, err error) {
	p := &pipeIO{log: logw}
	defer func() {
		if err != nil {
			p.closeProc()
			p.Close()
		}
	}()
	u, err := url.Parse(s.Stdout)
	if err != nil {
		return nil, fmt.Errorf("%w: stdout %q: %w", errdefs.ErrInvalidArgument, s.Stdout, err)
	}
	switch u.Scheme {
	case "", "fifo":
		err = p.copyTo(ctx, s, uid, gid)
	case "file":
		err = p.copyToFile(ctx, u.Path, s.Stdin, uid, gid)
	case "binary", "binary-v2":
		err = p.startLogger(ctx, id, ns, u, uid, gid, r)
	default:
		err = fmt.Errorf("%w: stdout %q: unknown scheme %q", errdefs.ErrInvalidArgument, s.Stdout, u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	for i, f := range p.proc {
		if f == nil {
			if p.proc[i], err = devNull(i == 0); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// copyTo wires each stream to its fifo (or plain file); "" is /dev/null.
func (p *pipeIO) copyTo(ctx context.Context, s Stdio, uid, gid int) error {
	if err := p.copyIn(ctx, s.Stdin, uid, gid); err != nil {
		return err
	}
	for i, path := range []string{s.Stdout, s.Stderr} {
		if path == "" {
			if p.log != nil {
				if err := p.copyOut(ctx, i+1, nil, uid, gid); err != nil {
					return err
				}
			}
			continue
		}
		dst, err := openOutput(path)
		if err != nil {
			return err
		}
		if err := p.copyOut(ctx, i+1, dst, uid, gid); err != nil {
			dst.Close()
			return err
		}
	}
	return nil
}

// copyToFile appends stdout and stderr to one log file (a file:// URI).
func (p *pipeIO) copyToFile(ctx context.Context, path, stdin string, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	if err := p.copyIn(ctx, stdin, uid, gid); err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		// One descriptor per stream: O_APPEND keeps their writes whole,
		// and each copy closes its own.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("log file %s: %w", path, err)
		}
		if err := p.copyOut(ctx, i, f, uid, gid); err != nil {
			f.Close()
			return err
		}
	}
	return nil
}

// copyOut makes the pipe for stream i (1 or 2) and copies it to dst
// (nil: none) and the log until every writer in the container has closed
// it.
func (p *pipeIO) copyOut(ctx context.Context, i int, dst io.WriteCloser, uid, gid int) error {
	r, w, err := pipe(uid, gid)
	if err != nil {
		return err
	}
	p.proc[i] = w
	name := streamNames[i]
	var logs *jsonfile.Stream
	if p.log != nil {
		logs = p.log.Stream(name)
	}
	var to io.Writer
	if dst != nil {
		to = dst
	}
	p.copiers.Add(1)
	go func() {
		defer p.copiers.Done()
		if err := copyOutput(ctx, name, r, to, logs); err != nil {
			log.G(ctx).WithError(err).Warn("copy output")
		}
		r.Close()
		if dst != nil {
			dst.Close()
		}
	}()
	return nil
}

// streamNames are the log's names of the streams by fd.
var streamNames = [3]string{"stdin", "stdout", "stderr"}

// copyIn copies the client's stdin fifo into the process's stdin pipe and
// closes the pipe at the fifo's EOF: that is how a process sees stdin end.
func (p *pipeIO) copyIn(ctx context.Context, path string, uid, gid int) error {
	if path == "" {
		return nil
	}
	// Non-blocking opens: the reader first, so that the shim's own
	// writer (which needs a reader) opens at once, whether or not the
	// client has opened its end yet.
	src, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin %s: %w", path, err)
	}
	hold, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		src.Close()
		return fmt.Errorf("open stdin %s: %w", path, err)
	}
	r, w, err := pipe(uid, gid)
	if err != nil {
		src.Close()
		hold.Close()
		return err
	}
	p.proc[0], p.stdinHold = r, hold
	p.closers = append(p.closers, src)
	go func() {
		buf := make([]byte, 32<<10)
		if _, err := io.CopyBuffer(w, src, buf); err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EPIPE) {
			log.G(ctx).WithError(err).Debug("copy stdin")
		}
		w.Close()
		src.Close()
	}()
	return nil
}

// openOutput opens the client's end of an output stream: a fifo, or a
// plain file a client asked to have the stream appended to.
func openOutput(path string) (io.WriteCloser, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open output %s: %w", path, err)
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("open output %s: %w", path, err)
		}
		return f, nil
	}
	// The shim keeps a reader of its own, as containerd's runc shim does:
	// the open for writing cannot block on a client that is not there,
	// and a client that goes away and comes back (containerd restarts)
	// does not make the container's writes fail with EPIPE.
	rd, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open output %s: %w", path, err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("open output %s: %w", path, err)
	}
	return &fifoWriter{File: w, reader: rd}, nil
}

// fifoWriter is the shim's writer on an output fifo with its own reader.
type fifoWriter struct {
	*os.File
	reader *os.File
}

func (f *fifoWriter) Close() error {
	err := f.File.Close()
	f.reader.Close()
	return err
}

// pipe makes a pipe, owned by uid:gid unless they are -1.
func pipe(uid, gid int) (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create pipe: %w", err)
	}
	if uid == -1 && gid == -1 {
		return r, w, nil
	}
	for _, f := range []*os.File{r, w} {
		if err := fchown(f, uid, gid); err != nil {
			r.Close()
			w.Close()
			return nil, nil, fmt.Errorf("chown pipe to %d:%d: %w", uid, gid, err)
		}
	}
	return r, w, nil
}

// fchown changes a file's owner without f.Fd(), which would take the
// file out of non-blocking mode.
func fchown(f *os.File, uid, gid int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.Fchown(int(fd), uid, gid) }); err != nil {
		return err
	}
	return cerr
}

func devNull(read bool) (*os.File, error) {
	flag := os.O_WRONLY
	if read {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(os.DevNull, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	return f, nil
}

// Files are the process's stdin, stdout and stderr.
func (p *pipeIO) Files() (stdin, stdout, stderr *os.File) { return p.proc[0], p.proc[1], p.proc[2] }

// Started closes the shim's copies of the process's ends: from now on
// only the container holds them, and an output copy ends when the last
// process in the container that holds it is gone.
func (p *pipeIO) Started() { p.closeProc() }

func (p *pipeIO) closeProc() {
	for i, f := range p.proc {
		if f != nil {
			f.Close()
			p.proc[i] = nil
		}
	}
}

// CloseStdin lets the process's stdin reach EOF once the client's
// writer is closed too.
func (p *pipeIO) CloseStdin() error {
	if p.stdinHold == nil {
		return nil
	}
	err := p.stdinHold.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// Wait waits until the output has been copied out, or ctx ends.
func (p *pipeIO) Wait(ctx context.Context) error {
	return waitGroup(ctx, &p.copiers)
}

// Close releases everything: the stdin fifo and the logging binary.
func (p *pipeIO) Close() error {
	p.closeOnce.Do(func() {
		p.CloseStdin()
		for _, c := range p.closers {
			c.Close()
		}
		if p.logger != nil {
			p.logger.stop()
		}
	})
	return nil
}

// waitGroup waits for wg or ctx, whichever is first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
