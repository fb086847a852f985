// Package restart implements docker's restart policies for Berth's
// containers: parsing the --restart flag, docker's rules for whether and
// when a container that exited starts again, and the monitor that applies
// them inside Berth's managed containerd (restart/plugin registers it).
//
// A container's policy and the state the rules need live in its containerd
// labels (the berth/ labels below), so the monitor needs no store of its
// own and works with no berth process running.
package restart

import (
	"fmt"
	"strconv"
	"strings"
)

// The labels of a Berth container that the restart rules read and write.
const (
	// LabelPolicy is the --restart policy as the user gave it.
	LabelPolicy = "berth/restart"
	// LabelCount counts the restarts the monitor made since the user last
	// started the container (docker's .RestartCount).
	LabelCount = "berth/restart-count"
	// LabelStoppedByUser is "true" while the user has stopped or killed
	// the container; set before the signal is sent.
	LabelStoppedByUser = "berth/stopped-by-user"
	// LabelAutoRemove is "true" for `run --rm`: the container is removed
	// when it exits.
	LabelAutoRemove = "berth/auto-remove"
	// LabelExitCode, LabelFinishedAt, LabelStartedAt and LabelOOMKilled
	// are written by the monitor on task events. Times are RFC 3339 with
	// nanoseconds, in UTC.
	LabelExitCode   = "berth/exit-code"
	LabelFinishedAt = "berth/finished-at"
	LabelStartedAt  = "berth/started-at"
	LabelOOMKilled  = "berth/oom-killed"

	// labelPrefix marks a container as Berth's: the monitor touches no
	// other.
	labelPrefix = "berth/"
)

// Mode is the kind of a restart policy.
type Mode string

// The restart policies docker knows.
const (
	No            Mode = "no"
	Always        Mode = "always"
	UnlessStopped Mode = "unless-stopped"
	OnFailure     Mode = "on-failure"
)

// Policy is a parsed --restart value.
type Policy struct {
	Mode Mode
	// MaxRetries bounds the restarts of an on-failure policy; 0 is no
	// bound.
	MaxRetries int
}

// String is the policy as --restart takes it.
func (p Policy) String() string {
	if p.Mode == OnFailure && p.MaxRetries > 0 {
		return fmt.Sprintf("%s:%d", OnFailure, p.MaxRetries)
	}
	if p.Mode == "" {
		return string(No)
	}
	return string(p.Mode)
}

// ParsePolicy parses a --restart value as docker does: "no" (or empty),
// "always", "unless-stopped", "on-failure" or "on-failure:N" with N ≥ 0.
// A maximum retry count is allowed with on-failure only.
func ParsePolicy(value string) (Policy, error) {
	name, count, hasCount := strings.Cut(value, ":")
	switch Mode(name) {
	case "", No, Always, UnlessStopped:
		if hasCount {
			return Policy{}, fmt.Errorf("invalid --restart value %q: a maximum retry count is allowed with on-failure only (on-failure:N)", value)
		}
		if name == "" {
			return Policy{Mode: No}, nil
		}
		return Policy{Mode: Mode(name)}, nil
	case OnFailure:
		if !hasCount {
			return Policy{Mode: OnFailure}, nil
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return Policy{}, fmt.Errorf("invalid --restart value %q: the maximum retry count of on-failure must be a number ≥ 0", value)
		}
		return Policy{Mode: OnFailure, MaxRetries: n}, nil
	}
	return Policy{}, fmt.Errorf("invalid --restart value %q: allowed are no, always, unless-stopped, on-failure and on-failure:N", value)
}

// IsBerthContainer says whether labels are a Berth container's: the
// monitor leaves every other container alone.
func IsBerthContainer(labels map[string]string) bool {
	for k := range labels {
		if strings.HasPrefix(k, labelPrefix) {
			return true
		}
	}
	return false
}
