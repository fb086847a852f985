// Package cgroups is Berth's cgroup manager (the "cgroupfs" driver): it puts a
// container's processes into a cgroup and applies the OCI resource limits.
//
// The kernel work is done by github.com/containerd/cgroups/v3 (package cgroup1
// for the legacy and hybrid layouts, cgroup2 for the unified one). This package
// decides where the cgroup lives (runc's cgroupsPath rules), picks the v1
// hierarchies to use, and fills the gaps where the library is wrong or silent
// for an OCI runtime; each such place says why in its comment.
package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager is one container's cgroup.
type Manager interface {
	// Add moves a process into the cgroup (every v1 hierarchy / the v2 group).
	Add(pid int) error
	// Set applies or updates resource limits.
	Set(res *specs.LinuxResources) error
	// Delete removes the cgroup directories in every hierarchy, and the
	// default parent "/berth" once no container is left in it. It succeeds
	// if they are gone.
	Delete() error
	// Path is the resolved cgroup path, the value Load takes. It is an
	// absolute path such as "/berth/abc" whenever the cgroup has the same path
	// in every hierarchy (always on v2). A relative cgroupsPath on v1 can
	// resolve to different paths per hierarchy; Path then returns them all as
	// "ctrl:/path;ctrl:/path" so that Load can reopen exactly the same dirs.
	Path() string
	// Procs lists the pids directly in the cgroup (not in child cgroups).
	Procs() ([]int, error)
	// Freeze stops every process in the cgroup (v1 freezer / v2 cgroup.freeze).
	Freeze() error
	// Thaw resumes the processes stopped by Freeze.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Stats reads the cgroup's resource usage.
	Stats() (*Stats, error)
	// NotifyOOM reports each time the cgroup runs out of memory, until ctx
	// ends or the cgroup is gone (v2: has no process left); then the
	// channel is closed, after the OOMs signalled before the end are
	// delivered. The caller must read it until it is closed. It fails
	// with ErrControllerMissing when the cgroup has no memory controller.
	NotifyOOM(ctx context.Context) (<-chan struct{}, error)
}

var (
	// ErrNotExist is wrapped by Load when the cgroup is already gone, so a
	// caller tearing a container down can tell "nothing to delete" from a
	// real failure. errors.Is(err, fs.ErrNotExist) holds as well.
	ErrNotExist = fmt.Errorf("cgroup does not exist: %w", fs.ErrNotExist)
	// ErrControllerMissing is wrapped when a resource is requested whose
	// controller the host does not provide; the message names the controller.
	ErrControllerMissing = errors.New("cgroup controller not available")
)

// unifiedMountpoint is where a pure cgroup v2 host mounts the hierarchy.
const unifiedMountpoint = "/sys/fs/cgroup"

// IsV2 reports whether the host runs the pure unified (cgroup v2) hierarchy.
// Hybrid hosts report false: Berth uses their v1 hierarchies, like runc.
func IsV2() bool {
	return cgroups.Mode() == cgroups.Unified
}

// New creates the cgroup for cgroupsPath and applies res (res may be nil).
//
// cgroupsPath follows runc's cgroupfs driver: "" means "/berth/<id>"; an
// absolute path is relative to the root of each hierarchy; a relative path is
// relative to the calling process's own cgroup (per hierarchy on v1).
func New(id, cgroupsPath string, res *specs.LinuxResources) (Manager, error) {
	// A concurrent Delete may remove the default parent between its
	// creation and our leaf's: that shows as ENOENT, and a retry makes it
	// again.
	var err error
	for try := 0; try < 3; try++ {
		var m Manager
		if m, err = create(id, cgroupsPath, res); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				slog.Debug("cgroup created", "id", id, "path", m.Path(), "v2", IsV2())
			}
			return m, err
		}
	}
	return nil, err
}

// removeDefaultParents removes the "/berth" parent of each leaf dir when it
// is empty; a parent still holding other containers stays (rmdir fails).
func removeDefaultParents(leaves []string) {
	for _, d := range leaves {
		os.Remove(filepath.Dir(d))
	}
}

