package cgroups

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
)

// defaultParent holds the cgroups of containers whose spec leaves
// cgroupsPath empty, so they are easy to find and never mix with the host's.
const defaultParent = "/berth"

// cgroupPaths says where a container's cgroup is, as paths below each
// hierarchy's root. Usually one path serves every hierarchy (all). A relative
// cgroupsPath on v1 is joined to the caller's own cgroup in each hierarchy, and
// those can differ (this host runs its processes in a memory cgroup of their
// own), so then per holds one path per v1 hierarchy.
type cgroupPaths struct {
	all string
	per map[string]string // key: cgroup1 subsystem name ("cpu", "systemd")
}

// lookup is the cgroup1.Path the library calls for every subsystem; a
// hierarchy we have no path for is reported as not active, which the
// manager's init check skips.
func (p cgroupPaths) lookup(name cgroup1.Name) (string, error) {
	if p.per == nil {
		return p.all, nil
	}
	if v, ok := p.per[string(name)]; ok {
		return v, nil
	}
	return "", cgroup1.ErrControllerNotActive
}

// only drops the hierarchies Berth does not use, then collapses per into all
// when the rest agree, so Path() stays a plain path whenever it can.
func (p cgroupPaths) only(names []string) cgroupPaths {
	if p.per == nil {
		return p
	}
	kept := map[string]string{}
	for _, n := range names {
		if v, ok := p.per[n]; ok {
			kept[n] = v
		}
	}
	first, same := "", true
	for _, v := range kept {
		if first == "" {
			first = v
		}
		same = same && v == first
	}
	if same && first != "" {
		return cgroupPaths{all: first}
	}
	return cgroupPaths{per: kept}
}

// encode is the Path() string: the plain path, or "ctrl:/path;..." sorted.
func (p cgroupPaths) encode() string {
	if p.per == nil {
		return p.all
	}
	keys := make([]string, 0, len(p.per))
	for k := range p.per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + p.per[k]
	}
	return strings.Join(parts, ";")
}

// decodePaths parses what encode produced (Load's argument).
func decodePaths(s string) (cgroupPaths, error) {
	if strings.HasPrefix(s, "/") {
		if err := checkCgroupPath(s); err != nil {
			return cgroupPaths{}, err
		}
		return cgroupPaths{all: s}, nil
	}
	per := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, ":")
		if !ok || k == "" {
			return cgroupPaths{}, fmt.Errorf("cgroups: invalid cgroup path %q", s)
		}
		if err := checkCgroupPath(v); err != nil {
			return cgroupPaths{}, err
		}
		per[k] = v
	}
	return cgroupPaths{per: per}, nil
}

// checkCgroupPath refuses paths that are not clean absolute cgroup paths, and
// the root cgroup itself: a container must never manage (or delete) the root.
func checkCgroupPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("cgroups: invalid cgroup path %q: not a clean absolute path", p)
	}
	if p == "/" {
		return fmt.Errorf("cgroups: invalid cgroup path %q: the root cgroup cannot be a container's", p)
	}
	if strings.ContainsAny(p, ";\n") {
		return fmt.Errorf("cgroups: invalid cgroup path %q: contains ';' or a newline", p)
	}
	return nil
}

// target applies the parts of runc's rules that do not depend on the
// hierarchy: the default path for "", cleaning, and refusing relative paths
// that climb out of the caller's cgroup.
func target(id, cgroupsPath string) (path string, relative bool, err error) {
	switch {
	case cgroupsPath == "":
		if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
			return "", false, fmt.Errorf("cgroups: container id %q cannot name a cgroup", id)
		}
		return defaultParent + "/" + id, false, nil
	case filepath.IsAbs(cgroupsPath):
		p := filepath.Clean(cgroupsPath)
		return p, false, checkCgroupPath(p)
	case isSystemdPath(cgroupsPath):
		return "", false, fmt.Errorf("cgroups: cgroupsPath %q is in systemd's \"slice:prefix:name\" form, which needs "+
			"a systemd cgroup driver, and berth-runtime has only the cgroupfs one: give a path such as \"/berth/<id>\"", cgroupsPath)
	default:
		p := filepath.Clean(cgroupsPath)
		if p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return "", false, fmt.Errorf("cgroups: relative cgroup path %q leaves the caller's cgroup", cgroupsPath)
		}
		return p, true, nil
	}
}

// isSystemdPath reports whether a relative cgroupsPath has systemd's form
// "slice:prefix:name" (the slice may be empty, as in ":cri-containerd:id").
// The cgroupfs rules would take it as a directory name with colons in the
// caller's cgroup, which is not what its writer meant.
func isSystemdPath(p string) bool {
	parts := strings.Split(p, ":")
	return len(parts) == 3 && !strings.Contains(p, "/") && parts[1] != "" && parts[2] != ""
}

// ownCgroups parses /proc/self/cgroup (through readSelf, so tests can give
// their own) into v1 paths keyed like cgroup1 names subsystems ("name=systemd"
// becomes "systemd") and the v2 path. Paths are made relative to the mount
// roots, which differ from "/" where only part of the tree is mounted.
func ownCgroups(readSelf func() ([]byte, error), roots map[string]string) (map[string]string, string, error) {
	data, err := readSelf()
	if err != nil {
		return nil, "", fmt.Errorf("cgroups: read own cgroup: %w", err)
	}
	v1, unified, err := cgroups.ParseCgroupFromReaderUnified(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("cgroups: parse own cgroup: %w", err)
	}
	out := make(map[string]string, len(v1))
	for k, p := range v1 {
		out[strings.TrimPrefix(k, "name=")] = underRoot(p, roots[k])
	}
	return out, underRoot(unified, roots[""]), nil
}

// underRoot rebases p onto a mount whose root is root.
func underRoot(p, root string) string {
	if root == "" || root == "/" {
		return p
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return filepath.Join("/", rel)
}

// resolveV2 gives the cgroup v2 group path for cgroupsPath.
func resolveV2(id, cgroupsPath string, readSelf func() ([]byte, error), roots map[string]string) (string, error) {
	p, relative, err := target(id, cgroupsPath)
	if err != nil || !relative {
		return p, err
	}
	_, own, err := ownCgroups(readSelf, roots)
	if err != nil {
		return "", err
	}
	if own == "" {
		return "", fmt.Errorf("cgroups: no cgroup v2 entry in /proc/self/cgroup")
	}
	p = filepath.Join(own, p)
	return p, checkCgroupPath(p)
}

// resolveV1 gives the path of the cgroup in each v1 hierarchy, and in the
// unified one beside them (key unifiedKey).
func resolveV1(id, cgroupsPath string, readSelf func() ([]byte, error), roots map[string]string) (cgroupPaths, error) {
	p, relative, err := target(id, cgroupsPath)
	if err != nil || !relative {
		return cgroupPaths{all: p}, err
	}
	own, unified, err := ownCgroups(readSelf, roots)
	if err != nil {
		return cgroupPaths{}, err
	}
	if len(own) == 0 {
		return cgroupPaths{}, fmt.Errorf("cgroups: no cgroup v1 entry in /proc/self/cgroup")
	}
	if unified != "" {
		// A hybrid host's unified hierarchy (newV1 drops it elsewhere).
		own[unifiedKey] = unified
	}
	per := make(map[string]string, len(own))
	for k, parent := range own {
		per[k] = filepath.Join(parent, p)
		if err := checkCgroupPath(per[k]); err != nil {
			return cgroupPaths{}, err
		}
	}
	return cgroupPaths{per: per}, nil
}
