package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer"
)

func TestConsoleSocket(t *testing.T) {
	r := newRT(t)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	ln := listenUnix(t, sockPath)
	master := make(chan *os.File, 1)
	go func() { master <- receivePty(t, ln) }()

	b := busybox(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	}, "sh", "-c", "tty; stty size; echo typed:$(head -n1); stty size")
	id := newID(t)
	r.must("create", "--console-socket", sockPath, "-b", b, id)
	var m *os.File
	select {
	case m = <-master:
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master arrived on the console socket")
	}
	if m == nil {
		t.Fatal("console socket: bad message")
	}
	defer m.Close()
	r.must("start", id)
	out := readUntil(t, m, "33 101")
	// The holder of the master resizes the terminal mid-session.
	unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 150})
	m.Write([]byte("hello\n"))
	out += readUntil(t, m, "50 150")
	for _, want := range []string{"/dev/pts/0", "33 101", "typed:hello", "50 150"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}
	r.waitStatus(id, "stopped")
	r.must("delete", id)

	// A terminal is for --console-socket only when process.terminal is set.
	b2 := busybox(t, nil, "true")
	if res := r.run("create", "--console-socket", sockPath, "-b", b2, newID(t)); res.code == 0 || !strings.Contains(res.stderr, "terminal") {
		t.Fatalf("--console-socket without terminal: exit %d %q", res.code, res.stderr)
	}
}

func listenUnix(t *testing.T, path string) *net.UnixListener {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// receivePty takes the pty master that arrives on the console socket.
func receivePty(t *testing.T, ln *net.UnixListener) *os.File {
	m, err := libcontainer.ReceivePty(ln)
	if err != nil {
		t.Log(err)
	}
	return m
}

func readUntil(t *testing.T, f *os.File, want string) string {
	var out strings.Builder
	buf := make([]byte, 1024)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) && time.Now().Before(deadline) {
		f.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := f.Read(buf)
		out.Write(buf[:n])
	}
	return out.String()
}

func TestNoPivot(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "sh", "-c", "ls /bin/busybox && cat /proc/self/mountinfo | wc -l")
	res := r.run("run", "--no-pivot", "-b", b, newID(t))
	if res.code != 0 || !strings.Contains(res.stdout, "/bin/busybox") {
		t.Fatalf("run --no-pivot: exit %d out %q err %q", res.code, res.stdout, res.stderr)
	}
}

func TestPreserveFds(t *testing.T) {
	r := newRT(t)
	data := filepath.Join(t.TempDir(), "data")
	os.WriteFile(data, []byte("passed through\n"), 0o644)
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := busybox(t, nil, "sh", "-c", "cat <&3; ls /proc/1/fd | tr '\\n' ' '")
	res := r.runWith(nil, []*os.File{f}, "run", "--preserve-fds", "1", "-b", b, newID(t))
	if res.code != 0 || !strings.HasPrefix(res.stdout, "passed through\n") {
		t.Fatalf("run --preserve-fds 1: exit %d out %q err %q", res.code, res.stdout, res.stderr)
	}
	// Without the flag the same fd must not reach the container.
	res = r.runWith(nil, []*os.File{f}, "run", "-b", b, newID(t))
	if strings.Contains(res.stdout, "passed through") {
		t.Fatalf("fd 3 reached the container without --preserve-fds: %q", res.stdout)
	}
}

func TestLogFormats(t *testing.T) {
	r := newRT(t)
	for _, format := range []string{"text", "json"} {
		log := filepath.Join(t.TempDir(), "log")
		res := r.run("--log", log, "--log-format", format, "state", "nosuch")
		if res.code != 1 || !strings.Contains(res.stderr, "does not exist") {
			t.Fatalf("state of a missing container: exit %d %q", res.code, res.stderr)
		}
		b, _ := os.ReadFile(log)
		if format == "json" {
			var entry map[string]string
			if err := json.Unmarshal(b, &entry); err != nil || entry["level"] != "error" || !strings.Contains(entry["msg"], "nosuch") {
				t.Fatalf("json log %q: %v", b, err)
			}
		} else if !strings.Contains(string(b), "level=error") || !strings.Contains(string(b), "nosuch") {
			t.Fatalf("text log %q", b)
		}
	}
	if res := r.run("start"); res.code == 0 || !strings.Contains(res.stderr, "container id") {
		t.Fatalf("start without an id: exit %d %q", res.code, res.stderr)
	}
}
