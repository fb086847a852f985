package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/hooks"
	_ "github.com/berthrt/berth/libcontainer/nsenter" // namespaces, cgroup, signals before Go starts threads
	"github.com/berthrt/berth/libcontainer/rootfs"
)

func init() {
	// The container's init must do its namespace, mount and credential
	// work on one thread, and exec from that thread: credentials set with
	// capset are per thread. Locking in an init func keeps main on the
	// process's first thread.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.LockOSThread()
	}
}

// Init is the container side of create; cmd/runtime calls it for the
// hidden `init` command. It returns only if it could not run at all.
func Init() {
	n, err := strconv.Atoi(os.Getenv(envInitPipe))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime init: this command is run by berth-runtime itself, not by hand")
		os.Exit(2)
	}
	os.Unsetenv(envInitPipe)
	if v := os.Getenv(envInitProtocol); v != initProtocol {
		fmt.Fprintf(os.Stderr, "berth-runtime init: the caller speaks init protocol %q, this berth-runtime %q: install berth-runtime and containerd-shim-berth-v2 from the same build\n", v, initProtocol)
		os.Exit(2)
	}
	os.Unsetenv(envInitProtocol)
	// (nsenter's constructor has already made this process non-dumpable.)
	conn := newSyncConn(os.NewFile(uintptr(n), "init-sync"))
	var cfg initConfig
	if err := conn.dec.Decode(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime init: read config: %v\n", err)
		os.Exit(1)
	}
	if cfg.Exec {
		err := execProcess(conn, &cfg)
		conn.send(syncMsg{Type: msgError, Error: err.Error()})
		os.Exit(1)
	}
	p, err := setupContainer(conn, &cfg)
	if err != nil {
		conn.send(syncMsg{Type: msgError, Error: err.Error()})
		os.Exit(1)
	}
	conn.f.Close()
	err = startProcess(&cfg, p)
	// `start` reads the reason from the fifo and reports it; said twice,
	// the user would see it twice (on the container's terminal too).
	// Otherwise stderr is all that is left to tell.
	if !errors.Is(err, errToldStart) {
		fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
	}
	os.Exit(127)
}

// execProcess is the container side of exec: it is already in the
// container's namespaces (the parent and nsenter joined them). It returns
// only on failure; on success the sync socket closes with the exec.
func execProcess(conn *syncConn, cfg *initConfig) error {
	if cfg.ConsoleFd >= 0 {
		if err := setupConsole(cfg.ConsoleFd, cfg.Spec.Process.ConsoleSize); err != nil {
			return err
		}
	}
	sc, err := planSeccomp(cfg.Spec.Linux.Seccomp, cfg)
	if err != nil {
		return err
	}
	p, err := prepareProcess(cfg.Spec.Process, cfg.Spec.Linux.Personality, false)
	if err != nil {
		return err
	}
	p.seccomp = sc
	return p.exec(cfg.PreserveFds)
}

