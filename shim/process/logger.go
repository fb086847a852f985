package process

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/containerd/log"
)

// loggerStopTimeout is how long a logging binary gets to flush after
// SIGTERM before it is killed (containerd's runc shim gives it 12s).
const loggerStopTimeout = 12 * time.Second

// loggerProc is a logging driver (a binary:// stdout URI): a program that
// reads the process's stdout and stderr from fds 3 and 4, and says it is
// ready by closing fd 5 (binary://) or by writing a byte to it first
// (binary-v2://). It is the shim's child, reaped through the Reaper.
type loggerProc struct {
	proc   *os.Process
	exited chan struct{}
}

// startLogger starts the logging binary named by u, with the query's
// key=value pairs as arguments, as containerd's runc shim does.
func (p *pipeIO) startLogger(ctx context.Context, id, ns string, u *url.URL, uid, gid int, r Reaper) error {
	var closeAfter []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	var readEnds []*os.File
	for i := 1; i <= 2; i++ {
		rd, w, err := pipe(uid, gid)
		if err != nil {
			return err
		}
		readEnds = append(readEnds, rd)
		closeAfter = append(closeAfter, rd)
		if p.log != nil {
			// The container's log too: the process writes to a pipe of
			// the shim's, which copies to the log and the driver. The
			// driver is waited for, however slow (it is not a client
			// that may have gone: blockingWriter hides the deadline).
			if err := p.copyOut(ctx, i, blockingWriter{w}, uid, gid); err != nil {
				w.Close()
				return err
			}
			continue
		}
		p.proc[i] = w
	}
	ready, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("logging binary: %w", err)
	}
	defer ready.Close()
	closeAfter = append(closeAfter, readyW)

	var args []string
	for k, vs := range u.Query() {
		args = append(args, k)
		if len(vs) > 0 {
			args = append(args, vs[0])
		}
	}
	cmd := exec.Command(u.Path, args...)
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + ns}
	cmd.ExtraFiles = []*os.File{readEnds[0], readEnds[1], readyW}
	release := r.Hold()
	err = cmd.Start()
	if err == nil {
		l := &loggerProc{proc: cmd.Process, exited: make(chan struct{})}
		r.Track(cmd.Process.Pid, func(Exit) { close(l.exited) })
		p.logger = l
	}
	release()
	if err != nil {
		return fmt.Errorf("start logging binary %s: %w", u.Path, err)
	}
	readyW.Close()
	closeAfter = closeAfter[:len(closeAfter)-1]
	b := make([]byte, 1)
	n, err := ready.Read(b)
	if err != nil && err != io.EOF {
		return fmt.Errorf("logging binary %s: %w", u.Path, err)
	}
	if u.Scheme == "binary-v2" && n == 0 {
		return fmt.Errorf("logging binary %s exited or closed fd 5 without saying it is ready", u.Path)
	}
	log.G(ctx).WithField("binary", u.Path).Debug("logging binary ready")
	return nil
}

// stop asks the logging binary to finish (SIGTERM), and kills it if it
// does not in time.
func (l *loggerProc) stop() {
	if err := l.proc.Signal(syscall.SIGTERM); err != nil {
		return // already gone
	}
	select {
	case <-l.exited:
	case <-time.After(loggerStopTimeout):
		l.proc.Kill()
	}
}

// blockingWriter hides its file's write deadline, so that copyOutput
// waits for it as long as it takes.
type blockingWriter struct{ io.WriteCloser }
