package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/seccomp"
)

func TestSeccompProfile(t *testing.T) {
	r := newRT(t)
	deny := func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		}
	}
	b := busybox(t, deny, "sh", "-c", "ls /bin/busybox; mkdir /tmp/x; echo mkdir=$?")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 || !strings.Contains(res.stdout, "/bin/busybox") || !strings.Contains(res.stdout, "mkdir=1") ||
		!strings.Contains(res.stderr, "Operation not permitted") {
		t.Fatalf("mkdir denied, ls allowed: exit %d out %q err %q", res.code, res.stdout, res.stderr)
	}
	// exec'd processes get the container's profile too.
	id := sleeper(t, r, deny)
	if out := r.run("exec", id, "sh", "-c", "mkdir /tmp/y; echo mkdir=$?"); !strings.Contains(out.stdout, "mkdir=1") {
		t.Fatalf("exec under the container's profile: %q %q", out.stdout, out.stderr)
	}

	// Docker's default profile loads and blocks what it blocks.
	b = busybox(t, func(s *specs.Spec) {
		p, err := seccomp.DefaultProfile(s.Process.Capabilities.Bounding)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = p
	}, "sh", "-c", "unshare -U true; echo unshare=$?; echo fine")
	res = r.run("run", "-b", b, newID(t))
	if !strings.Contains(res.stdout, "unshare=1") || !strings.Contains(res.stdout, "fine") {
		t.Fatalf("default profile: exit %d out %q err %q", res.code, res.stdout, res.stderr)
	}

	// A bad profile fails create, with the reason.
	b = busybox(t, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}
	}, "true")
	if res := r.run("create", "-b", b, newID(t)); res.code == 0 || !strings.Contains(res.stderr, "SCMP_ACT_NOPE") {
		t.Fatalf("bad profile: exit %d %q", res.code, res.stderr)
	}
}

// TestSeccompNotify plays the seccomp agent: it gets the listener fd from
// the runtime and answers the container's mkdir itself.
func TestSeccompNotify(t *testing.T) {
	r := newRT(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln := listenUnix(t, sock)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "from-test",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		}
	}, "sh", "-c", "mkdir /x; echo mkdir=$?")
	id := newID(t)
	done := make(chan result, 1)
	go func() { done <- r.run("run", "-b", b, id) }()

	ln.SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	var st specs.ContainerProcessState
	if err := json.Unmarshal(buf[:n], &st); err != nil || st.Metadata != "from-test" || st.State.ID != id || st.Pid <= 0 {
		t.Fatalf("agent got state %q: %v", buf[:n], err)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("no fd with the state: %v", err)
	}
	defer unix.Close(fds[0])
	req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fds[0]))
	if err != nil {
		t.Fatal(err)
	}
	resp := &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(syscall.ENOSPC)}
	if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fds[0]), resp); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if !strings.Contains(res.stdout, "mkdir=1") || !strings.Contains(res.stderr, "No space left on device") {
		t.Fatalf("the agent's answer did not reach the container: exit %d out %q err %q", res.code, res.stdout, res.stderr)
	}
}

// A syscall newer than the profile (a number above all it names) gets
// ENOSYS under a profile whose default is EPERM, so that a C library falls
// back (clone3 -> clone) as on an older kernel; a known syscall that no
// rule allows still gets EPERM.
func TestSeccompUnknownSyscallENOSYS(t *testing.T) {
	r := newRT(t)
	const unknown = 1000 // above every syscall number of today's tables
	b := busybox(t, func(s *specs.Spec) {
		p, err := seccomp.DefaultProfile(s.Process.Capabilities.Bounding)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = p
	}, "/bin/rawsyscall", strconv.Itoa(unknown), strconv.Itoa(unix.SYS_KEXEC_LOAD), strconv.Itoa(unix.SYS_GETPPID))
	buildTestdata(t, "rawsyscall", filepath.Join(b, "rootfs/bin/rawsyscall"))
	res := r.run("run", "-b", b, newID(t))
	want := fmt.Sprintf("%d %d\n%d %d\n%d 0\n", unknown, unix.ENOSYS, unix.SYS_KEXEC_LOAD, unix.EPERM, unix.SYS_GETPPID)
	if res.code != 0 || res.stdout != want {
		t.Fatalf("exit %d, out %q (want %q: ENOSYS, EPERM, allowed), err %q", res.code, res.stdout, want, res.stderr)
	}
}

// buildTestdata builds the static helper ./testdata/<name> to path.
func buildTestdata(t *testing.T, name, path string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", path, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
}
