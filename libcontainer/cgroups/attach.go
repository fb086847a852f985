package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is what a new process needs to start out inside the cgroup
// instead of being moved there by its parent. A parent's move (a pid
// written to cgroup.procs) takes the kernel's global
// cgroup_threadgroup_rwsem for writing, and the first writer after a quiet
// spell waits for a full RCU grace period: 8-16 ms measured on v1 hosts
// here, the largest single cost of starting a container.
//
//   - v2: clone3's CLONE_INTO_CGROUP starts the process in the group (Dir).
//   - v1: the process moves itself while it still has one thread, by
//     writing "0" to each hierarchy's tasks file (Tasks) in nsenter's
//     constructor, before the Go runtime starts. The kernel skips the
//     global lock for a thread moving itself, so that costs microseconds.
//     On a hybrid host the unified hierarchy's cgroup is Dir, as on v2:
//     CLONE_INTO_CGROUP takes a cgroup2 directory whatever the v1
//     hierarchies beside it, and a move through cgroup.procs would take
//     the global lock.
//     The files are opened here, by the runtime: the kernel checks the
//     opener's credentials, so a process already in a new user namespace
//     can still use them.
type Entry struct {
	Dir   *os.File
	Tasks []*os.File
}

// OpenEntry opens m's way in for a new process. The caller must Close it
// once the process has started.
func OpenEntry(m Manager) (*Entry, error) { return OpenSubEntry(m, nil) }

// OpenSubEntry is OpenEntry into sub-cgroups of m, as runc's exec --cgroup
// gives them: sub maps a v1 controller's name, or "" for every controller
// (and for v2's one tree), to a path below m's cgroup, which must exist.
// A path that leads out of m's cgroup is refused ("bad sub cgroup path"),
// as is a controller m has no hierarchy for ("unknown controller").
func OpenSubEntry(m Manager, sub map[string]string) (*Entry, error) {
	switch m := m.(type) {
	case *v2Manager:
		for k := range sub {
			if k != "" {
				return nil, fmt.Errorf("cgroups: unknown controller %q: cgroup v2 has one hierarchy, give the sub-cgroup alone", k)
			}
		}
		dir, err := subDir(m.dir, sub[""])
		if err != nil {
			return nil, err
		}
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if sub[""] != "" {
				return nil, fmt.Errorf("cgroups: adding pid to sub-cgroup %s: %w", dir, err)
			}
			return nil, fmt.Errorf("cgroups: open %s: %w", dir, err)
		}
		return &Entry{Dir: os.NewFile(uintptr(fd), dir)}, nil
	case *v1Manager:
		return openV1Entry(m, sub)
	}
	return nil, fmt.Errorf("cgroups: no way into a cgroup managed by %T", m)
}

func openV1Entry(m *v1Manager, sub map[string]string) (*Entry, error) {
	known := map[string]bool{}
	for _, s := range m.cg.Subsystems() {
		known[string(s.Name())] = true
	}
	for k := range sub {
		if k != "" && !known[k] {
			return nil, fmt.Errorf("cgroups: unknown controller %q: the container's cgroup has no hierarchy of that name", k)
		}
	}
	e := &Entry{}
	for _, s := range m.cg.Subsystems() {
		base, ok := m.dir(s.Name())
		if !ok {
			continue
		}
		p, ok := sub[string(s.Name())]
		if !ok {
			p = sub[""]
		}
		dir, err := subDir(base, p)
		if err != nil {
			e.Close()
			return nil, err
		}
		f, err := os.OpenFile(filepath.Join(dir, "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, os.ErrNotExist) && p == "" {
			// A hierarchy the library lists but that holds no dir for
			// this cgroup: the parent's move skipped it too.
			continue
		}
		if err != nil {
			e.Close()
			if p != "" {
				return nil, fmt.Errorf("cgroups: adding pid to sub-cgroup %s: %w", dir, err)
			}
			return nil, fmt.Errorf("cgroups: open %s for a new process: %w", dir, err)
		}
		e.Tasks = append(e.Tasks, f)
	}
	if len(e.Tasks) == 0 {
		return nil, fmt.Errorf("cgroups: %s has no directory in any v1 hierarchy", m.Path())
	}
	if dir, ok := m.unifiedDir(); ok {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			e.Dir = os.NewFile(uintptr(fd), dir)
		case err != unix.ENOENT: // ENOENT: made before Berth used it (see Add)
			e.Close()
			return nil, fmt.Errorf("cgroups: open %s: %w", dir, err)
		}
	}
	return e, nil
}

// subDir is sub below base, refused when it leads out of base ("..",
// a sibling): a process exec'd into a container stays in its cgroup.
func subDir(base, sub string) (string, error) {
	if sub == "" {
		return base, nil
	}
	dir := filepath.Join(base, sub)
	if dir != base && !strings.HasPrefix(dir, base+"/") {
		return "", fmt.Errorf("cgroups: bad sub cgroup path %q: it leads out of the container's cgroup %s", sub, base)
	}
	return dir, nil
}

// ParseSubCgroups reads runc's exec --cgroup values: "PATH" for every
// controller, "CTRL[,CTRL...]:PATH" for those named.
func ParseSubCgroups(values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range values {
		ctrls, path, found := strings.Cut(v, ":")
		if !found {
			ctrls, path = "", v
		}
		if path == "" {
			return nil, fmt.Errorf("--cgroup %q: no sub-cgroup path: want PATH or CONTROLLER[,CONTROLLER]:PATH", v)
		}
		for _, c := range strings.Split(ctrls, ",") {
			if _, dup := out[c]; dup {
				return nil, fmt.Errorf("--cgroup %q: %s given twice", v, orAll(c))
			}
			out[c] = path
		}
	}
	return out, nil
}

func orAll(ctrl string) string {
	if ctrl == "" {
		return "the sub-cgroup of every controller"
	}
	return "controller " + ctrl
}

// Close closes the files; the new process has its own copies.
func (e *Entry) Close() {
	if e == nil {
		return
	}
	if e.Dir != nil {
		e.Dir.Close()
	}
	for _, f := range e.Tasks {
		f.Close()
	}
}
