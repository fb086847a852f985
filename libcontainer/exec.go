package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/libcontainer/validate"
)

// ExecOpts are the inputs of `exec`: a process to start in a running
// container.
type ExecOpts struct {
	Process *specs.Process
	// InitPath is as in CreateOpts: the binary the process starts from.
	InitPath      string
	ConsoleSocket string
	PidFile       string
	PreserveFds   int
	// IgnorePaused lets exec start a process in a paused container; it
	// stays frozen until the container is resumed.
	IgnorePaused bool
	// SubCgroups puts the process in sub-cgroups of the container's,
	// which must exist (runc's exec --cgroup; cgroups.ParseSubCgroups).
	SubCgroups            map[string]string
	Stdin, Stdout, Stderr *os.File
}

// Process is a process that Exec started in a container. The caller is
// its parent and reaps it with Wait.
type Process struct {
	proc *os.Process
}

// Pid is the process's pid as the host sees it.
func (p *Process) Pid() int { return p.proc.Pid }

// Wait waits for the process and returns its exit code as a shell reports
// it: the status, or 128+signal.
func (p *Process) Wait() (int, error) { return waitCode(p.proc) }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.proc.Signal(sig) }

// nsKinds maps /proc/<pid>/ns names to namespace types (nsenter.c picks
// the order it joins them in).
var nsKinds = []struct {
	name string
	typ  specs.LinuxNamespaceType
}{
	{"user", specs.UserNamespace}, {"mnt", specs.MountNamespace}, {"pid", specs.PIDNamespace},
	{"net", specs.NetworkNamespace}, {"ipc", specs.IPCNamespace}, {"uts", specs.UTSNamespace},
	{"cgroup", specs.CgroupNamespace}, {"time", specs.TimeNamespace},
}

// Exec starts a process inside the container: in every namespace of its
// init (user and mount included), in its cgroup, with the credentials,
// capabilities, rlimits and no_new_privs of o.Process. It returns once
// the program has been exec'd, or with the reason it could not be.
func (c *Container) Exec(ctx context.Context, o ExecOpts) (*Process, error) {
	if o.Process == nil || len(o.Process.Args) == 0 {
		return nil, errors.New("exec needs a program to run: give a command or a process.json with args")
	}
	if err := validate.Process(o.Process, validate.Probe()); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.state.ID, err)
	}
	warnProcess(o.Process)
	switch st := c.Status(); {
	case st == Stopped:
		return nil, fmt.Errorf("cannot exec in container %s: it is stopped", c.state.ID)
	case st == Paused && !o.IgnorePaused:
		return nil, fmt.Errorf("cannot exec in container %s: it is paused (resume it, or use --ignore-paused)", c.state.ID)
	}
	plan, err := planNamespaces(c.namespacePaths())
	if err != nil {
		return nil, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.state.ID, err)
	}
	l := &launcher{id: c.state.ID, initPath: o.InitPath, plan: plan, cg: cg, subCgroups: o.SubCgroups, preserveFds: o.PreserveFds,
		consoleSocket: o.ConsoleSocket, terminal: o.Process.Terminal,
		stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	cfg := &initConfig{
		ID: c.state.ID, Exec: true, Bundle: c.state.Bundle, PreserveFds: o.PreserveFds, InitHostPid: c.state.InitPid,
		// The container's seccomp profile and execution domain apply to
		// what is exec'd in it.
		Spec: newWireSpec(&specs.Spec{Process: o.Process, Annotations: spec.Annotations,
			Linux: &specs.Linux{Seccomp: spec.Linux.Seccomp, Personality: spec.Linux.Personality}}),
	}
	if err := l.launch(cfg); err != nil {
		return nil, err
	}
	if err := l.handshake(ctx); err != nil {
		l.kill()
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, l.proc.Pid); err != nil {
			l.kill()
			return nil, err
		}
	}
	return &Process{proc: l.proc}, nil
}

// namespacePaths lists the namespaces of the container's init that differ
// from ours: those are the ones to join.
func (c *Container) namespacePaths() []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	pid := strconv.Itoa(c.state.InitPid)
	for _, k := range nsKinds {
		path := "/proc/" + pid + "/ns/" + k.name
		theirs, err := os.Readlink(path)
		if err != nil {
			continue // a kind this kernel lacks
		}
		if ours, _ := os.Readlink("/proc/self/ns/" + k.name); ours != theirs {
			out = append(out, specs.LinuxNamespace{Type: k.typ, Path: path})
		}
	}
	return out
}

// handshake for exec: the process prepares and execs; the sync socket
// closes (close-on-exec) when the program runs, or carries the reason it
// could not.
func (l *launcher) handshake(ctx context.Context) error {
	_, err := l.conn.recv()
	if errors.Is(err, errInitDied) {
		return nil // the socket closed at exec
	}
	if err == nil {
		err = errors.New("exec: unexpected message from the process")
	}
	return err
}

func (l *launcher) kill() {
	l.proc.Kill()
	l.proc.Wait()
}
