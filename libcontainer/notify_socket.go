package libcontainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sd_notify passthrough, as runc does it. When the runtime runs with
// NOTIFY_SOCKET (a systemd Type=notify service), the container gets a
// socket of its own instead of the host's, which it could not reach:
//
//   - create: <state>/notify, a directory bind-mounted (read-only) at
//     /run/notify, and NOTIFY_SOCKET=/run/notify/notify.sock in the
//     process's environment;
//   - start (and run): bind notify.sock before the program runs, wait for
//     a READY= from the container (or for its init to exit), forward it to
//     the host's socket followed by MAINPID and a barrier, and only then
//     return, so that systemd sees the service ready when the container
//     says so.
const (
	notifyDir         = "notify"
	notifySockName    = "notify.sock"
	notifyInContainer = "/run/notify"
	// notifyBarrierWait is how long the host's manager gets to take our
	// messages in (runc's value); a manager without BARRIER support never
	// answers, so this is a warning, not an error.
	notifyBarrierWait = 30 * time.Second
)

// addNotifyMount gives the container its notify socket directory and
// returns the mount the parent makes for it: a detached bind, since init
// in a user namespace cannot reach into the state directory.
func (b *builder) addNotifyMount() (*mountSource, error) {
	dir := filepath.Join(b.dir, notifyDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("notify socket directory for %s: %w", b.opts.ID, err)
	}
	b.spec.Mounts = append(b.spec.Mounts, specs.Mount{
		Destination: notifyInContainer, Source: dir, Type: "bind",
		Options: []string{"bind", "nosuid", "noexec", "nodev", "ro"},
	})
	b.spec.Process.Env = setEnv(b.spec.Process.Env, "NOTIFY_SOCKET", notifyInContainer+"/"+notifySockName)
	return &mountSource{index: len(b.spec.Mounts) - 1, dest: notifyInContainer, source: dir}, nil
}

// setEnv sets key in env, replacing what is there: a duplicate would
// leave it to the program's getenv which one counts.
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return append(out, key+"="+value)
}

// NotifyRelay forwards a container's sd_notify messages to the host's
// NOTIFY_SOCKET. A nil *NotifyRelay does nothing.
type NotifyRelay struct {
	c    *Container
	conn *net.UnixConn
	host string
	warn io.Writer
}

// StartNotify is Start for a caller that relays sd_notify messages: host
// is its NOTIFY_SOCKET. When host is set and the container was created
// with one, the container's socket is bound before its program runs and
// the relay is returned; otherwise it is plain Start and the relay nil.
// Warnings (poststart hooks, the barrier) go to warn.
func (c *Container) StartNotify(ctx context.Context, warn io.Writer, host string) (*NotifyRelay, error) {
	r, err := c.listenNotify(host, warn)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx, warn); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (c *Container) listenNotify(host string, warn io.Writer) (*NotifyRelay, error) {
	dir := filepath.Join(c.dir, notifyDir)
	if host == "" {
		return nil, nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil // created without NOTIFY_SOCKET
	}
	path := filepath.Join(dir, notifySockName)
	os.Remove(path) // left by a start that failed
	conn, err := bindUnixgram(dir, notifySockName)
	if err != nil {
		return nil, fmt.Errorf("notify socket of %s: %w", c.state.ID, err)
	}
	// The container's user may be anyone, and sending needs write
	// permission on the socket.
	if err := os.Chmod(path, 0o777); err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket of %s: %w", c.state.ID, err)
	}
	return &NotifyRelay{c: c, conn: conn, host: host, warn: warn}, nil
}

// bindUnixgram binds a datagram socket at dir/name through a handle on
// dir: a socket address holds 107 bytes, which a state root and a long
// container id (containerd's are 64 characters) can exceed.
func bindUnixgram(dir, name string) (*net.UnixConn, error) {
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	short := "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/" + name
	return net.ListenUnixgram("unixgram", &net.UnixAddr{Name: short, Net: "unixgram"})
}

// Close stops relaying.
func (r *NotifyRelay) Close() error {
	if r == nil {
		return nil
	}
	return r.conn.Close()
}

