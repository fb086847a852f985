package libcontainer

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestFilterNotify(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		ready   bool
	}{
		{"READY=1", "READY=1\n", true},
		{"STATUS=starting\n", "STATUS=starting\n", false},
		{"MAINPID=1\nREADY=1\nSTATUS=up\n", "READY=1\nSTATUS=up\n", true},
		{"BARRIER=1", "", false},
		{"FDSTORE=1\nFDNAME=x", "", false},
		{"garbage\nWATCHDOG=1", "WATCHDOG=1\n", false},
		{"READY=0", "READY=0\n", true}, // as runc: READY= counts
	} {
		out, ready := filterNotify([]byte(tc.in))
		if string(out) != tc.out || ready != tc.ready {
			t.Errorf("filterNotify(%q) = %q, %v; want %q, %v", tc.in, out, ready, tc.out, tc.ready)
		}
	}
}

func TestSetEnv(t *testing.T) {
	got := setEnv([]string{"A=1", "NOTIFY_SOCKET=/x", "NOTIFY_SOCKETX=2"}, "NOTIFY_SOCKET", "/y")
	if want := "A=1 NOTIFY_SOCKETX=2 NOTIFY_SOCKET=/y"; strings.Join(got, " ") != want {
		t.Errorf("setEnv: %v, want %s", got, want)
	}
	p := &specs.Process{Env: []string{"LISTEN_FDS=9"}}
	setListenEnv(p, 0)
	if len(p.Env) != 1 {
		t.Errorf("no activation fds changed the env: %v", p.Env)
	}
	setListenEnv(p, 2)
	if want := "LISTEN_FDS=2 LISTEN_PID=1"; strings.Join(p.Env, " ") != want {
		t.Errorf("env %v, want %s", p.Env, want)
	}
}

func TestListenFdsFromEnv(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		pid, fds string
		want     int
	}{
		{self, "2", 2},
		{"1", "2", 0}, // an ancestor's
		{"", "2", 0},
		{self, "", 0},
		{self, "-1", 0},
	} {
		t.Setenv("LISTEN_PID", tc.pid)
		t.Setenv("LISTEN_FDS", tc.fds)
		if got := ListenFdsFromEnv(); got != tc.want {
			t.Errorf("LISTEN_PID=%q LISTEN_FDS=%q: %d, want %d", tc.pid, tc.fds, got, tc.want)
		}
	}
}

// fakeManager listens like systemd; answer says whether it closes the
// barrier's fd.
func fakeManager(t *testing.T, answer bool) (*net.UnixConn, *net.UnixConn, chan string) {
	path := filepath.Join(t.TempDir(), "host.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	got := make(chan string, 10)
	go func() {
		buf, oob := make([]byte, 512), make([]byte, 512)
		for {
			n, oobn, _, _, err := srv.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, c := range cmsgs {
				fds, _ := unix.ParseUnixRights(&c)
				for _, fd := range fds {
					if answer {
						unix.Close(fd)
					}
				}
			}
		}
	}()
	client, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return srv, client, got
}

func TestNotifyBarrier(t *testing.T) {
	_, client, got := fakeManager(t, true)
	if err := notifyBarrier(client, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if msg := <-got; msg != "BARRIER=1\n" {
		t.Errorf("sent %q", msg)
	}
	// A manager that never answers costs the wait, and a warning.
	_, client, _ = fakeManager(t, false)
	if err := notifyBarrier(client, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("unanswered barrier: %v", err)
	}
}

func TestBindUnixgramLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("x", 64), strings.Repeat("y", 64))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conn, err := bindUnixgram(dir, "notify.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A client reaches it by the long path the same way.
	client, err := bindUnixgram(t.TempDir(), "client.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	d, _ := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	defer d.Close()
	to := &net.UnixAddr{Name: "/proc/self/fd/" + strconv.Itoa(int(d.Fd())) + "/notify.sock", Net: "unixgram"}
	if _, err := client.WriteToUnix([]byte("READY=1"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "notify.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file: %v, %v", fi, err)
	}
}
