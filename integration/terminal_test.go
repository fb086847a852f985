package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// openPty gives the test a terminal of its own to run berth-runtime on.
func openPty(t *testing.T) (master, slave *os.File) {
	// Non-blocking, so that Go's poller serves it and read deadlines work.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := os.NewFile(uintptr(fd), "ptmx")
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// runOnTerminal runs berth-runtime with the terminal as all its stdio,
// as in an interactive shell, and returns its exit code.
func (r *rt) runOnTerminal(tty *os.File, args ...string) result {
	cmd := exec.Command(runtimeBin, append([]string{"--root", r.root}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	cmd.Run()
	if cmd.ProcessState == nil {
		return result{code: -1}
	}
	return result{code: cmd.ProcessState.ExitCode()}
}

// A terminal process run in the foreground without --console-socket gets
// the caller's terminal: what is typed reaches it, and its terminal has the
// caller's size from its first instruction on (not only after the relay's
// first resize, which can come after the process looked).
func TestRunAndExecOnCallersTerminal(t *testing.T) {
	r := newRT(t)
	m, s := openPty(t)
	b := busybox(t, func(sp *specs.Spec) { sp.Process.Terminal = true },
		"sh", "-c", "stty size; read line; echo got:$line; exit 4")
	id := newID(t)
	done := make(chan result, 1)
	go func() { done <- r.runOnTerminal(s, "run", "-b", b, id) }()
	out := readUntil(t, m, "40 120")
	m.Write([]byte("through-the-terminal\r"))
	out += readUntil(t, m, "got:through-the-terminal")
	res := <-done
	if res.code != 4 || !strings.Contains(out, "40 120") || !strings.Contains(out, "got:through-the-terminal") {
		t.Fatalf("run on a terminal: exit %d, terminal saw %q", res.code, out)
	}

	id2 := sleeper(t, r, nil)
	go func() {
		done <- r.runOnTerminal(s, "exec", "-t", id2, "sh", "-c", "stty size; tty; read l; echo exec-got:$l")
	}()
	out = readUntil(t, m, "/dev/pts/")
	m.Write([]byte("typed\r"))
	out += readUntil(t, m, "exec-got:typed")
	if res := <-done; res.code != 0 || !strings.Contains(out, "40 120") || !strings.Contains(out, "exec-got:typed") {
		t.Fatalf("exec -t on a terminal: exit %d, saw %q", res.code, out)
	}
}
