package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often a wait for containerd looks again.
const pollInterval = 20 * time.Millisecond

// writePid records containerd's pid, atomically (a reader never sees a
// half-written file).
func writePid(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// readPid reads a pid file; a missing file is pid 0 and no error.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q, not a pid", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// runningPid is the pid of the managed containerd when it runs: the pid
// file's process, if it is alive and is a containerd started with our
// config (a pid the kernel has since given to another process is not).
// A stale or unreadable pid file is removed; 0 means not running.
func (m *Managed) runningPid() (int, error) {
	pid, err := readPid(m.PidPath())
	if err != nil || pid == 0 {
		if err != nil {
			os.Remove(m.PidPath())
		}
		return 0, nil
	}
	if alive(pid) && startedWith(pid, m.ConfigPath()) {
		return pid, nil
	}
	os.Remove(m.PidPath())
	return 0, nil
}

// startedWith says whether process pid's command line has "--config path".
func startedWith(pid int, path string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--config" && args[i+1] == path {
			return true
		}
	}
	return false
}

// alive says whether pid is a process that has not exited (a zombie, dead
// but not yet reaped by its parent, counts as exited).
func alive(pid int) bool {
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and
	// may itself hold spaces or parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// waitGone polls until pid has exited, for at most limit.
func waitGone(ctx context.Context, pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for alive(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// answers says whether something accepts connections on the unix socket.
func answers(ctx context.Context, socket string) bool {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// waitAnswer polls the socket until it accepts a connection, for at most
// limit, and gives up early when running says the process has gone.
func waitAnswer(ctx context.Context, socket string, limit time.Duration, running func() bool) error {
	deadline := time.Now().Add(limit)
	for !answers(ctx, socket) {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case !running():
			return errors.New("containerd exited")
		case time.Now().After(deadline):
			return fmt.Errorf("no answer within %s", limit)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// signal sends sig to pid; a process already gone is no error.
func signal(pid int, sig syscall.Signal) error {
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("send %s to containerd (pid %d): %w", unix.SignalName(sig), pid, err)
	}
	return nil
}