// WaitReady forwards what the container sends until a message says
// READY=, which it follows with MAINPID=mainPid (the pid the host's
// manager should watch: the container's init, or the runtime itself when
// it stays in the foreground) and a barrier. It returns then, or once the
// container's init has exited, the relay is closed or ctx is done.
func (r *NotifyRelay) WaitReady(ctx context.Context, mainPid int) error {
	if r == nil {
		return nil
	}
	host, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: r.host, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("relay sd_notify of %s: host NOTIFY_SOCKET: %w", r.c.state.ID, err)
	}
	defer host.Close()
	buf := make([]byte, 4096)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Wake up now and then to notice an init that died silent.
		r.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := r.conn.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if !r.c.state.alive() {
				return nil
			}
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return nil // Close: the caller is done relaying
		}
		if err != nil {
			return fmt.Errorf("relay sd_notify of %s: %w", r.c.state.ID, err)
		}
		out, ready := filterNotify(buf[:n])
		if len(out) > 0 {
			if _, err := host.Write(out); err != nil {
				return fmt.Errorf("relay sd_notify of %s: %w", r.c.state.ID, err)
			}
		}
		if ready {
			return r.readyDone(host, mainPid)
		}
	}
}

// readyDone tells the host's manager which pid to watch, and waits until
// it has read our messages: once the runtime exits, the manager could no
// longer tell which service they came from.
func (r *NotifyRelay) readyDone(host *net.UnixConn, mainPid int) error {
	if _, err := host.Write([]byte("MAINPID=" + strconv.Itoa(mainPid) + "\n")); err != nil {
		return fmt.Errorf("relay sd_notify of %s: %w", r.c.state.ID, err)
	}
	if err := notifyBarrier(host, notifyBarrierWait); err != nil {
		fmt.Fprintf(r.warn, "warning: sd_notify barrier for %s: %v\n", r.c.state.ID, err)
	}
	return nil
}

// notifyKeysDropped are the sd_notify keys that only mean something
// coming from the container itself: its pids and fds (the fds do not
// survive the relay).
var notifyKeysDropped = []string{"MAINPID", "BARRIER", "FDSTORE", "FDSTOREREMOVE", "FDNAME", "FDPOLL"}

// filterNotify returns the lines of one datagram to forward, and whether
// it says READY=.
func filterNotify(msg []byte) ([]byte, bool) {
	var out [][]byte
	ready := false
	for _, line := range bytes.Split(msg, []byte{'\n'}) {
		key, _, ok := bytes.Cut(line, []byte{'='})
		if !ok || isDroppedKey(string(key)) {
			continue
		}
		ready = ready || string(key) == "READY"
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, ready
	}
	return append(bytes.Join(out, []byte{'\n'}), '\n'), ready
}

func isDroppedKey(k string) bool {
	for _, d := range notifyKeysDropped {
		if k == d {
			return true
		}
	}
	return false
}

// notifyBarrier is sd_notify_barrier(3): send BARRIER=1 with the write
// end of a pipe, which the manager closes once it has processed all that
// came before.
func notifyBarrier(host *net.UnixConn, wait time.Duration) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	// Not WriteMsgUnix: Go refuses it on a connected datagram socket.
	raw, err := host.SyscallConn()
	if err != nil {
		pw.Close()
		return err
	}
	cerr := raw.Write(func(fd uintptr) bool {
		err = unix.Sendmsg(int(fd), []byte("BARRIER=1\n"), unix.UnixRights(int(pw.Fd())), nil, 0)
		return !errors.Is(err, unix.EAGAIN)
	})
	pw.Close()
	if err = errors.Join(cerr, err); err != nil {
		return fmt.Errorf("send BARRIER=1: %w", err)
	}
	pr.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	switch n, err := pr.Read(b[:]); {
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no answer after %v (the manager may not support barriers)", wait)
	case err != nil:
		return err
	default:
		return fmt.Errorf("unexpected %d bytes on the barrier pipe", n)
	}
}
