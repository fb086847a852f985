package health

import "time"

// Record applies result r of a check of a task started at startedAt to h,
// by docker's rules: the result joins the log (the last MaxLogEntries
// kept); a pass makes the container healthy and clears the failing
// streak; a failure counts, unless the container is still starting and
// the check began within the start period, and the retries-th counted
// failure in a row makes it unhealthy.
func Record(h *Health, cfg Config, startedAt time.Time, r Result) {
	if len(h.Log) >= MaxLogEntries {
		h.Log = append(append([]Result(nil), h.Log[len(h.Log)+1-MaxLogEntries:]...), r)
	} else {
		h.Log = append(h.Log, r)
	}
	if r.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = Healthy
		return
	}
	if h.Status == Starting && r.Start.Sub(startedAt) < orDefault(cfg.StartPeriod, DefaultStartPeriod) {
		return // a failure while starting, within the start period
	}
	h.FailingStreak++
	retries := cfg.Retries
	if retries <= 0 {
		retries = DefaultRetries
	}
	if h.FailingStreak >= retries {
		h.Status = Unhealthy
	}
}

// Started is h for a task that has just started: starting, no failures;
// the log goes on.
func Started(h Health) Health {
	h.Status, h.FailingStreak = Starting, 0
	return h
}

// NextDelay is how long after the last check (or after the start) the
// next one runs, docker's: the start interval while the container is
// starting within its start period, the interval otherwise.
func NextDelay(cfg Config, status string, startedAt, now time.Time) time.Duration {
	if now.Sub(startedAt) >= orDefault(cfg.StartPeriod, DefaultStartPeriod) || status != Starting {
		return orDefault(cfg.Interval, DefaultInterval)
	}
	return orDefault(cfg.StartInterval, DefaultStartInterval)
}

// Timeout is how long a check may run.
func Timeout(cfg Config) time.Duration {
	return orDefault(cfg.Timeout, DefaultTimeout)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
