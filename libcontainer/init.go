package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/hooks"
	_ "github.com/berthrt/berth/libcontainer/nsenter" // joins mnt/user/time before Go starts threads
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
	// After ready the parent is gone: stderr is all that is left to tell.
	fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
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
	p, err := prepareProcess(cfg.Spec.Process, false)
	if err != nil {
		return err
	}
	p.seccomp = sc
	return p.exec(cfg.PreserveFds)
}

// setupContainer does everything up to the point where `create` returns.
func setupContainer(conn *syncConn, cfg *initConfig) (*process, error) {
	spec := cfg.Spec.full()
	if err := setHostname(spec.Hostname, spec.Domainname); err != nil {
		return nil, err
	}
	// init is in its cgroup from its start (cgroups.Entry), so the new
	// cgroup namespace has the container's cgroup as its root.
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return nil, fmt.Errorf("create cgroup namespace: %w", err)
		}
	}
	rcfg := &rootfs.Config{
		Rootfs: cfg.Rootfs, Spec: spec, NoPivot: cfg.NoPivot, UserNS: cfg.UserNS,
		BundleDir: cfg.Bundle, HostMountNS: cfg.HostMountNS,
		DetachedMount: cfg.detachedMountFunc(),
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
	if err := hooks.Run(context.Background(), hooks.CreateContainer, hooks.ForPoint(spec.Hooks, hooks.CreateContainer), st); err != nil {
		return nil, err
	}
	sc, err := planSeccomp(spec.Linux.Seccomp, cfg)
	if err != nil {
		return nil, err
	}
	if err := rootfs.Enter(rcfg); err != nil {
		return nil, err
	}
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
	p, err := prepareProcess(spec.Process, true)
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
	// state directory, which is outside the container's root.
	fifo, err := unix.Open("/proc/self/fd/"+strconv.Itoa(cfg.FifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("wait for start: open exec fifo: %w", err)
	}
	unix.Close(cfg.FifoFd)
	if _, err := unix.Write(fifo, []byte{0}); err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	st := cfg.state(os.Getpid(), Created)
	err = hooks.Run(context.Background(), hooks.StartContainer, hooks.ForPoint(cfg.Spec.Hooks, hooks.StartContainer), st)
	if err == nil {
		err = p.exec(cfg.PreserveFds)
	}
	unix.Write(fifo, []byte(err.Error()))
	return err
}

// state is what init's hooks get on stdin; they run before the user's
// program, so the container is still creating (createContainer) or
// created (startContainer).
func (cfg *initConfig) state(pid int, s Status) *specs.State {
	st := &State{ID: cfg.ID, InitPid: pid, Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations}
	return st.ociState(s)
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

// writeSysctls writes linux.sysctl through the container's own /proc, so
// namespaced keys apply to the container, not the host.
func writeSysctls(sysctl map[string]string) error {
	for k, v := range sysctl {
		path := "/proc/sys/" + sysctlPath(k)
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("sysctl %s: no such key in this kernel or namespace", k)
			}
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// sysctlPath maps net.ipv4.ip_forward to net/ipv4/ip_forward; a key may use
// '/' already, as sysctl(8) allows.
func sysctlPath(key string) string {
	b := []byte(key)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
