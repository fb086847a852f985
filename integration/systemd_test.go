package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runEnv runs berth-runtime through a shell that exports env and then
// execs it, so that env may use $$: the runtime's own pid.
func (r *rt) runEnv(env string, extra []*os.File, args ...string) result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := "export " + env + `; exec "$@"`
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "sh", runtimeBin, "--root", r.root}, args...)...)
	out, errf := tempFile(r.t), tempFile(r.t)
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = out, errf, extra
	err := cmd.Run()
	if cmd.ProcessState == nil {
		r.t.Fatalf("berth-runtime %v: %v", args, err)
	}
	return result{stdout: readAll(out), stderr: readAll(errf), code: cmd.ProcessState.ExitCode()}
}

func fileWith(t *testing.T, text string) *os.File {
	f := tempFile(t)
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 0)
	return f
}

// Socket activation: with LISTEN_PID naming the runtime, its LISTEN_FDS
// fds reach the container at 3.., before the --preserve-fds ones, and the
// program is told LISTEN_FDS=N, LISTEN_PID=1, as runc does.
func TestListenFdsPassThrough(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "sh", "-c", `echo "fds=$LISTEN_FDS pid=$LISTEN_PID"; cat <&3; cat <&4; cat <&5 2>/dev/null || echo "no fd 5"`)
	extra := []*os.File{fileWith(t, "listen\n"), fileWith(t, "preserved\n")}
	res := r.runEnv("LISTEN_PID=$$ LISTEN_FDS=1", extra, "run", "--preserve-fds", "1", "-b", b, newID(t))
	if want := "fds=1 pid=1\nlisten\npreserved\nno fd 5\n"; res.code != 0 || res.stdout != want {
		t.Fatalf("exit %d, out %q (want %q), err %q", res.code, res.stdout, want, res.stderr)
	}
}

// LISTEN_FDS meant for another process (an activated ancestor's) passes
// nothing: the fds are not the runtime's to give.
func TestListenFdsOfAnotherProcess(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "sh", "-c", `echo "fds=$LISTEN_FDS"; cat <&3 2>/dev/null || echo "no fd 3"`)
	res := r.runEnv("LISTEN_PID=1 LISTEN_FDS=1", []*os.File{fileWith(t, "listen\n")}, "run", "-b", b, newID(t))
	if want := "fds=\nno fd 3\n"; res.code != 0 || res.stdout != want {
		t.Fatalf("exit %d, out %q (want %q), err %q", res.code, res.stdout, want, res.stderr)
	}
}

// notifyHost is the test's stand-in for systemd: it records what arrives
// on its NOTIFY_SOCKET, and answers barriers by closing their fd.
type notifyHost struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func newNotifyHost(t *testing.T) *notifyHost {
	dir := t.TempDir()
	h := &notifyHost{path: filepath.Join(dir, "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: h.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	h.conn = conn
	t.Cleanup(func() { conn.Close() })
	go h.serve()
	return h
}

func (h *notifyHost) serve() {
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	for {
		n, oobn, _, _, err := h.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		// Recorded before the barrier is answered: the runtime returns
		// right after.
		h.mu.Lock()
		h.msgs, h.at = append(h.msgs, string(buf[:n])), append(h.at, time.Now())
		h.mu.Unlock()
		if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range cmsgs {
				fds, _ := unix.ParseUnixRights(&c)
				for _, fd := range fds {
					unix.Close(fd) // the barrier's answer
				}
			}
		}
	}
}

func (h *notifyHost) received() ([]string, []time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...), append([]time.Time(nil), h.at...)
}

