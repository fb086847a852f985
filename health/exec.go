package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// outputGrace bounds the wait for a check's output after its process
// exited: a background process it left may hold the output open.
const outputGrace = time.Second

// execCheck runs one check: process (the container's process settings
// with the check's command) as an exec of task, its stdout and stderr
// through fifos in fifoDir, the first MaxOutputLen bytes kept. A check
// still running after timeout is killed (docker: exit code -1 and
// "Health check exceeded timeout"). When stop ends first, the exec is
// killed and false returned: no result. The exec is always deleted and
// its fifos removed before execCheck returns, except when life (the
// monitor's context) ends first: then its fifos are.
//
// An exec that cannot start is a failed check, as in docker: -1 and the
// error.
func execCheck(stop, life context.Context, task containerd.Task, process specs.Process, timeout time.Duration, fifoDir string) (Result, bool) {
	r := Result{Start: time.Now().UTC()}
	fail := func(err error) (Result, bool) {
		r.ExitCode, r.Output, r.End = -1, err.Error(), time.Now().UTC()
		return r, stop.Err() == nil
	}
	id, err := execID()
	if err != nil {
		return fail(err)
	}
	out := &limitedBuffer{}
	proc, err := task.Exec(stop, id, &process, cio.NewCreator(cio.WithStreams(nil, out, out), cio.WithFIFODir(fifoDir)))
	if err != nil {
		return fail(fmt.Errorf("health check exec: %w", err))
	}
	// The wait outlives stop: a stopped check is killed, then waited for
	// and deleted.
	waitCtx, cancelWait := context.WithCancel(life)
	defer cancelWait()
	exitC, err := proc.Wait(waitCtx)
	if err != nil {
		release(life, proc)
		return fail(fmt.Errorf("health check exec: wait: %w", err))
	}
	var status containerd.ExitStatus
	timedOut, stopped := false, false
	if err := proc.Start(stop); err != nil {
		if stop.Err() == nil {
			release(life, proc)
			return fail(err)
		}
		// Stopped while the shim started it (the task was being
		// paused): it may start yet, so it is killed and waited for.
		stopped = true
	} else {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case status = <-exitC:
		case <-timer.C:
			timedOut = true
		case <-stop.Done():
			stopped = true
		}
	}
	if timedOut || stopped {
		if err := proc.Kill(life, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
			log.G(life).WithError(err).Warn("berth health: kill a check")
		}
		status = <-exitC
	}
	waitOutput(proc)
	release(life, proc)
	r.End = time.Now().UTC()
	switch {
	case stopped:
		return r, false
	case timedOut:
		r.ExitCode = -1
		r.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		if o := out.String(); o != "" {
			r.Output += ": " + o
		}
	case status.Error() != nil:
		return fail(fmt.Errorf("health check exec: wait: %w", status.Error()))
	default:
		r.ExitCode, r.Output = int(status.ExitCode()), out.String()
	}
	return r, true
}

// waitOutput waits for the copies of proc's output to end, at most
// outputGrace.
func waitOutput(proc containerd.Process) {
	io := proc.IO()
	if io == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		io.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(outputGrace):
		io.Cancel() // closes the fifos' read ends: the copies end
		<-done
	}
}

// release deletes the exec proc (which closes and removes its fifos);
// when containerd cannot (the task is gone, or life ended), the fifos go
// anyway.
func release(life context.Context, proc containerd.Process) {
	if _, err := proc.Delete(context.WithoutCancel(life)); err == nil {
		return
	} else if !errdefs.IsNotFound(err) {
		log.G(life).WithError(err).WithField("exec", proc.ID()).Warn("berth health: delete a check's exec")
	}
	if io := proc.IO(); io != nil {
		io.Cancel()
		io.Wait()
		io.Close()
	}
}

// execID is a check's exec ID, unique in its task.
func execID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("health check exec ID: %w", err)
	}
	return "health-" + hex.EncodeToString(b), nil
}

// limitedBuffer keeps the first MaxOutputLen bytes written to it, as
// docker's does, and notes that more came.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(MaxOutputLen-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

// String is the output kept, "..." after it when some was cut.
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}
