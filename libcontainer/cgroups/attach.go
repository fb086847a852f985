package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
func OpenEntry(m Manager) (*Entry, error) {
	switch m := m.(type) {
	case *v2Manager:
		fd, err := unix.Open(m.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("cgroups: open %s: %w", m.dir, err)
		}
		return &Entry{Dir: os.NewFile(uintptr(fd), m.dir)}, nil
	case *v1Manager:
		e := &Entry{}
		for _, s := range m.cg.Subsystems() {
			dir, ok := m.dir(s.Name())
			if !ok {
				continue
			}
			f, err := os.OpenFile(filepath.Join(dir, "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
			if errors.Is(err, os.ErrNotExist) {
				// A hierarchy the library lists but that holds no dir for
				// this cgroup: the parent's move skipped it too.
				continue
			}
			if err != nil {
				e.Close()
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
	return nil, fmt.Errorf("cgroups: no way into a cgroup managed by %T", m)
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
