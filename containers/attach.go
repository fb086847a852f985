package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tasktypes "github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/logs"
	"github.com/berthrt/berth/restart"
)

// DefaultDetachKeys is docker's detach sequence, Ctrl-P Ctrl-Q.
var DefaultDetachKeys = []byte{0x10, 0x11}

// ParseDetachKeys reads --detach-keys as docker does: comma-separated
// keys, each a single character or ctrl-X (X a letter or one of @[\]^_).
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return DefaultDetachKeys, nil
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		if x, ok := strings.CutPrefix(k, "ctrl-"); ok && len(x) == 1 {
			c := x[0]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if (c >= 'a' && c <= 'z') || strings.IndexByte("@[\\]^_", c) >= 0 {
				keys = append(keys, c&0x1f)
				continue
			}
		} else if len(k) == 1 {
			keys = append(keys, k[0])
			continue
		}
		return nil, fmt.Errorf("invalid --detach-keys %q: want keys such as ctrl-p,ctrl-q: a character or ctrl-<letter or @[\\]^_>, comma-separated", s)
	}
	return keys, nil
}

// ErrDetached ends an attachment whose user typed the detach keys.
var ErrDetached = errors.New("detached")

// detachReader passes its reader's bytes on until the detach keys come,
// then ends with ErrDetached. A partial sequence is held back until it is
// known not to be one, as docker does.
type detachReader struct {
	r        io.Reader
	keys     []byte
	onDetach func()
	matched  int
	pending  []byte
	err      error // returned once pending is handed on
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 && d.err == nil {
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.err = ErrDetached
					if d.onDetach != nil {
						d.onDetach()
					}
					break
				}
				continue
			}
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.pending = append(d.pending, b)
		}
		if err != nil && d.err == nil {
			// At the end, a partial sequence is none.
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched, d.err = 0, err
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	if len(d.pending) == 0 && d.err != nil {
		return n, d.err
	}
	return n, nil
}

// NewDetachReader passes r's bytes on until the detach keys (empty:
// DefaultDetachKeys) come, then calls onDetach and ends with ErrDetached:
// the stdin of an attached `berth run -it`.
func NewDetachReader(r io.Reader, keys []byte, onDetach func()) io.Reader {
	if len(keys) == 0 {
		keys = DefaultDetachKeys
	}
	return &detachReader{r: r, keys: keys, onDetach: onDetach}
}

// Detached hands container id, whose attached client detached, to the
// restart monitor: with --rm (autoRemove) it removes the container when
// it exits, as for run -d --rm.
func Detached(ctx context.Context, client *containerd.Client, id string, autoRemove bool) error {
	if !autoRemove {
		return nil
	}
	c, err := client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("load container %s: %w", id, err)
	}
	return setLabels(ctx, c, map[string]string{restart.LabelAutoRemove: "true"})
}

// AttachOptions say how to attach to a container.
type AttachOptions struct {
	// Stdin, when set, goes to the container's stdin: a container
	// started with -i, detached (its stdin fifo, held by the shim).
	Stdin io.Reader
	// DetachKeys end the attachment (ErrDetached), leaving the container
	// running; empty: DefaultDetachKeys.
	DetachKeys []byte
	DataRoot   string
}

// Attach connects to running container c as `docker attach` does: its
// output from now on (read from its log, which the shim writes) goes to
// stdout and stderr, and opts.Stdin to its stdin, until the container
// exits for good (its exit code is returned) or the user types the
// detach keys (ErrDetached).
func Attach(ctx context.Context, client *containerd.Client, c containerd.Container, opts AttachOptions, stdout, stderr io.Writer) (int, error) {
	if _, running, err := runningTask(ctx, c); err != nil {
		return 0, err
	} else if !running {
		return 0, fmt.Errorf("You cannot attach to a stopped container, start it first: %s: %w", c.ID(), ErrNotRunning)
	}
	since := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Waited for from now: a --rm container is gone once it exits.
	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		code, err := Wait(ctx, client, c)
		exited <- exit{code, err}
	}()
	detached := make(chan error, 1)
	if opts.Stdin != nil {
		fifo, err := openStdin(ctx, client, c.ID())
		if err != nil {
			return 0, err
		}
		defer fifo.Close()
		keys := opts.DetachKeys
		go func() {
			_, err := io.Copy(fifo, NewDetachReader(opts.Stdin, keys, nil))
			if errors.Is(err, ErrDetached) {
				detached <- err
				cancel()
			}
		}()
	}
	// Since, not a tail of 0: what the container prints before the
	// follower has opened the log still shows.
	err := logs.ContainerLogs(ctx, client, c, logs.Options{Tail: -1, Since: since, Follow: true}, stdout, stderr)
	select {
	case err := <-detached:
		return 0, err
	default:
	}
	if err != nil {
		return 0, fmt.Errorf("attach to container %s: %w", c.ID(), err)
	}
	e := <-exited
	return e.code, e.err
}

// openStdin opens the stdin fifo of a container's task for writing: the
// one in its directory for run -d -i, else the fifo of the berth run -it
// that detached. The shim holds it open for the container.
func openStdin(ctx context.Context, client *containerd.Client, id string) (*os.File, error) {
	resp, err := client.TaskService().Get(ctx, &tasktypes.GetRequest{ContainerID: id})
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, errgrpc.ToNative(err))
	}
	path := resp.Process.GetStdin()
	if path == "" {
		return nil, fmt.Errorf("container %s has no stdin to attach to: run it with -i: %w", id, errdefs.ErrFailedPrecondition)
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("attach to the stdin of container %s (started with -i and -d?): %w", id, err)
	}
	// Blocking writes from here: the container reads at its pace.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach to the stdin of container %s: %w", id, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