// sdnotifyBundle is a busybox bundle with /bin/sdnotify, built from
// testdata: busybox cannot send unix datagrams.
func sdnotifyBundle(t *testing.T, edit func(*specs.Spec), args ...string) string {
	b := busybox(t, edit, args...)
	cmd := exec.Command("go", "build", "-o", filepath.Join(b, "rootfs/bin/sdnotify"), "./testdata/sdnotify")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sdnotify: %v\n%s", err, out)
	}
	openToMappedRoot(t, b)
	// A user namespace's root cannot make the mount point in a rootfs
	// that is host root's (an image for one would be chowned, or idmapped).
	if err := os.MkdirAll(filepath.Join(b, "rootfs/run/notify"), 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// NOTIFY_SOCKET, as runc: the container gets its own socket at
// /run/notify/notify.sock; `start` (and `run -d`) returns only once the
// container said READY=1, after forwarding its message with MAINPID set
// to the container's init, then a barrier.
func TestNotifySocket(t *testing.T) {
	const delay = 300 * time.Millisecond
	script := fmt.Sprintf(`sleep %.1f; sdnotify 'STATUS=up\nMAINPID=1\nREADY=1'; exec sleep 300`, delay.Seconds())
	for _, tc := range []struct {
		name   string
		userns bool
		run    bool // run -d instead of create + start
	}{
		{name: "create-start"},
		{name: "run-detached", run: true},
		{name: "userns", userns: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRT(t)
			host := newNotifyHost(t)
			var edit func(*specs.Spec)
			if tc.userns {
				edit = withUserNS
			}
			b := sdnotifyBundle(t, edit, "sh", "-c", script)
			id, env := newID(t), "NOTIFY_SOCKET="+host.path
			began := time.Now()
			var res result
			if tc.run {
				res = r.runEnv(env, nil, "run", "-d", "-b", b, id)
				checkRes(t, "run -d", res)
			} else {
				checkRes(t, "create", r.runEnv(env, nil, "create", "-b", b, id))
				began = time.Now()
				res = r.runEnv(env, nil, "start", id)
				checkRes(t, "start", res)
			}
			returned := time.Now()
			msgs, at := host.received()
			want := []string{"STATUS=up\nREADY=1\n", fmt.Sprintf("MAINPID=%d\n", r.state(id).Pid), "BARRIER=1\n"}
			if strings.Contains(res.stderr, "warning") {
				t.Errorf("stderr: %s", res.stderr)
			}
			if strings.Join(msgs, "|") != strings.Join(want, "|") {
				t.Fatalf("host socket got %q, want %q (stderr %q)", msgs, want, res.stderr)
			}
			if returned.Sub(began) < delay || at[0].After(returned) {
				t.Fatalf("returned %v after starting, message at %v: want the return after READY=1", returned.Sub(began), at[0].Sub(began))
			}
			if env := r.must("exec", id, "cat", "/proc/1/environ"); !strings.Contains(env, "NOTIFY_SOCKET=/run/notify/notify.sock\x00") {
				t.Fatalf("container's environment %q lacks its NOTIFY_SOCKET", env)
			}
		})
	}
}

// In the foreground, `run` is the process the host's manager watches: it
// forwards READY=1 with its own pid, and goes on to wait for the container.
func TestNotifySocketForegroundRun(t *testing.T) {
	r := newRT(t)
	host := newNotifyHost(t)
	b := sdnotifyBundle(t, nil, "sh", "-c", "sleep 0.2; sdnotify READY=1; sleep 0.2; exit 3")
	cmd := exec.Command(runtimeBin, "--root", r.root, "run", "-b", b, newID(t))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+host.path)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("run: %v: %s", err, out)
	}
	msgs, _ := host.received()
	want := []string{"READY=1\n", fmt.Sprintf("MAINPID=%d\n", cmd.Process.Pid), "BARRIER=1\n"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") || len(out) != 0 {
		t.Fatalf("host socket got %q, want %q; output %q", msgs, want, out)
	}
}

// A container that exits without READY=1 does not hold `start` up.
func TestNotifySocketInitExits(t *testing.T) {
	r := newRT(t)
	host := newNotifyHost(t)
	b := sdnotifyBundle(t, nil, "sh", "-c", "sleep 0.2")
	id, env := newID(t), "NOTIFY_SOCKET="+host.path
	checkRes(t, "create", r.runEnv(env, nil, "create", "-b", b, id))
	checkRes(t, "start", r.runEnv(env, nil, "start", id))
	if msgs, _ := host.received(); len(msgs) != 0 {
		t.Fatalf("host socket got %q from a container that said nothing", msgs)
	}
}

func checkRes(t *testing.T, what string, res result) {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("%s: exit %d: %s%s", what, res.code, res.stderr, res.stdout)
	}
}
