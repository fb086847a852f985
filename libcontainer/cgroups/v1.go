package cgroups

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Config describes the v1 layout a manager works on. Production uses the
// host's; tests point root at a fake tree.
type v1Config struct {
	// root holds one mount per hierarchy: root/cpu, root/memory, ...
	root string
	// hybrid is set when cgroup2 is mounted beside the v1 hierarchies. A
	// controller the host only attached to the unified hierarchy (hugetlb on
	// the CI host) is then skipped instead of failing the container.
	hybrid bool
	// unified is the cgroup2 mount of a hybrid host ("" if none). The
	// container gets a cgroup there too, at the same path, as runc does:
	// systemd and other tools on such hosts track processes by their
	// unified cgroup, and would otherwise count the container's as the
	// caller's. It holds no limits (they are all set on v1).
	unified string
}

// unifiedKey names the unified hierarchy in cgroupPaths.per.
const unifiedKey = "unified"

// pather is the part of the library's (unexported) subsystem types that maps
// a cgroup path to its directory.
type pather interface {
	Path(path string) string
}

// subsystems lists the hierarchies to use. It is cgroup1.Default rebuilt
// because Default cannot be given a root (tests need a fake one) and refuses
// to start when /sys/kernel/mm/hugepages is missing. Like Default it keeps only
// hierarchies mounted as root/<name>, which leaves out the cgroup2 mount of a
// hybrid host (root/unified) and keeps name=systemd (root/systemd) the way
// runc joins it.
func (c v1Config) subsystems() []cgroup1.Subsystem {
	all := []cgroup1.Subsystem{
		cgroup1.NewNamed(c.root, "systemd"),
		cgroup1.NewFreezer(c.root),
		cgroup1.NewPids(c.root),
		cgroup1.NewNetCls(c.root),
		cgroup1.NewNetPrio(c.root),
		cgroup1.NewPerfEvent(c.root),
		cpusetUpdates{cgroup1.NewCpuset(c.root)},
		cgroup1.NewCpu(c.root),
		cgroup1.NewCpuacct(c.root),
		cgroup1.NewMemory(c.root, cgroup1.OptionalSwap()),
		cgroup1.NewBlkio(c.root),
		cgroup1.NewRdma(c.root),
	}
	// Device rules cannot be written from inside a user namespace.
	if !userns.RunningInUserNS() {
		all = append(all, cgroup1.NewDevices(c.root))
	}
	if h, err := cgroup1.NewHugetlb(c.root); err == nil {
		all = append(all, h)
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		if _, err := os.Lstat(s.(pather).Path("/")); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// cpusetSubsystem is what the library calls on its cpuset subsystem.
type cpusetSubsystem interface {
	cgroup1.Subsystem
	Path(path string) string
	Create(path string, res *specs.LinuxResources) error
	Update(path string, res *specs.LinuxResources) error
}

// cpusetUpdates is the library's cpuset subsystem, less the work its
// Update does when there is nothing to write: Update is its Create, which
// walks up the tree reading (and copying down where empty) cpuset.cpus
// and cpuset.mems of every parent. Create has done that once already, and
// every create of a container sets its resources after making the cgroup.
type cpusetUpdates struct{ cpusetSubsystem }

func (c cpusetUpdates) Update(path string, res *specs.LinuxResources) error {
	if res == nil || res.CPU == nil || (res.CPU.Cpus == "" && res.CPU.Mems == "") {
		return nil
	}
	return c.cpusetSubsystem.Update(path, res)
}

// v1Manager is a Manager on the v1 hierarchies.
type v1Manager struct {
	cfg   v1Config
	paths cgroupPaths
	cg    cgroup1.Cgroup
}

// allowAny lets the library skip hierarchies that have no path for this
// cgroup; its default refuses to work without the devices hierarchy, and a
// missing controller is reported by Set only when a resource needs it.
func allowAny(c *cgroup1.InitConfig) error {
	c.InitCheck = cgroup1.AllowAny
	return nil
}

func v1Options(subs []cgroup1.Subsystem) []cgroup1.InitOpts {
	return []cgroup1.InitOpts{
		cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return subs, nil }),
		allowAny,
	}
}

