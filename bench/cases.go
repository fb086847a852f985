package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// benchCase is one measured operation on a fresh container id.
type benchCase struct {
	name string
	once func(ctx context.Context, r *runtime, bundle, id string) (time.Duration, error)
}

// allCases in the order -case all runs them.
var allCases = []benchCase{
	{"run /bin/true", runOnce},
	{"cycle /bin/true", cycleOnce},
}

// selectCases maps the -case flag to the cases to run.
func selectCases(which string) ([]benchCase, error) {
	switch which {
	case "all":
		return allCases, nil
	case "run":
		return allCases[:1], nil
	case "cycle":
		return allCases[1:], nil
	}
	return nil, fmt.Errorf("-case %q: want run, cycle or all", which)
}

// runOnce times `run --bundle B ID`: the whole foreground life of a
// container, as a user of `docker run --rm` would feel it.
func runOnce(ctx context.Context, r *runtime, bundle, id string) (time.Duration, error) {
	r.live[id] = true
	d, err := r.exec(ctx, "run", "--bundle", bundle, id)
	if err == nil {
		delete(r.live, id) // run deletes the container when it exits
	}
	return d, err
}

// cycleOnce times create + start + delete --force as one cycle (youki's
// benchmark), the path a container engine such as containerd drives.
// delete --force does not wait for /bin/true to exit on its own, so the
// figure does not depend on how fast the runtime notices the exit.
func cycleOnce(ctx context.Context, r *runtime, bundle, id string) (time.Duration, error) {
	r.live[id] = true
	var total time.Duration
	for _, args := range [][]string{
		{"create", "--bundle", bundle, id},
		{"start", id},
		{"delete", "--force", id},
	} {
		d, err := r.exec(ctx, args...)
		total += d
		if err != nil {
			return total, err
		}
	}
	delete(r.live, id)
	return total, nil
}

// measure runs c warmup+n times for each runtime and returns the n measured
// durations per runtime. The runtimes take turns each iteration, and the
// one that goes first alternates too, so that drift over the run (thermal,
// page cache, background load) and any after-effect of the previous
// container fall on both runtimes alike.
func measure(ctx context.Context, rts []*runtime, c benchCase, bundle string, warmup, n int) ([][]time.Duration, error) {
	samples := make([][]time.Duration, len(rts))
	for i := 0; i < warmup+n; i++ {
		for k := range rts {
			j := k
			if i%2 == 1 {
				j = len(rts) - 1 - k
			}
			r := rts[j]
			id := fmt.Sprintf("bench-%d-%d-%d", os.Getpid(), j, i)
			d, err := c.once(ctx, r, bundle, id)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted")
			}
			if err != nil {
				return nil, err
			}
			if i >= warmup {
				samples[j] = append(samples[j], d)
			}
		}
	}
	return samples, nil
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1) of d.
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1 // ceil(q*n) is 1-based
	return s[max(0, min(rank, len(s)-1))]
}

// report formats one case's line: median and p90 per runtime, then the
// ratio of berth's median to runc's (below 1 means berth is faster).
func report(name string, rts []*runtime, samples [][]time.Duration) string {
	line := fmt.Sprintf("%-16s", name)
	medians := make([]time.Duration, len(rts))
	for i, r := range rts {
		medians[i] = quantile(samples[i], 0.5)
		if i > 0 {
			line += " |"
		}
		line += fmt.Sprintf(" %s median %s p90 %s", r.label, ms(medians[i]), ms(quantile(samples[i], 0.9)))
	}
	if len(rts) == 2 {
		line += fmt.Sprintf(" | ratio %.2f", float64(medians[0])/float64(medians[1]))
	}
	return line
}

// ms prints a duration in milliseconds with one decimal, the resolution
// that matters for runtimes taking tens of milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
