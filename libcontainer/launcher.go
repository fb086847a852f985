package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/nsenter"
)

// launcher starts a process of the container — create's init or an exec'd
// one — from the sealed runtime binary, in the planned namespaces and the
// container's cgroup, and opens the sync socket to it. What differs
// between the two is in initConfig.
type launcher struct {
	id string
	// initPath is the runtime binary the process is exec'd from ("" for
	// this one); it is sealed first (sealed.go).
	initPath string
	plan     *nsPlan
	cg       cgroups.Manager
	// subCgroups are exec's sub-cgroups of cg (cgroups.OpenSubEntry).
	subCgroups    map[string]string
	preserveFds   int
	consoleSocket string
	terminal      bool
	fifo          *os.File // create only: the exec fifo, O_PATH
	// uidMaps and gidMaps are written for a new user namespace.
	uidMaps, gidMaps      []specs.LinuxIDMapping
	stdin, stdout, stderr *os.File
	conn                  *syncConn
	// stalled is the conn's (syncConn.stalled).
	stalled func() error
	// cmd is the process started from the sealed binary; proc is the
	// container's process: cmd's own, or the one nsenter forked into the
	// container's pid namespace (nsPlan.forks), whose parent is also us.
	cmd  *exec.Cmd
	proc *os.Process

	// mountSock sends init its detached mounts (idmap.go); nil when
	// initConfig.DetachedMounts is empty.
	mountSock *os.File
}

// launch starts the process, already inside the cgroup (cgroups.Entry),
// and sends it cfg.
func (l *launcher) launch(cfg *initConfig) error {
	if l.initPath == "" && !selfInit {
		return errors.New("this binary cannot be a container's init (built without cgo): give the path of berth-runtime (InitPath)")
	}
	exe, release, err := sealedExe(l.initPath)
	if err != nil {
		return err
	}
	defer release()
	entry, err := cgroups.OpenSubEntry(l.cg, l.subCgroups)
	if err != nil {
		return err
	}
	defer entry.Close()
	parentSock, childSock, err := socketPair()
	if err != nil {
		return err
	}
	defer childSock.Close()
	l.conn = newSyncConn(parentSock)
	l.conn.stalled = l.stalled
	var childMounts *os.File
	if len(cfg.DetachedMounts) > 0 {
		if l.mountSock, childMounts, err = mountFdPair(); err != nil {
			parentSock.Close()
			return err
		}
		defer childMounts.Close()
	}
	cmd, err := l.command(cfg, exe, childSock, childMounts, entry.Tasks)
	if err != nil {
		parentSock.Close()
		return err
	}
	if entry.Dir != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(entry.Dir.Fd())
	}
	err = l.plan.onJoinedThread(cmd.Start)
	// The child has its copies; the shared sealed binary stays.
	for _, f := range cmd.ExtraFiles[l.preserveFds:] {
		if f != childSock && f != childMounts && f != exe {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("start process of container %s: %w", l.id, err)
	}
	// Our copy of the child's end goes now, not when launch returns:
	// settleInChild reads from the child first, and a child that dies in
	// nsenter's constructor must read as EOF there, not as a wait forever.
	childSock.Close()
	l.cmd, l.proc = cmd, cmd.Process
	if err := l.settleInChild(); err != nil {
		return err
	}
	if err := writeOOMScoreAdj(l.proc.Pid, cfg.Spec.Process.OOMScoreAdj); err != nil {
		l.kill()
		return err
	}
	cfg.HostPid = l.proc.Pid
	if cfg.InitHostPid == 0 {
		cfg.InitHostPid = l.proc.Pid
	}
	if err := l.conn.send(cfg); err != nil {
		return l.failed(errInitDied)
	}
	return nil
}

// settleInChild answers nsenter's constructor when it does the namespace
// work (nsPlan.inChild): it writes the maps of the user namespace it made,
// and adopts the process it forked into the container's pid namespace.
func (l *launcher) settleInChild() error {
	if !l.plan.inChild {
		return nil
	}
	if l.plan.newUser {
		if err := l.conn.expect(msgUserns); err != nil {
			return l.failed(err)
		}
		if err := writeIDMaps(l.cmd.Process.Pid, l.uidMaps, l.gidMaps); err != nil {
			return err
		}
		if err := l.conn.send(syncMsg{Type: msgUsernsMapped}); err != nil {
			return l.failed(err)
		}
	}
	if !l.plan.forks() {
		return nil
	}
	m, err := l.conn.recvMsg()
	if err != nil {
		return l.failed(err)
	}
	return l.adopt(m)
}

// adopt takes the process nsenter forked into the container's pid
// namespace, which m (msgPid) names, as the container's, once the forker
// has exited.
func (l *launcher) adopt(m syncMsg) error {
	if m.Type != msgPid || m.Pid <= 0 {
		return l.failed(fmt.Errorf("container init protocol: got %q, want %q", m.Type, msgPid))
	}
	// Our child, by CLONE_PARENT: it stays a zombie until we reap it, so
	// the pid cannot name another process.
	proc, err := os.FindProcess(m.Pid)
	if err != nil {
		return fmt.Errorf("find process %d of container %s: %w", m.Pid, l.id, err)
	}
	if code, err := waitCode(l.cmd.Process); err != nil || code != 0 {
		proc.Kill()
		proc.Wait()
		return fmt.Errorf("start process of container %s: the process that joined its namespaces exited with %d (%v)", l.id, code, err)
	}
	l.proc = proc
	return nil
}