func subsystemNames(subs []cgroup1.Subsystem) []string {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = string(s.Name())
	}
	return names
}

// newV1 creates the cgroup in every hierarchy, then applies res. The library
// creates the directories (and copies cpuset.cpus/mems down from the parents,
// which a v1 cpuset cgroup needs before a process can join); the resources go
// through Set so creation and update share one code path. If the cgroup did
// not exist before and anything fails, it is removed again.
func newV1(cfg v1Config, paths cgroupPaths, res *specs.LinuxResources) (*v1Manager, error) {
	subs := cfg.subsystems()
	if len(subs) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup v1 hierarchy found under %s", cfg.root)
	}
	paths = paths.only(cfg.hierarchyNames(subs))
	existed := v1Exists(subs, paths)
	m := &v1Manager{cfg: cfg, paths: paths}
	undo := func() {
		if !existed {
			removeV1Dirs(subs, paths)
			if d, ok := m.unifiedDir(); ok {
				os.Remove(d)
			}
		}
	}
	var err error
	if m.cg, err = cgroup1.New(paths.lookup, &specs.LinuxResources{}, v1Options(subs)...); err != nil {
		undo()
		return nil, fmt.Errorf("cgroups: create %s under %s: %w", paths.encode(), cfg.root, err)
	}
	if d, ok := m.unifiedDir(); ok {
		if err := os.MkdirAll(d, 0o755); err != nil {
			undo()
			return nil, fmt.Errorf("cgroups: create %s in the unified hierarchy of this hybrid host: %w", paths.encode(), err)
		}
		slog.Debug("cgroup in the unified hierarchy beside v1 (hybrid host)", "dir", d)
	}
	if res != nil {
		if err := m.Set(res); err != nil {
			undo()
			return nil, err
		}
	}
	return m, nil
}

// hierarchyNames are the keys of the hierarchies a cgroup has a directory
// in: the subsystems', and on a hybrid host the unified one. Resolve and
// New must agree on them, or the path create records first is not the
// one it makes.
func (c v1Config) hierarchyNames(subs []cgroup1.Subsystem) []string {
	names := subsystemNames(subs)
	if c.unified != "" {
		names = append(names, unifiedKey)
	}
	return names
}

// unifiedDir is the cgroup's directory in a hybrid host's unified
// hierarchy, if the host has one.
func (m *v1Manager) unifiedDir() (string, bool) {
	if m.cfg.unified == "" {
		return "", false
	}
	p, err := m.paths.lookup(unifiedKey)
	if err != nil {
		return "", false
	}
	return filepath.Join(m.cfg.unified, p), true
}

// loadV1 reopens a cgroup created earlier; hierarchies where it is gone are
// left out, and if it is gone from all of them Load reports ErrNotExist.
func loadV1(cfg v1Config, paths cgroupPaths) (*v1Manager, error) {
	subs := cfg.subsystems()
	cg, err := cgroup1.Load(paths.lookup, v1Options(subs)...)
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("cgroups: load %s: %w", paths.encode(), ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: load %s: %w", paths.encode(), err)
	}
	return &v1Manager{cfg: cfg, paths: paths, cg: cg}, nil
}

// v1Exists reports whether the cgroup already has a directory somewhere.
func v1Exists(subs []cgroup1.Subsystem, paths cgroupPaths) bool {
	for _, s := range subs {
		if p, err := paths.lookup(s.Name()); err == nil {
			if _, err := os.Stat(s.(pather).Path(p)); err == nil {
				return true
			}
		}
	}
	return false
}

// removeV1Dirs undoes a failed New. Best effort: the error that made New
// fail is the one worth reporting.
func removeV1Dirs(subs []cgroup1.Subsystem, paths cgroupPaths) {
	for _, s := range subs {
		if p, err := paths.lookup(s.Name()); err == nil {
			os.Remove(s.(pather).Path(p))
		}
	}
}

func (m *v1Manager) Path() string { return m.paths.encode() }

