package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// PrimeAttach starts, in the background, the kernel's slow part of the
// first cgroup move of a v1 process. Every write to cgroup.procs takes
// the global cgroup_threadgroup_rwsem for writing; the first writer after
// a quiet spell waits for a full RCU grace period (16 ms measured on the
// CI machine), later ones within the next grace period are fast (30 µs).
// Moving this process into the cgroup it is already in costs nothing
// else, and running it while the caller parses the config, makes the
// cgroup and starts init hides that wait instead of paying it in Add.
// On v2 nothing is needed: init is cloned straight into its cgroup.
func PrimeAttach() {
	if IsV2() {
		return
	}
	go func() {
		own, _, err := ownCgroups(readSelfCgroup, hostMountRoots(mountinfo.FSTypeFilter("cgroup")))
		if err != nil {
			return
		}
		for _, ctrl := range []string{"pids", "freezer", "devices", "memory"} {
			if p, ok := own[ctrl]; ok {
				f := filepath.Join("/sys/fs/cgroup", ctrl, p, "cgroup.procs")
				if os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0) == nil {
					return
				}
			}
		}
	}()
}

// OpenForClone returns the v2 group's directory for clone3's
// CLONE_INTO_CGROUP, so a new process starts inside the cgroup instead of
// being moved there. It returns nil on v1, where Add is the only way.
func OpenForClone(m Manager) (*os.File, error) {
	v2, ok := m.(*v2Manager)
	if !ok {
		return nil, nil
	}
	fd, err := unix.Open(v2.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroups: open %s: %w", v2.dir, err)
	}
	return os.NewFile(uintptr(fd), v2.dir), nil
}
