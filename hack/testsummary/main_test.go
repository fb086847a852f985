package main

import (
	"strings"
	"testing"
)

func TestRelay(t *testing.T) {
	const pkg = `"Package":"example.com/p"`
	ev := func(action, test, output string) string {
		s := `{"Action":"` + action + `",` + pkg
		if test != "" {
			s += `,"Test":"` + test + `"`
		}
		if output != "" {
			s += `,"Output":` + `"` + strings.ReplaceAll(output, "\n", `\n`) + `"`
		}
		return s + "}\n"
	}
	tests := []struct {
		name      string
		input     []string
		verbose   bool
		wantOut   []string // substrings of what is relayed
		noOut     []string // must not be relayed
		wantSkips []string // "test: reason"
		wantFails []string // "test: reason"
	}{{
		name: "a skipped test and its reason",
		input: []string{ev("run", "TestA", ""), ev("output", "TestA", "=== RUN   TestA\n"),
			ev("output", "TestA", "    a_test.go:9: needs a pure cgroup v2 host\n"),
			ev("output", "TestA", "--- SKIP: TestA (0.00s)\n"), ev("skip", "TestA", ""),
			ev("output", "", "ok  \texample.com/p\t0.1s\n"), ev("pass", "", "")},
		wantOut:   []string{"ok  \texample.com/p"},
		noOut:     []string{"needs a pure"},
		wantSkips: []string{"TestA: a_test.go:9: needs a pure cgroup v2 host"},
	}, {
		name: "a skipped subtest, in verbose mode",
		input: []string{ev("run", "TestB", ""), ev("run", "TestB/x", ""),
			ev("output", "TestB/x", "    b_test.go:3: no AppArmor\n"), ev("skip", "TestB/x", ""),
			ev("output", "TestB", "--- PASS: TestB (0.00s)\n"), ev("pass", "TestB", ""), ev("pass", "", "")},
		verbose:   true,
		wantOut:   []string{"no AppArmor", "--- PASS: TestB"},
		wantSkips: []string{"TestB/x: b_test.go:3: no AppArmor"},
	}, {
		name: "a package whose TestMain skipped every test",
		input: []string{ev("output", "", "integration tests need root; skipping\n"),
			ev("output", "", "ok  \texample.com/p\t0.01s\n"), ev("pass", "", "")},
		wantOut:   []string{"need root"},
		wantSkips: []string{": integration tests need root; skipping"},
	}, {
		name: "a failed test's output, passing tests' hidden",
		input: []string{ev("run", "TestOK", ""), ev("output", "TestOK", "    ok_test.go:1: chatter\n"), ev("pass", "TestOK", ""),
			ev("run", "TestBad", ""), ev("output", "TestBad", "    bad_test.go:2: got 1, want 2\n"),
			ev("output", "TestBad", "--- FAIL: TestBad (0.00s)\n"), ev("fail", "TestBad", ""),
			ev("output", "", "FAIL\texample.com/p\t0.1s\n"), ev("fail", "", "")},
		wantOut:   []string{"got 1, want 2", "--- FAIL: TestBad", "FAIL\texample.com/p"},
		noOut:     []string{"chatter"},
		wantFails: []string{"TestBad: bad_test.go:2: got 1, want 2"},
	}, {
		name: "a failed subtest and its parent, in verbose mode",
		input: []string{ev("run", "TestC", ""), ev("run", "TestC/y", ""),
			ev("output", "TestC/y", "    c_test.go:5: stderr two\n"), ev("fail", "TestC/y", ""),
			ev("output", "TestC", "    helpers_test.go:9: diagnostics\n"), ev("fail", "TestC", ""), ev("fail", "", "")},
		verbose:   true,
		wantFails: []string{"TestC/y: c_test.go:5: stderr two", "TestC: helpers_test.go:9: diagnostics"},
	}, {
		name: "a compile error in go test -json's build events",
		input: []string{`{"ImportPath":"example.com/p [example.com/p.test]","Action":"build-output","Output":"./b.go:2:12: undefined: x\n"}` + "\n",
			`{"ImportPath":"example.com/p [example.com/p.test]","Action":"build-fail"}` + "\n",
			ev("output", "", "FAIL\texample.com/p [build failed]\n"), ev("fail", "", "")},
		wantOut: []string{"./b.go:2:12: undefined: x", "[build failed]"},
	}, {
		name:    "a build error passes through",
		input:   []string{"# example.com/p\n", "p.go:1:1: expected 'package'\n", ev("fail", "", "")},
		wantOut: []string{"expected 'package'"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			sum, err := relay(strings.NewReader(strings.Join(tc.input, "")), &out, tc.verbose)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output %q lacks %q", out.String(), want)
				}
			}
			for _, not := range tc.noOut {
				if strings.Contains(out.String(), not) {
					t.Errorf("output %q has %q", out.String(), not)
				}
			}
			for _, c := range []struct {
				what string
				got  []outcome
				want []string
			}{{"skips", sum.skips, tc.wantSkips}, {"fails", sum.fails, tc.wantFails}} {
				var got []string
				for _, s := range c.got {
					got = append(got, s.test+": "+strings.Join(s.reason, " / "))
				}
				if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
					t.Errorf("%s %q, want %q", c.what, got, c.want)
				}
			}
		})
	}
}

func TestPrintSkips(t *testing.T) {
	var out strings.Builder
	printSkips(&out, []outcome{{pkg: "p", test: "TestA", reason: []string{"a.go:1: needs root"}}, {pkg: "q"}})
	want := "\n== skipped tests: 2 ==\nSKIP p TestA: a.go:1: needs root\nSKIP q: no reason given\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestPrintFails(t *testing.T) {
	var out strings.Builder
	printFails(&out, nil)
	if out.String() != "" {
		t.Fatalf("no failures printed %q", out.String())
	}
	many := make([]string, failLines+2)
	for i := range many {
		many[i] = "line"
	}
	many[len(many)-1] = "the assertion"
	printFails(&out, []outcome{{pkg: "p", test: "TestA", reason: []string{"a.go:1: got 1"}}, {pkg: "p", test: "TestB", reason: many}})
	got := out.String()
	for _, want := range []string{"\n== failed tests: 2 ==\nFAILED p TestA\n  | a.go:1: got 1\nFAILED p TestB\n  | (2 lines above)\n", "  | the assertion\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, lacks %q", got, want)
		}
	}
	if n := strings.Count(got, "  | line\n"); n != failLines-1 {
		t.Errorf("%d of the long test's lines repeated, want %d", n, failLines-1)
	}
}
