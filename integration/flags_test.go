package integration

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

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

// TestNoPivot checks that --no-pivot really skips pivot_root. Inside the
// container both ways look alike, so the test asks the kernel what lies
// below the container's root mount: after pivot_root the host's root mount
// is detached from the namespace, and the rootfs hangs from the namespace's
// bottom mount; after MS_MOVE + chroot (--no-pivot) the rootfs is mounted
// on top of the host's root mount, which stays in the namespace.
func TestNoPivot(t *testing.T) {
	var host unix.Stat_t
	if err := unix.Stat("/", &host); err != nil {
		t.Fatal(err)
	}
	hostDev := fmt.Sprintf("%d:%d", unix.Major(host.Dev), unix.Minor(host.Dev))
	for _, noPivot := range []bool{false, true} {
		r := newRT(t)
		b := busybox(t, nil, "sh", "-c", "ls /bin/busybox && exec sleep 300")
		id := newID(t)
		args := []string{"run", "-d", "-b", b, id}
		if noPivot {
			args = []string{"run", "--no-pivot", "-d", "-b", b, id}
		}
		r.must(args...)
		r.waitStatus(id, "running")
		below := mountBelowRoot(t, r.state(id).Pid)
		switch {
		case noPivot && below != hostDev:
			t.Errorf("--no-pivot: the container's root is mounted on a mount of device %s, not on the host's root (%s): pivot_root ran",
				below, hostDev)
		case !noPivot && below == hostDev:
			t.Errorf("without --no-pivot: the container's root is mounted on the host's root (%s): pivot_root did not run", hostDev)
		}
		r.must("delete", "--force", id)
	}
}

// mountBelowRoot returns the device (major:minor) of the mount that pid's
// root mount is mounted on, in pid's mount namespace. It joins the
// namespace on a thread of its own, which is never given back to the Go
// scheduler (offMainThread), and asks statmount(2) (Linux 6.8), which
// answers about mounts a chroot hides.
func mountBelowRoot(t *testing.T, pid int) string {
	t.Helper()
	type answer struct {
		dev string
		err error
	}
	done := make(chan answer, 1)
	go offMainThread(func() {
		dev, err := func() (string, error) {
			ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
			if err != nil {
				return "", err
			}
			defer ns.Close()
			// setns(CLONE_NEWNS) refuses a thread that shares its root
			// and cwd with the others.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return "", fmt.Errorf("unshare CLONE_FS: %w", err)
			}
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
				return "", fmt.Errorf("join mount namespace of %d: %w", pid, err)
			}
			var root unix.Statx_t
			if err := unix.Statx(unix.AT_FDCWD, "/", 0, unix.STATX_MNT_ID_UNIQUE, &root); err != nil {
				return "", fmt.Errorf("statx /: %w", err)
			}
			_, parent, err := statmount(root.Mnt_id)
			if err != nil {
				return "", fmt.Errorf("statmount of the root mount: %w", err)
			}
			dev, _, err := statmount(parent)
			if err != nil {
				return "", fmt.Errorf("statmount of the mount below the root: %w", err)
			}
			return dev, nil
		}()
		done <- answer{dev, err}
	})
	a := <-done
	if errors.Is(a.err, unix.ENOSYS) {
		t.Skip("statmount(2) needs Linux 6.8: cannot see below the container's root")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.dev
}

// offMainThread runs fn on a locked thread that dies with it: fn may
// change the thread's namespaces. Never the main thread: a locked
// goroutine that ends there leaves it parked, not gone, and it is the
// thread /proc/self shows, so every later test would see the namespace fn
// joined as this process's own (its mount table, its ns links).
func offMainThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		fn()
		return // no UnlockOSThread: the thread exits with this goroutine
	}
	// Held by this goroutine, the main thread runs no other: the next
	// one starts elsewhere.
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		offMainThread(fn)
	}()
	<-finished
	runtime.UnlockOSThread()
}

