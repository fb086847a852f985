package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/validate"
)

// Update changes the resource limits of a created, running or paused
// container, as `runc update` does. res holds only what changes: it is
// merged into the resources the container has (a field res leaves out
// keeps its value), the result is applied to the live cgroup and saved in
// the container's copy of its config, where later updates find it.
//
// Like runc, Update leaves device rules alone (res.Devices is ignored:
// callers such as containerd send the whole resources block, devices
// included, and rewriting v1 device rules would briefly deny the running
// container its devices). If applying fails, the previous resources are
// applied again so that no half of the update stays, and nothing is saved.
func (c *Container) Update(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if err := checkUpdatable(res); err != nil {
		return fmt.Errorf("update %s: %w", c.state.ID, err)
	}
	unlock, err := c.lockDir()
	if err != nil {
		return err
	}
	defer unlock()
	if c.Status() == Stopped {
		return fmt.Errorf("update %s: %w", c.state.ID, ErrNotRunning)
	}
	spec, err := c.Spec()
	if err != nil {
		return fmt.Errorf("update %s: %w", c.state.ID, err)
	}
	var old *specs.LinuxResources
	if spec.Linux != nil {
		old = spec.Linux.Resources
	}
	merged, err := mergeResources(old, res)
	if err != nil {
		return fmt.Errorf("update %s: %w", c.state.ID, err)
	}
	if err := validate.Resources(merged, validate.Probe()); err != nil {
		return fmt.Errorf("update %s: %w", c.state.ID, err)
	}
	cg, err := c.cgroup()
	if err != nil {
		return fmt.Errorf("update %s: %w", c.state.ID, err)
	}
	if err := cg.Set(withoutDevices(merged)); err != nil {
		if old != nil {
			if rerr := cg.Set(withoutDevices(old)); rerr != nil {
				err = fmt.Errorf("%w (putting the previous limits back failed too: %v)", err, rerr)
			}
		}
		return fmt.Errorf("update %s: %w", c.state.ID, err)
	}
	if err := c.saveResources(merged); err != nil {
		return fmt.Errorf("update %s: limits applied but not saved: %w", c.state.ID, err)
	}
	return nil
}

// checkUpdatable refuses what an update could only pretend to do: the
// cgroup code drops kernel memory limits (deprecated by the spec) and, on
// v2, the TCP kernel memory limit, which has no v2 file. At creation those
// are ignored as runc does; a user asking for them by name must be told.
func checkUpdatable(res *specs.LinuxResources) error {
	mem := res.Memory
	if mem == nil {
		return nil
	}
	if mem.Kernel != nil { //nolint:staticcheck // Kernel is deprecated; refusing it is the point
		return errors.New("kernel memory limits (memory.kernel, --kernel-memory) are not supported: the runtime spec deprecates them and recent kernels ignore them")
	}
	if mem.KernelTCP != nil && cgroups.IsV2() {
		return errors.New("kernel TCP memory limits (memory.kernelTCP, --kernel-memory-tcp) have no cgroup v2 equivalent")
	}
	return nil
}

// mergeResources returns cur with every field that upd gives replaced:
// objects merge key by key, arrays and scalars are replaced whole. Going
// through JSON keeps the notion of "given" that the spec's own encoding
// has (every optional field is a pointer, a map or a slice with omitempty)
// and covers fields later spec versions add. Device rules in upd are
// dropped (see Update).
func mergeResources(cur, upd *specs.LinuxResources) (*specs.LinuxResources, error) {
	base, err := toJSONObject(cur)
	if err != nil {
		return nil, err
	}
	delta, err := toJSONObject(upd)
	if err != nil {
		return nil, err
	}
	delete(delta, "devices")
	b, err := json.Marshal(mergeObjects(base, delta))
	if err != nil {
		return nil, fmt.Errorf("merge resources: %w", err)
	}
	var out specs.LinuxResources
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("merge resources: %w", err)
	}
	// runc's rule: "memory -1" alone lifts the swap limit too, which
	// would otherwise stay at its old value and make the kernel refuse an
	// unlimited memory limit below a finite memory+swap one.
	if m := upd.Memory; m != nil && m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
		unlimited := int64(-1)
		out.Memory.Swap = &unlimited
	}
	return &out, nil
}

func toJSONObject(v *specs.LinuxResources) (map[string]any, error) {
	obj := map[string]any{}
	if v == nil {
		return obj, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("merge resources: %w", err)
	}
	// Numbers stay as written: through float64, limits near 2^63 would
	// come back rounded, or too big for an int64.
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil {
		return nil, fmt.Errorf("merge resources: %w", err)
	}
	return obj, nil
}

// mergeObjects merges delta into base (in place) and returns base.
func mergeObjects(base, delta map[string]any) map[string]any {
	for k, dv := range delta {
		dm, dIsObj := dv.(map[string]any)
		bm, bIsObj := base[k].(map[string]any)
		if dIsObj && bIsObj {
			base[k] = mergeObjects(bm, dm)
			continue
		}
		base[k] = dv
	}
	return base
}

// withoutDevices is res for cgroups.Manager.Set minus the device rules,
// which Set would otherwise rewrite.
func withoutDevices(res *specs.LinuxResources) *specs.LinuxResources {
	c := *res
	c.Devices = nil
	return &c
}

// lockDir takes an exclusive lock on the container's state directory, so
// that two updates cannot both read the old config and one lose the other's
// change. The directory, not config.json, is locked: saving replaces the
// file.
func (c *Container) lockDir() (func(), error) {
	fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, c.state.ID)
		}
		return nil, fmt.Errorf("lock state of %s: %w", c.state.ID, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock state of %s: %w", c.state.ID, err)
	}
	return func() { unix.Close(fd) }, nil
}

// saveResources rewrites linux.resources in the container's config.json
// and leaves every other part as it was (keys may be reordered). The file
// is replaced atomically, so a reader sees the old or the new config.
func (c *Container) saveResources(res *specs.LinuxResources) error {
	path := filepath.Join(c.dir, configFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	linux := map[string]json.RawMessage{}
	if l, ok := top["linux"]; ok {
		if err := json.Unmarshal(l, &linux); err != nil {
			return fmt.Errorf("parse config: %w", err)
		}
	}
	if linux["resources"], err = json.Marshal(res); err != nil {
		return fmt.Errorf("encode resources: %w", err)
	}
	if top["linux"], err = json.Marshal(linux); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	out, err := json.Marshal(top)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return replaceFile(path, out, 0o600)
}

// replaceFile writes data to a temporary file beside path and renames it
// over path.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