// setupContainer does everything up to the point where `create` returns.
// With PidNSPath (nsPlan.lateFork) it stops after the root switch and
// re-execs itself to fork into the pid namespace, and the child carries on
// (AfterFork) from there.
func setupContainer(conn *syncConn, cfg *initConfig) (*process, error) {
	spec := cfg.Spec.full()
	rcfg := &rootfs.Config{
		Rootfs: cfg.Rootfs, Spec: spec, NoPivot: cfg.NoPivot, UserNS: cfg.UserNS,
		BundleDir: cfg.Bundle, HostMountNS: cfg.HostMountNS,
		DetachedMount: cfg.detachedMountFunc(),
		LateProc:      cfg.PidNSPath != "",
	}
	if cfg.AfterFork {
		if err := rootfs.MountProc(rcfg); err != nil {
			return nil, err
		}
		sc, err := planSeccomp(spec.Linux.Seccomp, cfg)
		if err != nil {
			return nil, err
		}
		return finishContainer(conn, cfg, rcfg, sc)
	}
	if err := enterNamespaces(spec, cfg); err != nil {
		return nil, err
	}
	var fork *lateFork
	if cfg.PidNSPath != "" {
		var err error
		if fork, err = openLateFork(cfg.PidNSPath); err != nil {
			return nil, err
		}
	}
	if err := rootfs.Prepare(rcfg); err != nil {
		return nil, err
	}
	if len(cfg.DetachedMounts) > 0 {
		unix.Close(cfg.MountFd)
	}
	if cfg.PauseForHooks {
		if err := conn.send(syncMsg{Type: msgHooks}); err != nil {
			return nil, err
		}
		if err := conn.expect(msgHooksDone); err != nil {
			return nil, err
		}
	}
	st := cfg.state(os.Getpid(), Creating)
	if err := hooks.RunWith(context.Background(), hooks.CreateContainer, hooks.ForPoint(spec.Hooks, hooks.CreateContainer), st, hooks.Options{Dir: cfg.Rootfs}); err != nil {
		return nil, err
	}
	if fork != nil {
		if err := rootfs.Enter(rcfg); err != nil {
			return nil, err
		}
		return nil, fork.exec(int(conn.f.Fd()))
	}
	sc, err := planSeccomp(spec.Linux.Seccomp, cfg)
	if err != nil {
		return nil, err
	}
	if err := rootfs.Enter(rcfg); err != nil {
		return nil, err
	}
	return finishContainer(conn, cfg, rcfg, sc)
}

// enterNamespaces does the namespace work left to init: lo up, the
// hostname, and new cgroup and time namespaces.
func enterNamespaces(spec *specs.Spec, cfg *initConfig) error {
	if err := bringLoopbackUp(spec.Linux.Namespaces); err != nil {
		return err
	}
	if err := setHostname(spec.Hostname, spec.Domainname); err != nil {
		return err
	}
	// init is in its cgroup from its start (cgroups.Entry), so the new
	// cgroup namespace has the container's cgroup as its root.
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("create cgroup namespace: %w", err)
		}
	}
	if cfg.NewTimeNS {
		return newTimeNamespace(spec.Linux.TimeOffsets)
	}
	return nil
}

// finishContainer does, inside the new root, what is left up to ready.
func finishContainer(conn *syncConn, cfg *initConfig, rcfg *rootfs.Config, sc *seccompPlan) (*process, error) {
	spec := rcfg.Spec
	if err := writeSysctls(spec.Linux.Sysctl); err != nil {
		return nil, err
	}
	if err := rootfs.Finish(rcfg); err != nil {
		return nil, err
	}
	if cfg.ConsoleFd >= 0 {
		if err := setupConsole(cfg.ConsoleFd, spec.Process.ConsoleSize); err != nil {
			return nil, err
		}
	}
	p, err := prepareProcess(spec.Process, spec.Linux.Personality, true)
	if err != nil {
		return nil, err
	}
	p.seccomp = sc
	if err := conn.send(syncMsg{Type: msgReady}); err != nil {
		return nil, err
	}
	return p, nil
}

// startProcess waits for `start`, runs the startContainer hooks and execs
// the user's program. It returns only on failure.
//
// The fifo stays open (close-on-exec) until the exec: `start` reads until
// EOF, so it returns — and runs poststart — only once the program runs,
// and it reads any failure text init writes there instead.
func startProcess(cfg *initConfig, p *process) error {
	// Open the fifo through our own fd: the fifo lives in the runtime's
	// state directory, which is outside the container's root. The fd is
	// reopened through a procfs pathrs-lite has verified, never through
	// the container's /proc: by now something sharing the rootfs may have
	// put a fake /proc/self there whose fd/N leads to a file of the real
	// procfs (a host sysctl), which the byte below would be written to.
	held := os.NewFile(uintptr(cfg.FifoFd), "exec-fifo")
	fifo, err := pathrs.Reopen(held, unix.O_WRONLY|unix.O_CLOEXEC)
	held.Close()
	if err != nil {
		return fmt.Errorf("wait for start: open exec fifo: %w", err)
	}
	if _, err := fifo.Write([]byte{0}); err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	err = p.enter(cfg.PreserveFds)
	if err == nil {
		err = runStartContainerHooks(cfg, p)
	}
	if err == nil {
		err = p.execProgram()
	}
	if _, werr := fifo.Write([]byte(err.Error())); werr == nil {
		return fmt.Errorf("%w: %w", errToldStart, err)
	}
	return err
}

