package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Manager is a Manager on the unified hierarchy. mountpoint is a parameter
// (not always /sys/fs/cgroup) so tests can run it against a fake tree.
type v2Manager struct {
	mountpoint string
	group      string // "/berth/abc"
	dir        string // mountpoint + group
	lib        *cgroup2.Manager
	// toggleErr is why enabling controllers for the group failed, if it
	// did; it explains a later "controller not available".
	toggleErr error
}

// newV2 creates the group, makes every controller of the root available in
// it and applies res. If the group did not exist before and anything fails,
// it is removed again.
func newV2(mountpoint, group string, res *specs.LinuxResources) (*v2Manager, error) {
	if err := checkCgroupPath(group); err != nil {
		return nil, err
	}
	dir := filepath.Join(mountpoint, group)
	existed := exists(dir)
	lib, err := cgroup2.NewManager(mountpoint, group, &cgroup2.Resources{})
	if err != nil {
		return nil, fmt.Errorf("cgroups: create %s: %w", dir, err)
	}
	m := &v2Manager{mountpoint: mountpoint, group: group, dir: dir, lib: lib}
	m.enableControllers()
	if res != nil {
		if err := m.Set(res); err != nil {
			if !existed {
				os.Remove(dir)
			}
			return nil, err
		}
	}
	return m, nil
}

// enableControllers writes every root controller into the subtree_control
// of each ancestor, as runc does. The library only enables the controllers
// the initial resources use, so a later Set of another resource would find
// its files missing. Failure is remembered, not returned: the controllers
// may be enabled already, and Set names any that are really missing.
func (m *v2Manager) enableControllers() {
	ctrls, err := m.lib.RootControllers()
	if err != nil {
		m.toggleErr = err
		return
	}
	if len(ctrls) > 0 {
		m.toggleErr = m.lib.ToggleControllers(ctrls, cgroup2.Enable)
	}
}

// loadV2 reopens an existing group.
func loadV2(mountpoint, group string) (*v2Manager, error) {
	if err := checkCgroupPath(group); err != nil {
		return nil, err
	}
	dir := filepath.Join(mountpoint, group)
	if !exists(dir) {
		return nil, fmt.Errorf("cgroups: load %s: %w", dir, ErrNotExist)
	}
	lib, err := cgroup2.Load(group, cgroup2.WithMountpoint(mountpoint))
	if err != nil {
		return nil, fmt.Errorf("cgroups: load %s: %w", dir, err)
	}
	return &v2Manager{mountpoint: mountpoint, group: group, dir: dir, lib: lib}, nil
}

func (m *v2Manager) Path() string { return m.group }

func (m *v2Manager) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("cgroups: add pid %d to %s: invalid pid", pid, m.dir)
	}
	if err := m.lib.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, m.dir, err)
	}
	return nil
}

// Delete removes the group; a group that is already gone is fine (the
// library would fail walking the missing directory).
func (m *v2Manager) Delete() error {
	if !exists(m.dir) {
		return nil
	}
	if err := m.lib.Delete(); err != nil {
		return fmt.Errorf("cgroups: delete %s: %w", m.dir, err)
	}
	if filepath.Dir(m.group) == defaultParent {
		removeDefaultParents([]string{m.dir})
	}
	return nil
}

func (m *v2Manager) Procs() ([]int, error) {
	procs, err := m.lib.Procs(false)
	if err != nil {
		return nil, fmt.Errorf("cgroups: list processes of %s: %w", m.dir, err)
	}
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = int(p)
	}
	return pids, nil
}

func (m *v2Manager) Freeze() error {
	if err := m.lib.Freeze(); err != nil {
		return fmt.Errorf("cgroups: freeze %s: %w", m.dir, err)
	}
	return nil
}

func (m *v2Manager) Thaw() error {
	if err := m.lib.Thaw(); err != nil {
		return fmt.Errorf("cgroups: thaw %s: %w", m.dir, err)
	}
	return nil
}

// Frozen reads cgroup.freeze, the state Freeze asked for (the library does
// not export its own reader).
func (m *v2Manager) Frozen() (bool, error) {
	b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.freeze"))
	if err != nil {
		return false, fmt.Errorf("cgroups: read freeze state of %s: %w", m.dir, err)
	}
	return strings.TrimSpace(string(b)) == "1", nil
}
