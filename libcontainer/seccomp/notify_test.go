package seccomp

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// agentGot is what the test's seccomp agent received on the listener.
type agentGot struct {
	state specs.ContainerProcessState
	fds   int
	err   error
}

// TestNotify plays the seccomp agent: the child sends the notify fd to the
// listenerPath with SendNotifyFd, then calls getppid twice; the agent
// answers the first with a value and the second with an errno, which is
// what the child's calls must return.
func TestNotify(t *testing.T) {
	needRoot(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan agentGot, 1)
	go func() { got <- agent(l) }()

	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock,
		ListenerMetadata: "berth-test-metadata",
		Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls:         []specs.LinuxSyscall{call(specs.ActNotify, "getppid")}}
	state := &specs.ContainerProcessState{Metadata: profile.ListenerMetadata, State: specs.State{
		Version: specs.Version, ID: "ctr-1", Status: specs.StateCreating, Bundle: "/bundle"}}
	run := runChild(t, childReq{Profile: profile, State: state,
		Probes: []probe{{Name: "getppid"}, {Name: "getppid"}}})
	res := run.mustResults(t, 2)

	a := <-got
	if a.err != nil {
		t.Fatalf("agent: %v", a.err)
	}
	if res[0].Errno != 0 || res[0].Ret != 4242 {
		t.Errorf("first getppid = %d, %v; want the agent's 4242", res[0].Ret, res[0].Errno)
	}
	if res[1].Errno != unix.EXDEV {
		t.Errorf("second getppid: errno %v, want the agent's EXDEV", res[1].Errno)
	}
	st := a.state
	if a.fds != 1 || st.Version != specs.Version || !slices.Equal(st.Fds, []string{specs.SeccompFdName}) ||
		st.Pid != run.state.Pid() || st.Metadata != "berth-test-metadata" || st.State.ID != "ctr-1" ||
		st.State.Status != specs.StateCreating {
		t.Errorf("agent got %d fds and state %+v; want 1 fd, fds [seccompFd], pid %d, the metadata and state",
			a.fds, st, run.state.Pid())
	}
}

// agent accepts one connection, decodes the state and the fd from it, and
// answers two notifications.
func agent(l *net.UnixListener) (got agentGot) {
	_ = l.SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		return agentGot{err: err}
	}
	defer conn.Close()
	fd, body, err := readFdAndBody(conn)
	if err != nil {
		return agentGot{err: err}
	}
	got.fds = 1
	defer unix.Close(fd)
	if err := json.Unmarshal(body, &got.state); err != nil {
		return agentGot{err: fmt.Errorf("state %q: %w", body, err)}
	}
	for _, resp := range []libseccomp.ScmpNotifResp{{Val: 4242}, {Error: int32(unix.EXDEV)}} {
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			return agentGot{err: fmt.Errorf("receive notification: %w", err)}
		}
		// The notification names the calling thread; the state, its process.
		name, _ := req.Data.Syscall.GetName()
		if tgid := tgidOf(int(req.Pid)); name != "getppid" || tgid != got.state.Pid {
			return agentGot{err: fmt.Errorf("notified of %s by pid %d, want getppid by %d", name, tgid, got.state.Pid)}
		}
		resp.ID = req.ID
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &resp); err != nil {
			return agentGot{err: fmt.Errorf("respond: %w", err)}
		}
	}
	return got
}

// tgidOf returns the process a thread belongs to, or -1.
func tgidOf(tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

// readFdAndBody reads the one message of the connection to its end: the
// spec's runtime closes the connection after sending the state.
func readFdAndBody(conn *net.UnixConn) (int, []byte, error) {
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, nil, fmt.Errorf("read state: %w", err)
	}
	rest, err := io.ReadAll(conn)
	if err != nil {
		return -1, nil, fmt.Errorf("read state: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, nil, fmt.Errorf("control messages %d: %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, nil, fmt.Errorf("got %d fds, want 1: %v", len(fds), err)
	}
	return fds[0], append(buf[:n], rest...), nil
}

func TestSendNotifyFdErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-agent.sock")
	err := SendNotifyFd(missing, int(os.Stdin.Fd()), &specs.ContainerProcessState{})
	if err == nil || !containsAll(err.Error(), "seccomp agent", missing) {
		t.Errorf("no listener: %v", err)
	}
	if err := SendNotifyFd(missing, 0, nil); err == nil {
		t.Error("nil state: no error")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
