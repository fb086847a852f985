package health

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRecord plays sequences of check results through docker's rules and
// checks the status and failing streak after each.
func TestRecord(t *testing.T) {
	started := time.Unix(1000, 0)
	type step struct {
		at     time.Duration // the check's start, after the task's
		exit   int
		status string
		streak int
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		from  string // the status before the first step; "" is Starting
		steps []step
	}{
		{name: "a pass makes it healthy", steps: []step{{time.Second, 0, Healthy, 0}}},
		{name: "default retries: unhealthy at the third failure", steps: []step{
			{1 * time.Second, 1, Starting, 1}, {2 * time.Second, 1, Starting, 2}, {3 * time.Second, 1, Unhealthy, 3}, {4 * time.Second, 1, Unhealthy, 4}}},
		{name: "retries 1", cfg: Config{Retries: 1}, steps: []step{{time.Second, 2, Unhealthy, 1}}},
		{name: "a pass clears the streak", cfg: Config{Retries: 2}, steps: []step{
			{1 * time.Second, 1, Starting, 1}, {2 * time.Second, 0, Healthy, 0}, {3 * time.Second, 1, Healthy, 1}, {4 * time.Second, 1, Unhealthy, 2}, {5 * time.Second, 0, Healthy, 0}}},
		{name: "failures within the start period do not count", cfg: Config{Retries: 1, StartPeriod: 10 * time.Second}, steps: []step{
			{1 * time.Second, 1, Starting, 0}, {9 * time.Second, 1, Starting, 0}, {10 * time.Second, 1, Unhealthy, 1}}},
		{name: "the start period ends at the first pass", cfg: Config{Retries: 1, StartPeriod: time.Minute}, steps: []step{
			{1 * time.Second, 0, Healthy, 0}, {2 * time.Second, 1, Unhealthy, 1}}},
		{name: "a timed-out check (-1) is a failure", cfg: Config{Retries: 1}, steps: []step{{time.Second, -1, Unhealthy, 1}}},
		{name: "resumed: unhealthy until a pass, start period or not", cfg: Config{StartPeriod: time.Hour}, from: Unhealthy, steps: []step{
			{1 * time.Second, 1, Unhealthy, 1}, {2 * time.Second, 0, Healthy, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Health{Status: Starting}
			if tc.from != "" {
				h.Status = tc.from
			}
			for i, s := range tc.steps {
				r := Result{Start: started.Add(s.at), End: started.Add(s.at + time.Millisecond), ExitCode: s.exit}
				Record(&h, tc.cfg, started, r)
				if h.Status != s.status || h.FailingStreak != s.streak {
					t.Fatalf("after check %d (exit %d at +%v): %s streak %d, want %s streak %d", i+1, s.exit, s.at, h.Status, h.FailingStreak, s.status, s.streak)
				}
				if last := h.Log[len(h.Log)-1]; last != r {
					t.Fatalf("after check %d: the log ends with %+v, want %+v", i+1, last, r)
				}
			}
		})
	}
}

// TestRecordKeepsFiveResults checks the log: the last five results,
// oldest first.
func TestRecordKeepsFiveResults(t *testing.T) {
	h := Started(Health{})
	for i := range 8 {
		Record(&h, Config{}, time.Time{}, Result{ExitCode: i})
	}
	var codes []string
	for _, r := range h.Log {
		codes = append(codes, fmt.Sprint(r.ExitCode))
	}
	if got := strings.Join(codes, ","); got != "3,4,5,6,7" {
		t.Errorf("log of exit codes %s, want 3,4,5,6,7", got)
	}
	// A new start keeps the log, not the status or the streak.
	h = Started(h)
	if h.Status != Starting || h.FailingStreak != 0 || len(h.Log) != 5 {
		t.Errorf("after a start: %+v", h)
	}
}

// TestNextDelay checks the wait before each check: the interval (30s by
// default), or the start interval (5s by default) while starting within
// the start period.
func TestNextDelay(t *testing.T) {
	started := time.Unix(1000, 0)
	for _, tc := range []struct {
		name   string
		cfg    Config
		status string
		since  time.Duration
		want   time.Duration
	}{
		{"defaults", Config{}, Starting, 0, 30 * time.Second},
		{"interval", Config{Interval: time.Second}, Starting, 0, time.Second},
		{"in the start period, starting", Config{Interval: time.Minute, StartPeriod: 10 * time.Second}, Starting, 2 * time.Second, 5 * time.Second},
		{"start interval", Config{Interval: time.Minute, StartPeriod: 10 * time.Second, StartInterval: time.Second}, Starting, 2 * time.Second, time.Second},
		{"in the start period, already healthy", Config{Interval: time.Minute, StartPeriod: 10 * time.Second}, Healthy, 2 * time.Second, time.Minute},
		{"after the start period", Config{Interval: time.Minute, StartPeriod: 10 * time.Second}, Starting, 10 * time.Second, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextDelay(tc.cfg, tc.status, started, started.Add(tc.since)); got != tc.want {
				t.Errorf("NextDelay = %v, want %v", got, tc.want)
			}
		})
	}
	if Timeout(Config{}) != 30*time.Second || Timeout(Config{Timeout: time.Second}) != time.Second {
		t.Error("Timeout: want 30s by default, else the given one")
	}
}