func create(id, cgroupsPath string, res *specs.LinuxResources) (Manager, error) {
	if IsV2() {
		group, err := resolveV2(id, cgroupsPath, readSelfCgroup, hostMountRoots(mountinfo.FSTypeFilter("cgroup2")))
		if err != nil {
			return nil, err
		}
		return asManager(newV2(unifiedMountpoint, group, res))
	}
	cfg, roots, err := hostV1Layout()
	if err != nil {
		return nil, err
	}
	paths, err := resolveV1(id, cgroupsPath, readSelfCgroup, roots)
	if err != nil {
		return nil, err
	}
	return asManager(newV1(cfg, paths, res))
}

// Load reopens an existing cgroup from the Path() value saved in the
// container state. It fails with an error wrapping ErrNotExist if the cgroup
// has been removed from every hierarchy.
func Load(path string) (Manager, error) {
	if IsV2() {
		return asManager(loadV2(unifiedMountpoint, path))
	}
	cfg, err := hostV1Config()
	if err != nil {
		return nil, err
	}
	paths, err := decodePaths(path)
	if err != nil {
		return nil, err
	}
	return asManager(loadV1(cfg, paths))
}

// asManager keeps a failed constructor's nil pointer from turning into a
// non-nil Manager interface.
func asManager[M Manager](m M, err error) (Manager, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}

// readSelfCgroup is the production source of /proc/self/cgroup; the path
// resolution tests pass their own.
func readSelfCgroup() ([]byte, error) {
	return os.ReadFile("/proc/self/cgroup")
}

// hostV1Config finds the directory holding the v1 hierarchy mounts and, on
// a hybrid host, the cgroup2 mount beside them. The library's
// cgroup1.Default finds the first too, but privately and with no way to
// point it elsewhere, which the fake-tree tests need.
func hostV1Config() (v1Config, error) {
	cfg, _, err := hostV1Layout()
	return cfg, err
}

// hostV1Layout is hostV1Config and the v1 hierarchies' hostMountRoots, from one
// read of the mount table (a host's can be long; create needs both).
func hostV1Layout() (v1Config, map[string]string, error) {
	mode := cgroups.Mode()
	if mode != cgroups.Legacy && mode != cgroups.Hybrid {
		return v1Config{}, nil, fmt.Errorf("cgroups: no cgroup hierarchy mounted at %s", unifiedMountpoint)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return v1Config{}, nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	cfg, err := v1ConfigOf(mode, mounts)
	if err != nil {
		return v1Config{}, nil, err
	}
	v1 := slices.DeleteFunc(slices.Clone(mounts), func(m *mountinfo.Info) bool { return m.FSType != "cgroup" })
	return cfg, mountRoots(v1), nil
}

func v1ConfigOf(mode cgroups.CGMode, mounts []*mountinfo.Info) (v1Config, error) {
	cfg := v1Config{hybrid: mode == cgroups.Hybrid}
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup" && cfg.root == "":
			cfg.root = filepath.Dir(m.Mountpoint)
		case m.FSType == "cgroup2" && cfg.hybrid && cfg.unified == "" && m.Root == "/":
			// Only a mount of the whole hierarchy: a container's view of
			// its own part cannot hold the host's paths.
			cfg.unified = m.Mountpoint
		}
	}
	if cfg.root == "" {
		return v1Config{}, fmt.Errorf("cgroups: no cgroup v1 hierarchy mounted")
	}
	return cfg, nil
}

// hostMountRoots maps each hierarchy ("cpu", "name=systemd"; "" for cgroup2)
// to the cgroup its mount shows as "/". That root is not "/" when a container
// without a cgroup namespace bind-mounts only its own part of the tree, and
// /proc/self/cgroup paths must then be made relative to it. Errors leave the
// map empty: paths are then taken as they are, as on a normal host.
func hostMountRoots(filter mountinfo.FilterFunc) map[string]string {
	mounts, err := mountinfo.GetMounts(filter)
	if err != nil {
		return nil
	}
	return mountRoots(mounts)
}

func mountRoots(mounts []*mountinfo.Info) map[string]string {
	roots := map[string]string{}
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			roots[""] = m.Root
			continue
		}
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			if _, seen := roots[opt]; !seen {
				roots[opt] = m.Root
			}
		}
	}
	return roots
}
