// Package libcontainer is Berth's runtime engine: it turns an OCI bundle
// into a running container and manages it afterwards. Both berth-runtime
// (one operation per process) and the shim (many, in-process) drive it.
//
// One operation per file: create.go, start.go, kill.go, delete.go; init.go
// is the container side of create; sync.go documents how the two talk.
package libcontainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/libcontainer/cgroups"
)

// Container is a handle on one container's state.
type Container struct {
	root  string
	dir   string
	state *State
	// proc is set when this process started the init (create or run): it is
	// then init's parent and the one that must reap it.
	proc *os.Process
	// cg is the cgroup manager Create made, reused by the same process
	// (run deletes what it created) instead of finding the cgroup again,
	// or the one loaded the first time it was needed. cgMu guards it: the
	// shim uses one handle from several goroutines.
	cgMu sync.Mutex
	cg   cgroups.Manager
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
// A missing root is an error matching os.ErrNotExist: whether that means
// "no containers yet" (the default root) or a mistyped --root is the
// caller's to say.
func List(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list containers in %s: %w", root, err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), creatingPrefix) {
			removeStaleCreating(root, e)
			continue
		}
		if c, err := Load(root, e.Name()); err == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].state.ID < out[j].state.ID })
	return out, nil
}

// removeStaleCreating removes a directory that a create made under a
// temporary name and never renamed into place: the create was killed in
// between. Such a directory lives for microseconds, so one older than
// staleCreating belongs to no create that is still running.
func removeStaleCreating(root string, e os.DirEntry) {
	info, err := e.Info()
	if err != nil || time.Since(info.ModTime()) < staleCreating {
		return
	}
	os.RemoveAll(filepath.Join(root, e.Name()))
}

const staleCreating = time.Minute

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
	if c.state.Creator != nil {
		// create has not finished: it is still at work, or it was killed
		// midway and what it left can only be deleted.
		if c.state.Creator.alive() {
			return Creating
		}
		return Stopped
	}
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

// cgroup is the container's cgroup manager, loaded once per handle: an
// operation asks for it more than once (delete: kill, then remove).
func (c *Container) cgroup() (cgroups.Manager, error) {
	c.cgMu.Lock()
	defer c.cgMu.Unlock()
	if c.cg != nil {
		return c.cg, nil
	}
	cg, err := cgroups.Load(c.state.CgroupPath)
	if err != nil {
		return nil, err
	}
	c.cg = cg
	return cg, nil
}

// Cgroup is the container's cgroup manager, loaded once per handle.
func (c *Container) Cgroup() (cgroups.Manager, error) { return c.cgroup() }

// Unowned is another handle on c's container that does not own its init,
// for a caller whose own reaper reaps it (the shim): Create's handle would
// reap init itself (exec.Cmd.Wait) on a forced delete. It is what Load
// would give, without reading the state and finding the cgroup again.
func (c *Container) Unowned() *Container {
	c.cgMu.Lock()
	defer c.cgMu.Unlock()
	st := *c.state
	return &Container{root: c.root, dir: c.dir, state: &st, cg: c.cg}
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
