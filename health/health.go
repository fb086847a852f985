// Package health runs docker's HEALTHCHECK for Berth's containers: the
// check's configuration as docker keeps it (CMD, CMD-SHELL or NONE, with
// interval, timeout, retries, start period and start interval), docker's
// rules for the status (starting, healthy, unhealthy; the failing streak;
// the last five results), and the Probers that run the checks.
//
// Where the checks run. The Probers live in the restart monitor inside
// Berth's containerd (restart/plugin), not in the shim and not in berth:
//   - checks must go on with no berth process, and the monitor is the one
//     part of Berth that always runs beside the containers and already
//     sees each task start, pause, resume and exit in order;
//   - a check is an exec in the task through containerd's task service,
//     the same path as `berth exec`, so the shim needs no second way to
//     start processes and stays small (shared shims hold many containers);
//   - the status is containerd metadata (the container extension
//     ExtensionState), which only containerd can write: `berth ps` and
//     `berth inspect` read it in the container list they read anyway;
//   - a containerd restart loses no state: the monitor's reconcile starts
//     the probers of the running tasks again, from the stored status.
//
// The configuration is the container extension ExtensionCheck, written
// once by `berth create`; the status, ExtensionState, is written only by
// the container's prober, always by field path, so that no other writer
// of the container's labels or extensions is overwritten.
package health

import (
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/typeurl/v2"
)

// The container extensions of a container's health check.
const (
	// ExtensionCheck holds the container's Check, when it has one that
	// runs (not NONE).
	ExtensionCheck = "berth/healthcheck"
	// ExtensionState holds the prober's State.
	ExtensionState = "berth/health"
)

// The health statuses, docker's.
const (
	Starting  = "starting"
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
	// None is no health check, for ps --filter health=none.
	None = "none"
)

// Docker's defaults for a check's settings left at zero.
const (
	DefaultInterval      = 30 * time.Second
	DefaultTimeout       = 30 * time.Second
	DefaultStartPeriod   = 0
	DefaultStartInterval = 5 * time.Second
	DefaultRetries       = 3
	// MaxLogEntries is how many results the status keeps.
	MaxLogEntries = 5
	// MaxOutputLen is how much of a check's output a result keeps; more
	// is cut and marked with "...".
	MaxOutputLen = 4096
	// MinimumDuration is the least non-zero duration docker accepts.
	MinimumDuration = time.Millisecond
)

// Config is docker's HealthConfig (a container's .Config.Healthcheck, an
// image's HEALTHCHECK), field for field.
type Config struct {
	// Test is {} (inherit the image's), {"NONE"}, {"CMD", args...} or
	// {"CMD-SHELL", command}.
	Test []string `json:",omitempty"`
	// Zero durations and retries inherit the image's, then the defaults.
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// Check is what a prober needs of a container: its health check and the
// shell a CMD-SHELL test runs in (the image's SHELL).
type Check struct {
	Config
	Shell []string `json:",omitempty"`
}

// Health is docker's State.Health: the status, the consecutive failures
// that count, and the last results, oldest first.
type Health struct {
	Status        string
	FailingStreak int
	Log           []Result
}

// Result is one run of a check (docker's HealthcheckResult).
type Result struct {
	Start    time.Time
	End      time.Time
	ExitCode int
	Output   string
}

// State is the stored status: Health, and the task it is of. A status
// of an earlier task is that task's (see View).
type State struct {
	Health
	Pid uint32 `json:",omitempty"`
}

func init() {
	typeurl.Register(&Check{}, "github.com/berthrt/berth/health", "Check")
	typeurl.Register(&State{}, "github.com/berthrt/berth/health", "State")
}

// Enabled says whether cfg runs a check: a test of type CMD or CMD-SHELL.
func (cfg *Config) Enabled() bool {
	return cfg != nil && len(cfg.Test) > 1 && (cfg.Test[0] == "CMD" || cfg.Test[0] == "CMD-SHELL")
}

// Command is the command line of the check: CMD's arguments, or
// CMD-SHELL's command in the shell (/bin/sh -c unless the image set
// SHELL); nil when no check runs.
func (c Check) Command() []string {
	if !c.Enabled() {
		return nil
	}
	if c.Test[0] == "CMD" {
		return append([]string(nil), c.Test[1:]...)
	}
	shell := c.Shell
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(append([]string(nil), shell...), c.Test[1:]...)
}

// Merge is the container's check as docker's daemon makes it: the user's
// settings, each one left at zero taken from the image's.
func Merge(image, user *Config) *Config {
	if user == nil {
		if image == nil {
			return nil
		}
		c := *image
		return &c
	}
	c := *user
	if image == nil {
		return &c
	}
	if len(c.Test) == 0 {
		c.Test = image.Test
	}
	if c.Interval == 0 {
		c.Interval = image.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = image.Timeout
	}
	if c.StartPeriod == 0 {
		c.StartPeriod = image.StartPeriod
	}
	if c.StartInterval == 0 {
		c.StartInterval = image.StartInterval
	}
	if c.Retries == 0 {
		c.Retries = image.Retries
	}
	return &c
}

// Validate refuses what docker's daemon refuses: a non-zero duration
// under a millisecond, negative retries.
func Validate(cfg *Config) error {
	if cfg == nil {
		return nil
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"Interval", cfg.Interval}, {"Timeout", cfg.Timeout}, {"StartPeriod", cfg.StartPeriod}, {"StartInterval", cfg.StartInterval}} {
		if d.value != 0 && d.value < MinimumDuration {
			return fmt.Errorf("%s in Healthcheck cannot be less than %s", d.name, MinimumDuration)
		}
	}
	if cfg.Retries < 0 {
		return fmt.Errorf("Retries in Healthcheck cannot be negative")
	}
	return nil
}

