package restart

import (
	"fmt"
	"strconv"
	"time"
)

// Docker's restart backoff (moby's restartmanager): the first restart
// comes after FirstDelay; while the container keeps exiting within
// ResetAfter of starting, each delay doubles, up to MaxDelay; a run of
// ResetAfter or longer starts the sequence again.
const (
	FirstDelay = 100 * time.Millisecond
	MaxDelay   = time.Minute
	ResetAfter = 10 * time.Second
)

// Exit is what the rules know of a container whose task has exited.
type Exit struct {
	ExitCode int
	// StoppedByUser: berth stop or kill made it exit (LabelStoppedByUser).
	StoppedByUser bool
	// RestartCount is the restarts made since the user last started it.
	RestartCount int
}

// ShouldRestart applies docker's rules to a container that exited: no
// restart under the "no" policy or after the user stopped or killed it;
// always and unless-stopped restart it; on-failure restarts it when the
// exit code is not 0 and fewer than MaxRetries restarts were made (any
// number when MaxRetries is 0).
func ShouldRestart(p Policy, e Exit) bool {
	if e.StoppedByUser {
		return false
	}
	switch p.Mode {
	case Always, UnlessStopped:
		return true
	case OnFailure:
		return e.ExitCode != 0 && (p.MaxRetries == 0 || e.RestartCount < p.MaxRetries)
	}
	return false
}

// ShouldStartWithDaemon applies docker's rules when the managed containerd
// starts, to a container that ran before and is not running now: always
// and unless-stopped containers start again, except an unless-stopped one
// the user stopped. As with docker, an always container the user stopped
// does come back when the daemon restarts: "always" means "whenever the
// daemon runs". An on-failure container is left as it is (an exit the
// monitor did not see while containerd was down goes through
// ShouldRestart instead).
func ShouldStartWithDaemon(p Policy, stoppedByUser bool) bool {
	switch p.Mode {
	case Always:
		return true
	case UnlessStopped:
		return !stoppedByUser
	}
	return false
}

// Backoff is docker's delay between restarts of one container. The zero
// value is the state after a user start.
type Backoff struct {
	delay time.Duration
}

// Next is the delay before the restart that follows a run of the given
// length, and moves the backoff on.
func (b *Backoff) Next(ran time.Duration) time.Duration {
	if ran >= ResetAfter {
		b.delay = 0
	}
	switch {
	case b.delay == 0:
		b.delay = FirstDelay
	case b.delay < MaxDelay:
		b.delay *= 2
	}
	b.delay = min(b.delay, MaxDelay)
	return b.delay
}

// PolicyOf is a container's policy from its labels: "no" without the
// label.
func PolicyOf(labels map[string]string) (Policy, error) {
	p, err := ParsePolicy(labels[LabelPolicy])
	if err != nil {
		return Policy{}, fmt.Errorf("label %s: %w", LabelPolicy, err)
	}
	return p, nil
}

// CountOf is a container's restart count from its labels (0 without it).
func CountOf(labels map[string]string) int {
	n, err := strconv.Atoi(labels[LabelCount])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// StoppedByUser says whether labels say the user stopped the container.
func StoppedByUser(labels map[string]string) bool {
	return labels[LabelStoppedByUser] == "true"
}

// formatTime is how the time labels are written.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// ParseTime reads a time label (LabelStartedAt, LabelFinishedAt); the
// zero time when absent or unreadable.
func ParseTime(value string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}
	}
	return t
}
