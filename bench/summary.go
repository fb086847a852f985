package main

import (
	"fmt"
	"math"
)

// summary collects every ratio of the run, to print them together at the
// end: the per-case lines scroll by between headers and warnings.
type summary struct{ lines []summaryLine }

type summaryLine struct {
	what, pair string
	ratio      float64
	target     float64 // the goal for the ratio; 0 when none
}

// add records a ratio; 0 means there was nothing to compare with (no
// runc), and is left out.
func (s *summary) add(what, pair string, ratio, target float64) {
	if ratio > 0 {
		s.lines = append(s.lines, summaryLine{what, pair, ratio, target})
	}
}

// print prints the summary block. A target is only reported, never
// enforced: this is a benchmark, and one noisy run must not fail a build.
func (s *summary) print() {
	fmt.Println()
	fmt.Println("== summary: ratio berth/peer (runc, its shim, ctr, buildah), below 1 means berth is faster or smaller ==")
	if len(s.lines) == 0 {
		fmt.Println("no ratios: runc (and buildah) are missing")
		return
	}
	for _, l := range s.lines {
		line := fmt.Sprintf("%-44s %-38s %5.2f", l.what, l.pair, l.ratio)
		if l.target > 0 {
			verdict := "met"
			// Judged as printed: a 0.6004 shown as 0.60 meets 0.60.
			if math.Round(l.ratio*100)/100 > l.target {
				verdict = "NOT met"
			}
			line += fmt.Sprintf("   target <= %.2f: %s", l.target, verdict)
		}
		fmt.Println(line)
	}
}
