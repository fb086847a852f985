package seccomp

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sendTimeout bounds the connect and the send: an agent that accepts
// nothing must fail create rather than hang it.
const sendTimeout = 30 * time.Second

// SendNotifyFd connects to listenerPath (a SOCK_STREAM unix socket, as
// config-linux.md requires) and sends, in one message, the
// ContainerProcessState JSON with fd attached as SCM_RIGHTS; then it closes
// the connection, which the spec says carries exactly one state. The
// caller fills st's pid, metadata (linux.seccomp.listenerMetadata) and
// state; ociVersion defaults to specs.Version and fds is always
// ["seccompFd"], naming the one fd sent. st itself is not modified.
//
// fd stays open: the caller closes it once it no longer needs it.
func SendNotifyFd(listenerPath string, fd int, st *specs.ContainerProcessState) error {
	conn, err := DialListener(listenerPath)
	if err != nil {
		return err
	}
	defer conn.Close()
	return SendNotify(conn, fd, st)
}

// DialListener connects to the seccomp agent at listenerPath. A container's
// init dials before pivot_root, while the host path is still in reach, and
// sends on the connection once the filter is loaded.
func DialListener(listenerPath string) (*net.UnixConn, error) {
	d := net.Dialer{Timeout: sendTimeout}
	c, err := d.Dial("unix", listenerPath)
	if err != nil {
		return nil, fmt.Errorf("connect to seccomp agent at listenerPath %s: %w", listenerPath, err)
	}
	return c.(*net.UnixConn), nil
}

// SendNotify is SendNotifyFd on a connection from DialListener.
func SendNotify(conn *net.UnixConn, fd int, st *specs.ContainerProcessState) error {
	where := conn.RemoteAddr().String()
	if st == nil {
		return fmt.Errorf("send seccomp fd to %s: no container process state", where)
	}
	msg := *st
	if msg.Version == "" {
		msg.Version = specs.Version
	}
	msg.Fds = []string{specs.SeccompFdName}
	b, err := json.Marshal(&msg)
	if err != nil {
		return fmt.Errorf("send seccomp fd to %s: encode state: %w", where, err)
	}
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("send seccomp fd to %s: %w", where, err)
	}
	n, _, err := conn.WriteMsgUnix(b, unix.UnixRights(fd), nil)
	if err != nil {
		return fmt.Errorf("send seccomp fd to %s: %w", where, err)
	}
	// A stream socket may take part of the state; the fd went with the
	// first byte, the rest follows as plain data.
	if n < len(b) {
		if _, err := conn.Write(b[n:]); err != nil {
			return fmt.Errorf("send seccomp state to %s: %w", where, err)
		}
	}
	return nil
}
