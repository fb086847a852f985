// Command bench times berth-runtime against runc on the same machine, in the
// same run, so that the ratio between them means something: both runtimes see
// the same kernel, cgroup layout, page cache and load.
//
// Run it as root from the repository root:
//
//	go run ./bench [-berth ./bin/berth-runtime] [-runc PATH] [-n 30] [-warmup 3] [-case run|cycle|all]
//
// It is a benchmark, not a test: it prints figures and exits non-zero only
// when a runtime fails to run a container.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/berthrt/berth/integration/bundle"
)

// options are the command-line flags.
type options struct {
	berth, runc   string
	n, warmup     int
	which         string
	runcRequested bool // -runc was given, so a missing runc is an error
}

func main() {
	var o options
	flag.StringVar(&o.berth, "berth", "./bin/berth-runtime", "path of the berth-runtime binary under test")
	flag.StringVar(&o.runc, "runc", "", "path of runc (default: runc on PATH)")
	flag.IntVar(&o.n, "n", 30, "measured iterations per runtime and case")
	flag.IntVar(&o.warmup, "warmup", 3, "unmeasured iterations first, to fill caches")
	flag.StringVar(&o.which, "case", "all", "case to run: run, cycle or all")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { o.runcRequested = o.runcRequested || f.Name == "runc" })

	// Cancel on ^C or SIGTERM: the running runtime command is killed, and the
	// deferred cleanup in bench still deletes containers and temp dirs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// bench checks the flags, sets up a bundle and one state root per runtime in
// a temp dir, runs the chosen cases and removes everything it made.
func bench(ctx context.Context, o options) (err error) {
	cases, err := selectCases(o.which)
	if err != nil {
		return err
	}
	if o.n < 1 || o.warmup < 0 {
		return fmt.Errorf("-n must be at least 1 and -warmup at least 0")
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root: both runtimes need it to create containers")
	}
	berthPath, err := resolve(o.berth)
	if err != nil {
		return fmt.Errorf("berth-runtime: %w (build it first, or pass -berth PATH)", err)
	}
	runcPath, err := findRunc(o)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := filepath.Join(tmp, "bundle")
	if _, err := bundle.Busybox(b, "/bin/true"); err != nil {
		return err
	}

	rts := []*runtime{newRuntime("berth-runtime", berthPath, tmp)}
	if runcPath != "" {
		rts = append(rts, newRuntime("runc", runcPath, tmp))
	}
	// Deferred after RemoveAll, so it runs first: containers must be
	// deleted while their state dirs still exist.
	defer func() {
		for _, r := range rts {
			r.cleanup()
		}
	}()

	printHeader(rts, o, runcPath == "")
	for _, c := range cases {
		samples, err := measure(ctx, rts, c, b, o.warmup, o.n)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Println(report(c.name, rts, samples))
	}
	return nil
}

// resolve makes path absolute, because the runtimes run with a different
// --root and the caller's relative paths should not depend on that.
func resolve(path string) (string, error) {
	if !filepath.IsAbs(path) && filepath.Base(path) == path {
		// A bare name: look it up on PATH like a shell would.
		return exec.LookPath(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// findRunc returns runc's path, or "" when the default runc is not on PATH:
// berth's own figures are still worth printing without the comparison.
func findRunc(o options) (string, error) {
	if o.runcRequested {
		p, err := resolve(o.runc)
		if err != nil {
			return "", fmt.Errorf("runc: %w", err)
		}
		return p, nil
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		return "", nil
	}
	return p, nil
}

// printHeader says which binaries were compared, so that a pasted result
// can be traced back (and a run with -berth pointing at runc is obvious).
func printHeader(rts []*runtime, o options, runcMissing bool) {
	for _, r := range rts {
		fmt.Printf("%-14s %s (%s)\n", r.label, r.path, r.version())
	}
	if runcMissing {
		fmt.Println("runc           missing: not found on PATH, printing berth-runtime figures only")
	}
	fmt.Printf("iterations %d per runtime after %d warm-up, runtimes alternate\n", o.n, o.warmup)
}
