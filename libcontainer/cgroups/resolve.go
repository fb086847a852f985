package cgroups

import "github.com/moby/sys/mountinfo"

// Resolve gives the Path() that New(id, cgroupsPath, ...) will make, without
// making anything: create records it before the cgroup exists, so that a
// create killed midway leaves a state from which delete can Load and
// remove the cgroup.
func Resolve(id, cgroupsPath string) (string, error) {
	// An absolute path (or the default) is the same in every hierarchy:
	// no need to read the mount table for it.
	if p, relative, err := target(id, cgroupsPath); err != nil || !relative {
		return p, err
	}
	if IsV2() {
		return resolveV2(id, cgroupsPath, readSelfCgroup, hostMountRoots(mountinfo.FSTypeFilter("cgroup2")))
	}
	cfg, roots, err := hostV1Layout()
	if err != nil {
		return "", err
	}
	paths, err := resolveV1(id, cgroupsPath, readSelfCgroup, roots)
	if err != nil {
		return "", err
	}
	return paths.only(cfg.hierarchyNames(cfg.subsystems())).encode(), nil
}
