// Package libcontainer is Berth's runtime engine: it turns an OCI bundle
// into a running container and manages it afterwards. Both berth-runtime
// (one operation per process) and the shim (many, in-process) drive it.
//
// One operation per file: create.go, start.go, kill.go, delete.go; init.go
// is the container side of create; sync.go documents how the two talk.
package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/libcontainer/cgroups"
)

// Container is a handle on one container's state.
type Container struct {
	root  string
	dir   string
	state *State
	// cmd is set when this process started the init (create or run): it is
	// then init's parent and the one that must reap it.
	cmd *exec.Cmd
	// cg is the cgroup manager Create made, reused by the same process
	// (run deletes what it created) instead of finding the cgroup again.
	cg cgroups.Manager
}

// Load opens the container id under root.
func Load(root, id string) (*Container, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	st, err := readState(dir, id)
	if err != nil {
		return nil, err
	}
	return &Container{root: root, dir: dir, state: st}, nil
}

// List loads every container under root, sorted by id. A container whose
// state cannot be read is skipped: one broken entry must not hide the rest.
func List(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list containers in %s: %w", root, err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if c, err := Load(root, e.Name()); err == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].state.ID < out[j].state.ID })
	return out, nil
}

func (c *Container) ID() string    { return c.state.ID }
func (c *Container) State() *State { return c.state }
func (c *Container) InitPid() int  { return c.state.InitPid }

// Spec reads the spec the container was created from.
func (c *Container) Spec() (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", c.state.ID, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read config of %s: %w", c.state.ID, err)
	}
	return &s, nil
}

// Status derives the container's status from the live system.
func (c *Container) Status() Status {
	if !c.state.alive() {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, execFifo)); err == nil {
		return Created
	}
	if cg, err := c.cgroup(); err == nil {
		if frozen, err := cg.Frozen(); err == nil && frozen {
			return Paused
		}
	}
	return Running
}

func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.cg != nil {
		return c.cg, nil
	}
	return cgroups.Load(c.state.CgroupPath)
}

// OCIState is the state as the runtime spec and runc's `state` print it.
type OCIState struct {
	specs.State
	Rootfs  string `json:"rootfs"`
	Created string `json:"created"`
	Owner   string `json:"owner"`
}

// OCIState reports the container as `state` shows it.
func (c *Container) OCIState() *OCIState {
	st := c.Status()
	s := c.state.ociState(st)
	return &OCIState{
		State:   *s,
		Rootfs:  c.state.Rootfs,
		Created: c.state.Created.Format("2006-01-02T15:04:05.999999999Z"),
		Owner:   c.state.Owner,
	}
}

func (st *State) ociState(s Status) *specs.State {
	pid := st.InitPid
	if s == Stopped {
		pid = 0
	}
	return &specs.State{
		Version:     specs.Version,
		ID:          st.ID,
		Status:      specs.ContainerState(s),
		Pid:         pid,
		Bundle:      st.Bundle,
		Annotations: st.Annotations,
	}
}