// forkedLate answers init's msgPid after the root switch (nsPlan.lateFork):
// it adopts the child and sends it the config again, to go on from there.
func (l *launcher) forkedLate(m syncMsg, cfg *initConfig) error {
	if err := l.adopt(m); err != nil {
		return err
	}
	cfg.AfterFork = true
	cfg.HostPid, cfg.InitHostPid = l.proc.Pid, l.proc.Pid
	if err := l.conn.send(cfg); err != nil {
		return l.failed(errInitDied)
	}
	return nil
}

// writeIDMaps writes the maps of a user namespace that pid made.
func writeIDMaps(pid int, uidMaps, gidMaps []specs.LinuxIDMapping) error {
	for _, m := range []struct {
		file string
		ids  []specs.LinuxIDMapping
	}{{"uid_map", uidMaps}, {"gid_map", gidMaps}} {
		var b strings.Builder
		for _, e := range m.ids {
			fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		path := fmt.Sprintf("/proc/%d/%s", pid, m.file)
		if err := os.WriteFile(path, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write %s of the container's user namespace: %w", m.file, err)
		}
	}
	return nil
}

// failed adds the process's exit status to an error from the protocol:
// when it died, how it died is the useful part (its own message, if any,
// went to its stderr).
func (l *launcher) failed(err error) error {
	if !errors.Is(err, errInitDied) {
		return err
	}
	if code, werr := waitCode(l.proc); werr != nil {
		return fmt.Errorf("%w: %w", err, werr)
	} else if code != 0 {
		return fmt.Errorf("%w: exit status %d", err, code)
	}
	return err
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create init socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "init-parent"), os.NewFile(uintptr(fds[1]), "init-child"), nil
}

// command lays out the process's fds: the preserved ones first at 3..,
// then the sync socket, the mount fd socket, the exec fifo, the console
// socket, the v1 cgroup tasks files, and last the sealed binary itself.
// The binary goes through ExtraFiles because the path that is exec'd is
// resolved in the child after its fds have been moved into place: our own
// fd number for it could by then name another file.
func (l *launcher) command(cfg *initConfig, exe, childSock, childMounts *os.File, cgroupTasks []*os.File) (*exec.Cmd, error) {
	var extra []*os.File
	for i := 0; i < l.preserveFds; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	extra = append(extra, childSock)
	pipeFd := 2 + len(extra)
	if childMounts != nil {
		extra = append(extra, childMounts)
		cfg.MountFd = 2 + len(extra)
	}
	cfg.FifoFd, cfg.ConsoleFd = -1, -1
	if l.fifo != nil {
		extra = append(extra, l.fifo)
		cfg.FifoFd = 2 + len(extra)
	}
	if l.consoleSocket != "" {
		if !l.terminal {
			return nil, errors.New("--console-socket is only for a process with a terminal (process.terminal true, or -t)")
		}
		sock, err := dialConsoleSocket(l.consoleSocket)
		if err != nil {
			return nil, err
		}
		extra = append(extra, sock)
		cfg.ConsoleFd = 2 + len(extra)
	}
	var tasksFds []string
	for _, f := range cgroupTasks {
		extra = append(extra, f)
		tasksFds = append(tasksFds, strconv.Itoa(2+len(extra)))
	}
	extra = append(extra, exe)
	cmd := &exec.Cmd{
		Path: fmt.Sprintf("/proc/self/fd/%d", 2+len(extra)),
		Args: []string{"berth-runtime", "init"},
		// One P: init is one locked thread until it execs, and a Go
		// runtime with fewer Ps starts fewer threads.
		Env:         []string{envInitPipe + "=" + strconv.Itoa(pipeFd), envInitProtocol + "=" + initProtocol, "GOMAXPROCS=1"},
		ExtraFiles:  extra,
		Stdin:       orFile(l.stdin, os.Stdin),
		Stdout:      orFile(l.stdout, os.Stdout),
		Stderr:      orFile(l.stderr, os.Stderr),
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: l.plan.goCloneFlags()},
	}
	if len(tasksFds) > 0 {
		cmd.Env = append(cmd.Env, nsenter.EnvCgroupJoin+"="+strings.Join(tasksFds, ","))
	}
	cmd.Env = append(cmd.Env, l.plan.childEnv()...)
	if l.plan.newUser && !l.plan.inChild {
		cmd.SysProcAttr.UidMappings = idMaps(l.uidMaps)
		cmd.SysProcAttr.GidMappings = idMaps(l.gidMaps)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// The child is still host root, which the mappings usually leave
		// unmapped; becoming the namespace's root before exec keeps the
		// capabilities the new namespace grants.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	return cmd, nil
}

func orFile(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(m))
	for _, e := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)})
	}
	return out
}

// waitCode waits for p and returns its exit code the way a shell
// reports it: the status, or 128+signal.
func waitCode(p *os.Process) (int, error) {
	st, err := p.Wait()
	if err != nil {
		return -1, err
	}
	ws := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
