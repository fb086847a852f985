package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/nsenter"
)

// lateFork is what init holds, from before the root switch, to fork into
// a joined pid namespace after it (nsPlan.lateFork): the namespace and its
// own sealed binary, both out of reach by path once the root is the
// container's.
type lateFork struct {
	pidns *os.File
	exe   *os.File
}

func openLateFork(pidnsPath string) (*lateFork, error) {
	pidns, err := os.Open(pidnsPath)
	if err != nil {
		return nil, fmt.Errorf("open pid namespace %s: %w", pidnsPath, err)
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		pidns.Close()
		return nil, fmt.Errorf("open the runtime's own binary: %w", err)
	}
	return &lateFork{pidns: pidns, exe: exe}, nil
}

// exec re-execs init, in its new root, for nsenter to join the pid
// namespace and fork the process that goes on (nsenter.EnvPidNS). Only
// the fds of the protocol pass: Go opened every other one close-on-exec.
// It returns only on failure.
func (f *lateFork) exec(pipe int) error {
	ns := int(f.pidns.Fd())
	if _, err := unix.FcntlInt(uintptr(ns), unix.F_SETFD, 0); err != nil {
		return fmt.Errorf("pass the pid namespace on: %w", err)
	}
	env := []string{
		envInitPipe + "=" + strconv.Itoa(pipe), envInitProtocol + "=" + initProtocol, "GOMAXPROCS=1",
		nsenter.EnvPidNS + "=" + strconv.Itoa(ns),
	}
	err := execveat(int(f.exe.Fd()), []string{"berth-runtime", "init"}, env)
	return fmt.Errorf("re-exec init to fork into the pid namespace: %w", err)
}

// execveat runs the binary fd holds (x/sys has no wrapper): after the root
// switch no path leads to it.
func execveat(fd int, argv, env []string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return errno
}

// checkLateFork refuses what a late fork cannot carry over the root switch.
func checkLateFork(spec *specs.Spec) error {
	if sc := spec.Linux.Seccomp; sc != nil && sc.ListenerPath != "" {
		// The agent's socket is a host path, which the process forked
		// after the root switch could not dial.
		return errors.New("linux.seccomp.listenerPath is not supported yet for a container that joins a pid namespace with a mount namespace of its own")
	}
	return nil
}