// errToldStart marks a failure init has written to the exec fifo, where
// `start` reads it.
var errToldStart = errors.New("told start")

// runStartContainerHooks runs the startContainer hooks as the process is
// about to run, as runc does: after enter, so under the container's user,
// capabilities and seccomp filter; a hook without an env of its own gets
// the process's; and it holds only its stdin, stdout and stderr. Every
// other fd is close-on-exec by now (enter) but the preserved ones, which
// are the program's: they are hidden from the hooks for as long as they run.
func runStartContainerHooks(cfg *initConfig, p *process) error {
	list := hooks.ForPoint(cfg.Spec.Hooks, hooks.StartContainer)
	if len(list) == 0 {
		return nil
	}
	// fcntl, not close_range: the seccomp filter is loaded now, and a
	// profile may not know close_range.
	if err := setCloexec(3, cfg.PreserveFds, true); err != nil {
		return fmt.Errorf("hide preserved fds from the startContainer hooks: %w", err)
	}
	st := cfg.state(os.Getpid(), Created)
	err := hooks.RunWith(context.Background(), hooks.StartContainer, list, st, hooks.Options{Env: p.env})
	if ferr := setCloexec(3, cfg.PreserveFds, false); ferr != nil && err == nil {
		err = fmt.Errorf("pass the preserved fds to the process: %w", ferr)
	}
	return err
}

// setCloexec sets or clears close-on-exec on n fds from first on.
func setCloexec(first, n int, on bool) error {
	flag := 0
	if on {
		flag = unix.FD_CLOEXEC
	}
	for fd := first; fd < first+n; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flag); err != nil {
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return nil
}

// state is what init's hooks get on stdin; they run before the user's
// program, so the container is still creating (createContainer) or
// created (startContainer).
func (cfg *initConfig) state(pid int, s Status) *specs.State {
	st := &State{ID: cfg.ID, InitPid: pid, Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations}
	return st.ociState(s)
}

// newTimeNamespace makes the time namespace this thread's children and its
// exec enter, and writes its offsets: they can only be written before a
// process is in it. The thread is init's main one (the thread group
// leader, which /proc/self names), locked, which execs
// the user's program.
//
// The offsets go through a procfs pathrs-lite has verified, as every write
// under /proc does (procfs.go): in a joined mount namespace, /proc is
// another container's to replace, and a link there would take the write
// into its files, or into a host sysctl.
func newTimeNamespace(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("create time namespace: %w", err)
	}
	if len(offsets) == 0 {
		return nil
	}
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("set time namespace offsets: open a verified procfs: %w", err)
	}
	defer proc.Close()
	for clock, o := range offsets {
		line := fmt.Sprintf("%s %d %d\n", clock, o.Secs, o.Nanosecs)
		if err := writeProcFile(func() (*os.File, error) { return proc.OpenSelf("timens_offsets") }, line); err != nil {
			return fmt.Errorf("set time namespace offset %s %ds %dns: %w", clock, o.Secs, o.Nanosecs, err)
		}
	}
	return nil
}

func setHostname(host, domain string) error {
	if host != "" {
		if err := unix.Sethostname([]byte(host)); err != nil {
			return fmt.Errorf("set hostname %q (it needs a uts namespace of the container's own): %w", host, err)
		}
	}
	if domain != "" {
		if err := unix.Setdomainname([]byte(domain)); err != nil {
			return fmt.Errorf("set domainname %q (it needs a uts namespace of the container's own): %w", domain, err)
		}
	}
	return nil
}
