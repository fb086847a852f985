// Command testsummary turns `go test -json` into the text `go test -v`
// prints, and ends it with every skipped test and the reason it gave, so
// that a skip is never silent, and with every failed test's own lines, so
// that a failure's reason is at the end of a long log (and in what CI
// keeps of it): `make unit` and `make integration` pipe their tests
// through it.
//
//	go test -json ./... | go run ./hack/testsummary [-v]
//
// Its exit status is go test's to give: the Makefile takes that from the
// pipe. testsummary itself fails only when its input is not test2json's.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "print every test's output, as go test -v does; without it only failed tests' and the package lines")
	flag.Parse()
	sum, err := relay(os.Stdin, os.Stdout, *verbose)
	printSkips(os.Stdout, sum.skips)
	printFails(os.Stdout, sum.fails)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
}

// event is the part of a test2json event that the summary uses.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// outcome is one skipped or failed test (test empty: a whole package, as
// one whose TestMain exits early) and the lines it printed.
type outcome struct {
	pkg, test string
	reason    []string
}

// summary is what relay gathers for the end of its output.
type summary struct {
	skips, fails []outcome
}

// run is what relay keeps of a test, or of a package's own output, until
// it ends.
type run struct {
	output []string
	tests  int // for a package: how many of its tests ran
}

// relay copies the events' output to w (all of it when verbose, else a
// failed test's when it fails, and the packages' own lines) and returns
// the skips and failures in the order they ended.
func relay(r io.Reader, w io.Writer, verbose bool) (summary, error) {
	runs := map[[2]string]*run{}
	get := func(pkg, test string) *run {
		key := [2]string{pkg, test}
		if runs[key] == nil {
			runs[key] = &run{}
		}
		return runs[key]
	}
	var sum summary
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			// Not an event (a build error, say): pass it on as it is.
			fmt.Fprintln(w, sc.Text())
			continue
		}
		cur := get(e.Package, e.Test)
		switch e.Action {
		case "build-output":
			// The compiler's errors, as go test prints them.
			io.WriteString(w, e.Output)
			continue
		case "output":
			// Brief, like go test without -v: the packages' ok and FAIL
			// lines, without test2json's PASS.
			if verbose || e.Test == "" && e.Output != "PASS\n" {
				io.WriteString(w, e.Output)
			}
			cur.output = append(cur.output, e.Output)
			continue
		case "run":
			if e.Test != "" {
				get(e.Package, "").tests++
			}
			continue
		case "skip":
			if e.Test != "" {
				sum.skips = append(sum.skips, outcome{pkg: e.Package, test: e.Test, reason: reason(cur.output)})
			}
		case "pass":
			// A package that passed without running a test but said
			// something (TestMain's "needs root; skipping") was skipped.
			if e.Test == "" && cur.tests == 0 && len(reason(cur.output)) > 0 {
				sum.skips = append(sum.skips, outcome{pkg: e.Package, reason: reason(cur.output)})
			}
		case "fail":
			if !verbose && e.Test != "" {
				io.WriteString(w, strings.Join(cur.output, ""))
			}
			if e.Test != "" {
				sum.fails = append(sum.fails, outcome{pkg: e.Package, test: e.Test, reason: reason(cur.output)})
			}
		default:
			continue
		}
		delete(runs, [2]string{e.Package, e.Test})
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("reading go test -json: %w", err)
	}
	return sum, nil
}

// reason keeps the lines a test printed itself, without the framing lines
// of go test -v (=== RUN, --- SKIP, PASS, ok ...).
func reason(output []string) []string {
	var lines []string
	for _, out := range output {
		line := strings.TrimSpace(out)
		switch {
		case line == "", line == "PASS", line == "FAIL", line == "testing: warning: no tests to run",
			strings.HasPrefix(line, "=== "), strings.HasPrefix(line, "--- "),
			strings.HasPrefix(line, "ok "), strings.HasPrefix(line, "ok\t"):
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

// printSkips prints the summary block, also when nothing was skipped.
func printSkips(w io.Writer, skips []outcome) {
	fmt.Fprintf(w, "\n== skipped tests: %d ==\n", len(skips))
	for _, s := range skips {
		name := s.pkg
		if s.test != "" {
			name += " " + s.test
		}
		why := strings.Join(s.reason, " / ")
		if why == "" {
			why = "no reason given"
		}
		fmt.Fprintf(w, "SKIP %s: %s\n", name, why)
	}
}

// failLines is the most of a failed test's lines the closing block
// repeats: its last ones, where the assertion is (the whole of it is above).
const failLines = 40

// printFails repeats, after the skips, each failed test's own lines,
// indented under it; nothing when all passed.
func printFails(w io.Writer, fails []outcome) {
	if len(fails) == 0 {
		return
	}
	fmt.Fprintf(w, "\n== failed tests: %d ==\n", len(fails))
	for _, f := range fails {
		fmt.Fprintf(w, "FAILED %s %s\n", f.pkg, f.test)
		lines := f.reason
		if len(lines) > failLines {
			fmt.Fprintf(w, "  | (%d lines above)\n", len(lines)-failLines)
			lines = lines[len(lines)-failLines:]
		}
		for _, l := range lines {
			fmt.Fprintf(w, "  | %s\n", l)
		}
	}
}