// statmount returns a mount's superblock device (major:minor) and the
// unique id of its parent mount. x/sys/unix has no wrapper yet.
func statmount(mntID uint64) (dev string, parent uint64, err error) {
	const (
		statmountSBBasic  = 0x1 // STATMOUNT_SB_BASIC
		statmountMntBasic = 0x2 // STATMOUNT_MNT_BASIC
	)
	// struct mnt_id_req (version 0): size, spare, mnt_id, param.
	req := struct {
		size, spare   uint32
		mntID, params uint64
	}{size: 24, mntID: mntID, params: statmountSBBasic | statmountMntBasic}
	// struct statmount: sb_dev_major and _minor at 16 and 20, mnt_parent_id
	// at 48; the buffer leaves room for the kernel's larger struct.
	var buf [4096]byte
	_, _, errno := unix.Syscall6(unix.SYS_STATMOUNT, uintptr(unsafe.Pointer(&req)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
	if errno != 0 {
		return "", 0, errno
	}
	major := binary.NativeEndian.Uint32(buf[16:])
	minor := binary.NativeEndian.Uint32(buf[20:])
	return fmt.Sprintf("%d:%d", major, minor), binary.NativeEndian.Uint64(buf[48:]), nil
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

// --log-format takes text or json only, as runc's does.
func TestLogFormatRefused(t *testing.T) {
	r := newRT(t)
	res := r.run("--log-format", "yaml", "list")
	if res.code == 0 || !strings.Contains(res.stderr, "text or json") {
		t.Fatalf("--log-format yaml: exit %d %q, want a refusal naming text and json", res.code, res.stderr)
	}
}

// --debug logs what the runtime does: to --log in its format, or to stderr.
func TestDebugLogs(t *testing.T) {
	r := newRT(t)
	log := filepath.Join(t.TempDir(), "log")
	id := newID(t)
	b := busybox(t, nil, "true")
	r.must("--debug", "--log", log, "--log-format", "json", "run", "-b", b, id)
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var created, cgroup bool
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not json: %v", line, err)
		}
		if rec["level"] != "debug" {
			t.Errorf("log line %q: level %v, want debug", line, rec["level"])
		}
		created = created || rec["msg"] == "container created" && rec["id"] == id && rec["pid"] != nil
		cgroup = cgroup || rec["msg"] == "cgroup created" && rec["id"] == id
	}
	if !created || !cgroup {
		t.Fatalf("--debug log lacks the container's creation (%v) or its cgroup (%v):\n%s", created, cgroup, data)
	}
	// Without --log, the debug lines go to stderr, in text by default.
	res := r.run("--debug", "list")
	if res.code != 0 || !strings.Contains(res.stderr, "level=debug") {
		t.Fatalf("--debug list: exit %d, stderr %q, want debug lines", res.code, res.stderr)
	}
	if res := r.run("list"); res.stderr != "" {
		t.Fatalf("list without --debug wrote %q to stderr", res.stderr)
	}
}

// --systemd-cgroup and systemd's "slice:prefix:name" cgroupsPath are
// refused, with what to do, until there is a systemd driver; nothing of
// the container is left behind.
func TestSystemdCgroupRefused(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "true")
	id := newID(t)
	res := r.run("--systemd-cgroup", "create", "-b", b, id)
	if res.code == 0 || !strings.Contains(res.stderr, "--systemd-cgroup is not supported") {
		t.Fatalf("--systemd-cgroup create: exit %d %q, want a refusal", res.code, res.stderr)
	}
	if st := r.run("state", id); st.code == 0 {
		t.Fatalf("a refused create left container %s: %s", id, st.stdout)
	}
	if res := r.run("--systemd-cgroup", "features"); res.code != 0 {
		t.Fatalf("--systemd-cgroup features (which touches no cgroup): exit %d %q", res.code, res.stderr)
	}

	id = newID(t)
	b = busybox(t, func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:berth-test:" + id }, "true")
	res = r.run("create", "-b", b, id)
	if res.code == 0 || !strings.Contains(res.stderr, "systemd cgroup driver") {
		r.run("delete", "--force", id)
		t.Fatalf("create with cgroupsPath slice:prefix:name: exit %d %q, want a refusal", res.code, res.stderr)
	}
	if st := r.run("state", id); st.code == 0 {
		t.Fatalf("a refused create left container %s: %s", id, st.stdout)
	}
}
