package libcontainer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/capabilities"
	"github.com/berthrt/berth/libcontainer/procattr"
	"github.com/berthrt/berth/libcontainer/rootfs"
)

// process is the user's program, checked and ready to exec.
type process struct {
	spec *specs.Process
	path string // resolved program
	env  []string
	caps *capabilities.Set
	// seccomp is loaded last but one: before the credentials drop when it
	// needs CAP_SYS_ADMIN (no no_new_privs), else right before exec.
	seccomp *seccompPlan
	// attrs (personality, scheduler, I/O priority, LSM label) are set
	// before both.
	attrs *procattr.Attrs
}

// prepareProcess checks everything about the user's program that can fail,
// while `create` can still report it: the cwd, the program, the limits.
// A container's init makes its cwd if missing, as runc does; an exec'd
// process only enters it. pers is the container's linux.personality.
func prepareProcess(p *specs.Process, pers *specs.LinuxPersonality, makeCwd bool) (*process, error) {
	caps, err := capabilities.Parse(p.Capabilities)
	if err != nil {
		return nil, err
	}
	attrs, err := procattr.FromSpec(p, pers)
	if err != nil {
		return nil, err
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return nil, err
	}
	// (process.oomScoreAdj is the parent's to write: writeOOMScoreAdj.)
	if err := enterCwd(p.Cwd, makeCwd); err != nil {
		return nil, err
	}
	uid := int(p.User.UID)
	env, err := prepareEnv(p.Env, func() string { return passwdHome(uid) })
	if err != nil {
		return nil, err
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return nil, err
	}
	return &process{spec: p, path: path, env: env, caps: caps, attrs: attrs}, nil
}

// warnProcess logs, as warnings, what of p the process will run without
// (capabilities left out, as runc leaves them out), where the user of
// create or exec sees it: the container's init has no channel for it.
func warnProcess(p *specs.Process) {
	ws, err := capabilities.Warnings(p.Capabilities)
	if err != nil {
		return // the init's capabilities.Parse reports it
	}
	for _, w := range ws {
		slog.Warn(w)
	}
}

// enterCwd changes to the process's cwd and makes sure it is inside the
// container's root: a cwd reached through a leaked host fd would give the
// process a foothold on the host (the CVE-2024-21626 class).
func enterCwd(cwd string, makeIt bool) error {
	if !filepath.IsAbs(cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", cwd)
	}
	if makeIt {
		if err := os.MkdirAll(cwd, 0o755); err != nil {
			return fmt.Errorf("process.cwd %s: %w", cwd, err)
		}
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("process.cwd %s: %w", cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !filepath.IsAbs(wd) {
		return fmt.Errorf("process.cwd %s is outside the container's root", cwd)
	}
	return nil
}

var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func setRlimits(list []specs.POSIXRlimit) error {
	for _, r := range list {
		t, ok := rlimitTypes[r.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit type %q in process.rlimits", r.Type)
		}
		lim := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		// syscall.Setrlimit, not unix: Go restores RLIMIT_NOFILE at exec
		// unless it learns of the change through this call.
		if err := syscall.Setrlimit(t, &lim); err != nil {
			var cur syscall.Rlimit
			syscall.Getrlimit(t, &cur)
			if errors.Is(err, unix.EPERM) && r.Hard > cur.Max {
				return fmt.Errorf("rlimit %s hard %d is above the current hard limit %d, which only CAP_SYS_RESOURCE may raise: lower it in process.rlimits", r.Type, r.Hard, cur.Max)
			}
			return fmt.Errorf("set rlimit %s soft %d hard %d: %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// lookPath finds the program in the container's PATH (from the process
// env, not ours), the way execvp would.
func lookPath(prog string, env []string) (string, error) {
	if strings.Contains(prog, "/") {
		if err := checkExecutable(prog); err != nil {
			return "", fmt.Errorf("process.args[0] %s: %w", prog, err)
		}
		return prog, nil
	}
	path := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, prog)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0] %q: executable file not found in the container's $PATH (%s)", prog, path)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// exec switches to the container's credentials and runs the program.
func (p *process) exec(preserveFds int) error {
	if err := p.enter(preserveFds); err != nil {
		return err
	}
	return p.execProgram()
}

// enter makes the calling thread the container's process in all but the
// program: umask, fds, no_new_privs, seccomp, capabilities and user.
func (p *process) enter(preserveFds int) error {
	umask := 0o022
	if p.spec.User.Umask != nil {
		umask = int(*p.spec.User.Umask)
	}
	unix.Umask(umask)
	// Every fd past the preserved ones closes at exec: no host fd reaches
	// the container. One syscall instead of walking /proc/self/fd, made
	// before the seccomp filter, which may not know close_range.
	if err := unix.CloseRange(uint(3+preserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	if err := p.attrs.Apply(); err != nil {
		return err
	}
	nnp := p.spec.NoNewPrivileges
	if nnp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	} else if err := p.seccomp.load(); err != nil {
		return err
	}
	if err := p.caps.DropBounding(); err != nil {
		return err
	}
	chownStdio([]*os.File{os.Stdin, os.Stdout, os.Stderr}, int(p.spec.User.UID))
	if err := setUser(p.spec.User); err != nil {
		return err
	}
	if err := p.caps.Apply(); err != nil {
		return err
	}
	if nnp {
		if err := p.seccomp.load(); err != nil {
			return err
		}
	}
	return nil
}

// execProgram runs the program, once enter has been through.
func (p *process) execProgram() error {
	if err := syscall.Exec(p.path, p.spec.Args, p.env); err != nil {
		return fmt.Errorf("exec %s: %w", p.path, err)
	}
	return nil
}

// chownStdio gives the process's user its stdio, as runc does: its
// terminal (made by root, so root's) and the pipes it was handed, which
// it could not reopen through /dev/stdout otherwise. Only the owner
// changes (the terminal keeps the tty group devpts gave it), /dev/null is
// left alone, and a file the process may not change hands (EPERM: an
// owner not mapped in its user namespace; EROFS) is left as it is.
func chownStdio(files []*os.File, uid int) {
	for _, f := range files {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || int(st.Uid) == uid || rootfs.IsDevNull(&st) {
			continue
		}
		f.Chown(uid, -1)
	}
}

// setUser switches to the container user, keeping the permitted
// capabilities across setuid so Apply can then set the spec's sets.
//
// The credentials change for the calling thread alone, as capset does,
// through the raw system calls: syscall.Setuid and friends change every
// thread of the process (the C library or the Go runtime signal each
// thread and wait for it), which costs time on the way to the user's
// program for nothing: this thread execs next, and the others end with
// the exec. The process is not dumpable meanwhile (nsenter), so nothing
// in the container can reach the threads that are still root.
func setUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities across setuid: %w", err)
	}
	// setgroups is denied in a user namespace without a mapping for it;
	// only fail when groups were actually asked for.
	var groups unsafe.Pointer
	if len(u.AdditionalGids) > 0 {
		groups = unsafe.Pointer(&u.AdditionalGids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(u.AdditionalGids)), uintptr(groups), 0); e != 0 && len(u.AdditionalGids) > 0 {
		return fmt.Errorf("set additional gids %v: %w", u.AdditionalGids, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(u.GID), 0, 0); e != 0 {
		return fmt.Errorf("set gid %d (is it mapped in the user namespace?): %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(u.UID), 0, 0); e != 0 {
		return fmt.Errorf("set uid %d (is it mapped in the user namespace?): %w", u.UID, e)
	}
	return nil
}
