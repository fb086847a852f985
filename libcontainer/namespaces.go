package libcontainer

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/nsenter"
	"github.com/berthrt/berth/libcontainer/validate"
)

var nsFlags = validate.CloneFlags

// nsKindNames are the kind names of /proc/<pid>/ns/ and of nsenter's
// _BERTH_NSJOIN.
var nsKindNames = map[specs.LinuxNamespaceType]string{
	specs.UserNamespace: "user", specs.MountNamespace: "mnt", specs.PIDNamespace: "pid",
	specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// nsPlan says how a container process gets each namespace. New cgroup and
// time namespaces are always made by init itself (cgroup: once it is in
// the container's cgroup, so that cgroup is the namespace's root; time:
// its offsets are written before any process enters it). The rest is done
// one of two ways:
//
//   - the quick way, when nothing else shares the process's pid namespace
//     and no user namespace is joined: new namespaces by clone, with the
//     uid/gid maps written by Go; net, ipc and uts joined on the parent's
//     locked thread before clone; mnt, time and cgroup joined in nsenter's
//     constructor (they need a single thread; and a thread in the
//     container's cgroup namespace cannot clone into the container's v2
//     cgroup: CLONE_INTO_CGROUP fails with ENOENT under nsdelegate).
//   - inChild, when a pid namespace is joined (exec, pods) or a user
//     namespace is joined (or made beside joins): the process starts in
//     the runtime's own namespaces, where no container can see it, and
//     nsenter's constructor joins every namespace, mount included, then
//     makes the new ones (a new user namespace first, inside the joined
//     ones, so that the rest belong to it), and forks the process that goes
//     on, which is the first to exist in the container's pid namespace. It
//     already runs the sealed binary, non-dumpable, with no fd but those
//     passed on purpose, and for exec (which joins the mount namespace)
//     the container's root and cwd: a container process with
//     CAP_SYS_PTRACE finds nothing of the host's through /proc/<pid>/root,
//     cwd or exe (the CVE-2016-9962 and CVE-2019-5736 classes). Forking
//     from a Go thread that joined the pid namespace would show a copy of
//     the runtime, with the host's root, cwd, fds and binary, until it
//     execs.
//   - lateFork, a kind of inChild: a container created into a joined pid
//     namespace with a mount namespace of its own (a pod's container).
//     Its mounts must be made, and its root switched, before it has a
//     process in that namespace: until pivot_root a process there would
//     have the host's root, which a container process with
//     CAP_SYS_PTRACE reaches through /proc/<pid>/root. So nsenter joins
//     and makes every namespace but the pid one, and init sets the root up
//     outside it, then re-execs itself holding the pid namespace, for
//     nsenter to join and fork into it (msgPid comes then): that child
//     mounts /proc, which only a process of the namespace can, and goes
//     on. (With a user namespace the old order stays: the process never
//     exec'd inside it, so its memory belongs to the host's user namespace,
//     and being non-dumpable, it is out of the reach of CAP_SYS_PTRACE in
//     the container's.)
type nsPlan struct {
	inChild     bool
	cloneFlags  uintptr  // quick way: clone flags; inChild: unshared by nsenter
	threadJoins []nsJoin // quick way: setns on the parent's locked thread
	initJoins   []nsJoin // setns in nsenter's constructor
	newCgroupNS bool
	newTimeNS   bool
	newUser     bool
	newMount    bool
	joinMount   bool
	joinUser    bool
	joinPid     bool
	// pidPath is the joined pid namespace; with lateFork, init joins it.
	pidPath string
}

// lateFork says init sets the container's root up outside the joined pid
// namespace and forks into it after (see above).
func (p *nsPlan) lateFork() bool {
	return p.inChild && p.joinPid && p.newMount && !p.newUser && !p.joinUser
}

// hostMountNS says the container shares the runtime's mount namespace.
func (p *nsPlan) hostMountNS() bool { return !p.newMount && !p.joinMount }

// forks says nsenter forks the process that goes on: it must be created
// inside the pid namespace that was joined or made.
// With lateFork, init does, later.
func (p *nsPlan) forks() bool {
	return p.inChild && !p.lateFork() && (p.joinPid || p.cloneFlags&unix.CLONE_NEWPID != 0)
}

type nsJoin struct {
	kind specs.LinuxNamespaceType
	path string
}

func planNamespaces(list []specs.LinuxNamespace) (*nsPlan, error) {
	p := &nsPlan{}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range list {
		flag, ok := nsFlags[ns.Type]
		if !ok {
			return nil, fmt.Errorf("unknown namespace type %q in linux.namespaces", ns.Type)
		}
		if seen[ns.Type] {
			return nil, fmt.Errorf("namespace %q is listed twice in linux.namespaces", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if _, err := os.Stat(ns.Path); err != nil {
				return nil, fmt.Errorf("namespace %s path: %w", ns.Type, err)
			}
			p.addJoin(nsJoin{ns.Type, ns.Path})
			continue
		}
		switch ns.Type {
		case specs.CgroupNamespace:
			p.newCgroupNS = true
		case specs.TimeNamespace:
			p.newTimeNS = true
		default:
			p.cloneFlags |= flag
		}
		p.newUser = p.newUser || ns.Type == specs.UserNamespace
		p.newMount = p.newMount || ns.Type == specs.MountNamespace
	}
	joins := len(p.threadJoins)+len(p.initJoins) > 0
	if p.joinPid || p.joinUser || (p.newUser && joins) {
		p.inChild = true
		p.initJoins = append(p.initJoins, p.threadJoins...)
		p.threadJoins = nil
	}
	if p.lateFork() {
		p.initJoins = slices.DeleteFunc(p.initJoins, func(j nsJoin) bool { return j.kind == specs.PIDNamespace })
	}
	return p, nil
}

func (p *nsPlan) addJoin(j nsJoin) {
	switch j.kind {
	case specs.UserNamespace:
		p.joinUser = true
		p.initJoins = append(p.initJoins, j)
	case specs.MountNamespace, specs.TimeNamespace, specs.CgroupNamespace:
		p.joinMount = p.joinMount || j.kind == specs.MountNamespace
		p.initJoins = append(p.initJoins, j)
	case specs.PIDNamespace:
		p.joinPid, p.pidPath = true, j.path
		p.threadJoins = append(p.threadJoins, j)
	default:
		p.threadJoins = append(p.threadJoins, j)
	}
}

// childEnv is what nsenter's constructor is told to do.
func (p *nsPlan) childEnv() []string {
	var env []string
	if len(p.initJoins) > 0 {
		parts := make([]string, 0, len(p.initJoins))
		for _, j := range p.initJoins {
			parts = append(parts, nsKindNames[j.kind]+":"+j.path)
		}
		env = append(env, nsenter.EnvJoin+"="+strings.Join(parts, ","))
	}
	if p.inChild && p.cloneFlags != 0 {
		env = append(env, nsenter.EnvUnshare+"="+strconv.FormatUint(uint64(p.cloneFlags), 10))
	}
	return env
}

// goCloneFlags are the flags Go clones the process with.
func (p *nsPlan) goCloneFlags() uintptr {
	if p.inChild {
		return 0
	}
	return p.cloneFlags
}

// onJoinedThread runs fn on an OS thread that has joined the namespaces
// that the kernel lets a single thread join (net, ipc, uts).
// A process forked from that thread starts inside them. The thread is never
// unlocked, so Go throws it away afterwards instead of reusing a thread that
// lives in the container's namespaces (offMainThread: never the main one).
func (p *nsPlan) onJoinedThread(fn func() error) error {
	if len(p.threadJoins) == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go offMainThread(func() {
		for _, j := range p.threadJoins {
			if err := setnsPath(j.path, nsFlags[j.kind]); err != nil {
				errc <- fmt.Errorf("join %s namespace %s: %w", j.kind, j.path, err)
				return
			}
		}
		errc <- fn()
	})
	return <-errc
}

// offMainThread runs fn locked to a thread that ends with it, so fn may
// change the thread's namespaces. Never on the main thread: Go parks that
// one instead of ending it, in whatever namespaces fn left it, and
// /proc/self is the main thread's: the runtime (the shim, which serves
// many containers) would take those namespaces for its own ever after,
// when it compares a container's with its own (exec, validate).
func offMainThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		fn()
		return // no UnlockOSThread: the thread ends with this goroutine
	}
	// Held by this goroutine, the main thread runs no other one: the next
	// goroutine starts on another thread.
	done := make(chan struct{})
	go func() {
		defer close(done)
		offMainThread(fn)
	}()
	<-done
	runtime.UnlockOSThread()
}

func setnsPath(path string, flag uintptr) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, int(flag))
}