// CheckOf is the container's Check; false when it has none that runs.
func CheckOf(info containers.Container) (Check, bool, error) {
	var c Check
	ok, err := extension(info, ExtensionCheck, &c)
	return c, ok && c.Enabled(), err
}

// StateOf is the container's stored State; false when none is stored.
func StateOf(info containers.Container) (State, bool, error) {
	var s State
	ok, err := extension(info, ExtensionState, &s)
	return s, ok, err
}

// extension decodes the container's extension name into out (a *Check or
// a *State); false when the container does not have it.
func extension[T Check | State](info containers.Container, name string, out *T) (bool, error) {
	ext, ok := info.Extensions[name]
	if !ok || ext == nil {
		return false, nil
	}
	v, err := typeurl.UnmarshalAny(ext)
	if err != nil {
		return false, fmt.Errorf("container %s: read its %s extension: %w", info.ID, name, err)
	}
	got, ok := v.(*T)
	if !ok {
		return false, fmt.Errorf("container %s: its %s extension is a %T", info.ID, name, v)
	}
	*out = *got
	return true, nil
}

// TaskState is what View needs of a container's task.
type TaskState int

// The states of a container's task that View tells apart.
const (
	// NoTask: no task, or a stopped one.
	NoTask TaskState = iota
	Running
	Paused
)

// View is the container's Health as docker shows it (inspect's
// .State.Health, ps's STATUS), from its stored state and its task; nil
// when it has no check, or has never run with one.
//
//   - a running task that the stored status is not of (its prober has not
//     written yet): starting, no failures, the earlier results;
//   - a paused or stopped one: unhealthy, as docker marks a container
//     whose checks it stopped.
func View(info containers.Container, task TaskState, pid uint32) *Health {
	if _, ok, err := CheckOf(info); err != nil || !ok {
		return nil
	}
	st, stored, err := StateOf(info)
	if err != nil {
		stored = false
	}
	h := st.Health
	switch {
	case task == Running && (!stored || st.Pid != pid):
		h.Status, h.FailingStreak = Starting, 0
	case task == Running:
		if h.Status == "" {
			h.Status = Unhealthy
		}
	case !stored:
		return nil
	default:
		h.Status = Unhealthy
	}
	if h.Log == nil {
		h.Log = []Result{}
	}
	return &h
}

// String is ps's words for the status: "health: starting", "healthy",
// "unhealthy".
func (h *Health) String() string {
	if h.Status == Starting {
		return "health: starting"
	}
	return h.Status
}
