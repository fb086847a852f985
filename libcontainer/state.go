package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is what `state` reports. It is never stored: it is derived from the
// init process and the exec fifo each time, so it stays right when the
// runtime or the container dies between two commands.
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Stopped  Status = "stopped"
	Paused   Status = "paused"
)

const (
	stateFile = "state.json"
	execFifo  = "exec.fifo"
)

// ErrNotExist and friends are the sentinels callers match with errors.Is;
// the cmd layer turns them into runc's messages and exit codes.
var (
	ErrNotExist   = errors.New("container does not exist")
	ErrExist      = errors.New("container already exists")
	ErrNotRunning = errors.New("container not running") // runc's words: containerd's shim matches them
	ErrBadID      = errors.New("invalid container id")
)

// State is the on-disk record of a container, under <root>/<id>/state.json.
type State struct {
	ID            string            `json:"id"`
	InitPid       int               `json:"init_pid"`
	InitStartTime uint64            `json:"init_start_time"`
	Bundle        string            `json:"bundle"`
	Rootfs        string            `json:"rootfs"`
	Created       time.Time         `json:"created"`
	Owner         string            `json:"owner"`
	CgroupPath    string            `json:"cgroup_path"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	// Hooks are the spec's hooks as created: poststart and poststop must
	// run as they were, even if the bundle changes.
	Hooks *specs.Hooks `json:"hooks,omitempty"`
	// HostMounts says the container has no mount namespace of its own, so
	// its mounts live in the runtime's and are undone on delete.
	HostMounts bool `json:"host_mounts,omitempty"`
	// SharedPidNS says the container has no pid namespace of its own (the
	// host's, or one joined by path): its init's death does not end the
	// other processes, so SIGKILL and delete go to the whole cgroup.
	SharedPidNS bool `json:"shared_pid_ns,omitempty"`
	// Creator is set while create is still at work. state.json is written
	// before create makes anything (cgroup, init), and rewritten as it
	// goes, so that a create killed midway leaves a record from which
	// delete finds and removes all it made. It is nil once create is done.
	Creator *ProcessID `json:"creator,omitempty"`
}

// ProcessID names one process for good: its pid and its start time, which
// tell it from a later process that reuses the pid.
type ProcessID struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// self names the calling process.
func self() (*ProcessID, error) {
	pid := os.Getpid()
	start, _, err := procStat(pid)
	if err != nil {
		return nil, fmt.Errorf("read own start time: %w", err)
	}
	return &ProcessID{Pid: pid, StartTime: start}, nil
}

// alive says whether the process is still running (a zombie has exited).
func (p *ProcessID) alive() bool {
	if p == nil || p.Pid <= 0 {
		return false
	}
	start, s, err := procStat(p.Pid)
	if err != nil || start != p.StartTime {
		return false
	}
	return s != 'Z' && s != 'X'
}

// The whole spec is kept beside state.json, byte for byte as the bundle
// had it, for the operations that need more than the state (exec). Every
// command reads state.json; decoding a full spec each time would cost
// them about a millisecond.
const configFile = "config.json"

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

// CheckID refuses ids that could escape the state root or confuse tools.
func CheckID(id string) error {
	if id == "" || len(id) > 1024 || id == "." || id == ".." || !validID.MatchString(id) {
		return fmt.Errorf("%w %q: use letters, digits, '_', '+', '-' and '.'", ErrBadID, id)
	}
	return nil
}

// writeState replaces state.json atomically: a reader sees the old or the new
// state, never half of one.
func writeState(dir string, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state of %s: %w", st.ID, err)
	}
	tmp, err := os.CreateTemp(dir, ".state-")
	if err != nil {
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	return nil
}

func readState(dir, id string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	return &st, nil
}

// procStat returns the start time (clock ticks since boot) and the state
// letter of pid, from /proc/<pid>/stat. The start time tells a live init
// from another process that reused its pid.
func procStat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// alive says whether the container's init is still the process it was.
func (st *State) alive() bool {
	return (&ProcessID{Pid: st.InitPid, StartTime: st.InitStartTime}).alive()
}

// signal sends sig to the init, after making sure the pid is still ours.
// A pidfd closes the window between the check and the kill.
func (st *State) signal(sig syscall.Signal) error {
	fd, err := pidfdOpen(st.InitPid)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNotRunning, st.ID)
	}
	defer syscall.Close(fd)
	if !st.alive() {
		return fmt.Errorf("%w: %s", ErrNotRunning, st.ID)
	}
	if err := pidfdSignal(fd, sig); err != nil {
		return fmt.Errorf("signal %d to %s (pid %d): %w", sig, st.ID, st.InitPid, err)
	}
	return nil
}
