package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// killWait bounds the wait for a containerd that was sent SIGKILL.
const killWait = 5 * time.Second

// Status is the managed containerd's state, as `berth system status`
// shows it.
type Status struct {
	Running bool
	Pid     int
	// Answers says whether its socket accepts connections.
	Answers bool
	Socket  string
	Root    string
	State   string
	Log     string
	Config  string
}

// Status reports whether the managed containerd runs.
func (m *Managed) Status(ctx context.Context) (Status, error) {
	st := Status{Socket: m.cfg.Socket, Root: m.cfg.Root, State: m.cfg.State, Log: m.LogPath(), Config: m.ConfigPath()}
	pid, err := m.runningPid()
	if err != nil {
		return st, err
	}
	st.Pid, st.Running = pid, pid > 0
	st.Answers = st.Running && answers(ctx, m.cfg.Socket)
	return st, nil
}

// Stop stops the managed containerd, by the pid it recorded: SIGTERM,
// then SIGKILL when it has not exited within the configured stop timeout.
// It returns the pid it stopped, 0 when none ran. Its shims, and their
// containers, keep running, as they do when containerd restarts.
func (m *Managed) Stop(ctx context.Context) (int, error) {
	if _, err := os.Stat(m.cfg.State); os.IsNotExist(err) {
		return 0, nil // never started: nothing to lock or stop
	}
	release, err := m.lock()
	if err != nil {
		return 0, err
	}
	defer release()
	pid, err := m.runningPid()
	if err != nil || pid == 0 {
		return 0, err
	}
	if err := signal(pid, unix.SIGTERM); err != nil {
		return pid, err
	}
	if !waitGone(ctx, pid, time.Duration(m.cfg.StopTimeout)) {
		if err := signal(pid, unix.SIGKILL); err != nil {
			return pid, err
		}
		if !waitGone(ctx, pid, killWait) {
			return pid, fmt.Errorf("containerd (pid %d) still runs %s after SIGKILL", pid, killWait)
		}
	}
	// containerd removes its sockets when it exits cleanly, but not
	// after SIGKILL; a stale socket would look like one to connect to.
	for _, p := range []string{m.PidPath(), m.cfg.Socket, m.cfg.Socket + ".ttrpc"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return pid, fmt.Errorf("clean up after containerd: %w", err)
		}
	}
	return pid, nil
}
