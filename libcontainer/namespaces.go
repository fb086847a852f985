package libcontainer

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/nsenter"
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// nsPlan says how init gets each namespace: new ones are made by clone (or,
// for cgroup and time, by init itself), joins happen on the parent's
// thread before clone where the kernel allows it per thread, and in the
// C constructor for mnt, user and time (they need a single thread) and
// cgroup: a thread in the container's cgroup namespace cannot clone into
// the container's v2 cgroup (CLONE_INTO_CGROUP fails with ENOENT under
// nsdelegate: the runtime's own cgroup is out of that namespace's sight),
// so the process joins that namespace once it is in the cgroup.
type nsPlan struct {
	cloneFlags  uintptr
	newCgroupNS bool
	newTimeNS   bool
	threadJoins []nsJoin // setns on the parent's locked thread
	initJoins   []nsJoin // setns in init's constructor, user first
	newUser     bool
	newMount    bool
	joinMount   bool
}

// hostMountNS says the container shares the runtime's mount namespace.
func (p *nsPlan) hostMountNS() bool { return !p.newMount && !p.joinMount }

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
			j := nsJoin{ns.Type, ns.Path}
			switch ns.Type {
			case specs.UserNamespace:
				p.initJoins = append([]nsJoin{j}, p.initJoins...)
			case specs.MountNamespace, specs.TimeNamespace, specs.CgroupNamespace:
				p.initJoins = append(p.initJoins, j)
				p.joinMount = p.joinMount || ns.Type == specs.MountNamespace
			default:
				p.threadJoins = append(p.threadJoins, j)
			}
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
	return p, nil
}

// joinEnv is the _BERTH_NSJOIN value for init's constructor.
func (p *nsPlan) joinEnv() string {
	if len(p.initJoins) == 0 {
		return ""
	}
	kinds := map[specs.LinuxNamespaceType]string{specs.UserNamespace: "user", specs.MountNamespace: "mnt", specs.TimeNamespace: "time", specs.CgroupNamespace: "cgroup"}
	parts := make([]string, 0, len(p.initJoins))
	for _, j := range p.initJoins {
		parts = append(parts, kinds[j.kind]+":"+j.path)
	}
	return nsenter.EnvJoin + "=" + strings.Join(parts, ",")
}

// onJoinedThread runs fn on an OS thread that has joined the namespaces
// that the kernel lets a single thread join (net, ipc, uts, pid).
// A process forked from that thread starts inside them. The thread is never
// unlocked, so Go throws it away afterwards instead of reusing a thread that
// lives in the container's namespaces.
func (p *nsPlan) onJoinedThread(fn func() error) error {
	if len(p.threadJoins) == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, j := range p.threadJoins {
			if err := setnsPath(j.path, nsFlags[j.kind]); err != nil {
				errc <- fmt.Errorf("join %s namespace %s: %w", j.kind, j.path, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

func setnsPath(path string, flag uintptr) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, int(flag))
}