// dir returns the directory of the cgroup in hierarchy name, if the manager
// uses that hierarchy.
func (m *v1Manager) dir(name cgroup1.Name) (string, bool) {
	for _, s := range m.cg.Subsystems() {
		if s.Name() != name {
			continue
		}
		p, err := m.paths.lookup(name)
		if err != nil {
			return "", false
		}
		return s.(pather).Path(p), true
	}
	return "", false
}

func (m *v1Manager) Add(pid int) error {
	if err := m.cg.Add(cgroup1.Process{Pid: pid}); err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, m.Path(), err)
	}
	// A cgroup made before Berth used the unified hierarchy has no dir
	// there: leave it as it was made.
	if d, ok := m.unifiedDir(); ok && exists(d) {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("cgroups: add pid %d to %s in the unified hierarchy: %w", pid, m.Path(), err)
		}
	}
	return nil
}

// Delete removes the leaf in every hierarchy. The library reports a second
// Delete as ErrCgroupDeleted and skips hierarchies where the dir is gone,
// which is the "already gone is fine" the runtime wants.
func (m *v1Manager) Delete() error {
	var dirs []string
	for _, s := range m.cg.Subsystems() {
		if d, ok := m.dir(s.Name()); ok {
			dirs = append(dirs, d)
		}
	}
	unified, hasUnified := m.unifiedDir()
	if hasUnified {
		dirs = append(dirs, unified)
	}
	// A plain rmdir of each leaf is all it takes when the cgroup has no
	// children, the usual case, and is much cheaper than the library's
	// walk, which only the nested case needs.
	if !rmdirAll(dirs) {
		err := m.cg.Delete()
		if err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return fmt.Errorf("cgroups: delete %s: %w", m.Path(), err)
		}
		if hasUnified {
			if err := unix.Rmdir(unified); err != nil && err != unix.ENOENT {
				return fmt.Errorf("cgroups: delete %s in the unified hierarchy: %w", unified, err)
			}
		}
	}
	if filepath.Dir(m.paths.all) == defaultParent {
		removeDefaultParents(dirs)
	}
	return nil
}

// rmdirAll removes each directory, and reports whether all are gone.
func rmdirAll(dirs []string) bool {
	ok := true
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			ok = false
		}
	}
	return ok
}

// procsOrder is the hierarchy Procs reads: any joined one would do, pids and
// memory come first because runtimes always join them.
var procsOrder = []cgroup1.Name{cgroup1.Pids, cgroup1.Memory, cgroup1.Freezer, cgroup1.Cpu, cgroup1.Devices}

func (m *v1Manager) Procs() ([]int, error) {
	name := cgroup1.Name("")
	for _, n := range procsOrder {
		if _, ok := m.dir(n); ok {
			name = n
			break
		}
	}
	if name == "" && len(m.cg.Subsystems()) > 0 {
		name = m.cg.Subsystems()[0].Name()
	}
	procs, err := m.cg.Processes(name, false)
	if err != nil {
		return nil, fmt.Errorf("cgroups: list processes of %s (%s): %w", m.Path(), name, err)
	}
	pids := make([]int, 0, len(procs))
	for _, p := range procs {
		pids = append(pids, p.Pid)
	}
	return pids, nil
}

func (m *v1Manager) Freeze() error {
	if err := m.cg.Freeze(); err != nil {
		return fmt.Errorf("cgroups: freeze %s: %w", m.Path(), err)
	}
	return nil
}

func (m *v1Manager) Thaw() error {
	if err := m.cg.Thaw(); err != nil {
		return fmt.Errorf("cgroups: thaw %s: %w", m.Path(), err)
	}
	return nil
}

// Frozen reads freezer.state itself: the library's State() turns read errors
// into "unknown", and the caller should see why.
func (m *v1Manager) Frozen() (bool, error) {
	dir, ok := m.dir(cgroup1.Freezer)
	if !ok {
		return false, fmt.Errorf("cgroups: %s: freezer: %w", m.Path(), ErrControllerMissing)
	}
	b, err := os.ReadFile(dir + "/freezer.state")
	if err != nil {
		return false, fmt.Errorf("cgroups: read freezer state of %s: %w", m.Path(), err)
	}
	return strings.TrimSpace(string(b)) == "FROZEN", nil
}

// readInt reads a single-number control file.
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}
