// Package logs reads a container's json-file log (package jsonfile, with
// its rotated files) as `docker logs` shows it: --tail, --since, --until,
// --timestamps, and --follow, which follows appends and rotations and
// ends when the container's task has exited for good (not when a restart
// policy brings it back). The CLI calls it; a Docker Engine API will
// call the same functions.
package logs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	timetypes "github.com/docker/docker/api/types/time"
)

// TimestampFormat is how --timestamps prints an entry's time: docker's
// RFC 3339 with nanoseconds always in nine digits, in UTC.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Options select and shape what is read, as docker's logs flags do.
type Options struct {
	// Tail is how many of the last entries to show; negative: all.
	Tail int
	// Since and Until bound the entries' times; zero: unbounded.
	Since, Until time.Time
	// Timestamps prefixes each entry with its time (TimestampFormat).
	Timestamps bool
	// Follow keeps reading what is appended, across rotations, until
	// Ended is closed (then the log is read to its end), Until passes, or
	// the context ends.
	Follow bool
	// Ended is closed once nothing more will be written to the log:
	// ContainerLogs closes it when the container's task has exited and
	// will not come back. Nil with Follow: until the context ends.
	Ended <-chan struct{}
}

// ErrBadOption marks an option value that cannot be parsed.
var ErrBadOption = errors.New("invalid option")

// ParseTail reads --tail: "all" (or empty, or negative) is every entry,
// else a number of entries.
func ParseTail(s string) (int, error) {
	if s == "" || strings.EqualFold(s, "all") {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: --tail %q: want a number of lines or \"all\"", ErrBadOption, s)
	}
	if n < 0 {
		return -1, nil
	}
	return n, nil
}

// ParseTime reads --since or --until as docker does: an RFC 3339 date or
// time (local time without a zone), a Unix timestamp (seconds, with an
// optional fraction), or a Go duration such as 10m, which is that long
// before now. "" is the zero time (unbounded).
func ParseTime(flag, value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	ts, err := timetypes.GetTimestamp(value, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --%s %q: want an RFC 3339 time, a Unix timestamp or a duration such as 10m: %w", ErrBadOption, flag, value, err)
	}
	sec, nsec, err := timetypes.ParseTimestamps(ts, 0)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --%s %q: %w", ErrBadOption, flag, value, err)
	}
	return time.Unix(sec, nsec), nil
}
