package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
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

// selection is what -case asks for: runtime cases, then the shim cases,
// then the berth case.
type selection struct {
	runtime          []benchCase
	shimRun, shimMem bool
	berth            bool // the berth command against ctr (berth.go)
	network          bool // a container's network, in-process (network.go)
	build            bool // berth build against buildah bud (build.go)
}

// selectCases maps the -case flag, a comma-separated list, to the cases
// to run, in the order all runs them.
func selectCases(which string) (selection, error) {
	var sel selection
	want := map[string]bool{}
	for _, name := range strings.Split(which, ",") {
		switch name {
		case "all":
			want["run"], want["cycle"], want["shim-run"], want["shim-mem"], want["berth"], want["network"], want["build"] = true, true, true, true, true, true, true
		case "shim":
			want["shim-run"], want["shim-mem"] = true, true
		case "run", "cycle", "shim-run", "shim-mem", "berth", "network", "build":
			want[name] = true
		default:
			return sel, fmt.Errorf("-case %q: want a comma-separated list of run, cycle, shim-run, shim-mem, shim, berth, network, build or all", which)
		}
	}
	for i, name := range []string{"run", "cycle"} {
		if want[name] {
			sel.runtime = append(sel.runtime, allCases[i])
		}
	}
	sel.shimRun, sel.shimMem, sel.berth, sel.network, sel.build = want["shim-run"], want["shim-mem"], want["berth"], want["network"], want["build"]
	return sel, nil
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
// durations per runtime.
func measure(ctx context.Context, rts []*runtime, c benchCase, bundle string, warmup, n int) ([][]time.Duration, error) {
	return alternate(ctx, len(rts), warmup, n, func(j, i int) (time.Duration, error) {
		id := fmt.Sprintf("bench-%d-%d-%d", os.Getpid(), j, i)
		return c.once(ctx, rts[j], bundle, id)
	})
}

// alternate calls once(j, i) for warmup+n iterations i and each of k
// contenders j, and returns the n measured durations per contender. The
// contenders take turns each iteration, and the one that goes first
// alternates too, so that drift over the run (thermal, page cache,
// background load) and any after-effect of the previous container fall
// on all of them alike.
func alternate(ctx context.Context, k, warmup, n int, once func(j, i int) (time.Duration, error)) ([][]time.Duration, error) {
	samples := make([][]time.Duration, k)
	for i := 0; i < warmup+n; i++ {
		for x := range k {
			j := x
			if i%2 == 1 {
				j = k - 1 - x
			}
			d, err := once(j, i)
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

// report formats one case's line: median and p90 per contender, then the
// ratio of the first one's median to each other's (below 1 means the
// first, berth, is faster), which it also returns, one per other contender.
func report(name string, labels []string, samples [][]time.Duration) (string, []float64) {
	line := fmt.Sprintf("%-16s", name)
	medians := make([]time.Duration, len(labels))
	for i, label := range labels {
		medians[i] = quantile(samples[i], 0.5)
		if i > 0 {
			line += " |"
		}
		line += fmt.Sprintf(" %s median %s p90 %s", label, ms(medians[i]), ms(quantile(samples[i], 0.9)))
	}
	var ratios []float64
	for i := 1; i < len(labels); i++ {
		ratio := float64(medians[0]) / float64(medians[i])
		p90 := float64(quantile(samples[0], 0.9)) / float64(quantile(samples[i], 0.9))
		line += fmt.Sprintf(" | ratio to %s %.2f (p90 %.2f)", labels[i], ratio, p90)
		ratios = append(ratios, ratio)
	}
	return line, ratios
}

// ms prints a duration in milliseconds with one decimal, the resolution
// that matters for runtimes taking tens of milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
