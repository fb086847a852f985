// Command bench times berth-runtime against runc, and Berth's containerd
// shim against containerd's runc shim, on the same machine, in the same
// run, so that the ratio between them means something: both see the same
// kernel, cgroup layout, page cache and load.
//
// Run it as root from the repository root, after `make build`:
//
//	go run ./bench [-berth ./bin/berth-runtime] [-runc PATH] [-bin ./bin]
//	    [-n 30] [-warmup 3] [-shim-n 30] [-shim-containers 20]
//	    [-case run,cycle,shim-run,shim-mem|shim|all]
//
// The runtime cases (run, cycle) drive the two runtime binaries directly.
// The shim cases start a private containerd (package integration/ctrd)
// with the bin dir's shims and time `ctr run --rm` (shim-run) and read the
// shims' memory for 1 and N sleeping containers (shim-mem), for
// io.containerd.berth.v2 and io.containerd.runc.v2 with runc. A summary of
// every ratio (berth/runc) comes last.
//
// It is a benchmark, not a test: it prints figures and exits non-zero only
// when a runtime fails to run a container or cleanup fails.
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
	berth, runc, bin string
	n, warmup        int
	shimN            int // iterations of the shim run case
	shimContainers   int // sleeping containers of the larger memory reading
	which            string
	runcRequested    bool // -runc was given, so a missing runc is an error
}

func main() {
	var o options
	flag.StringVar(&o.berth, "berth", "./bin/berth-runtime", "path of the berth-runtime binary under test")
	flag.StringVar(&o.runc, "runc", "", "path of runc (default: runc on PATH)")
	flag.IntVar(&o.n, "n", 30, "measured iterations per runtime and case")
	flag.IntVar(&o.warmup, "warmup", 3, "unmeasured iterations first, to fill caches")
	flag.StringVar(&o.bin, "bin", "./bin", "dir with containerd, ctr and both shims, for the shim cases")
	flag.IntVar(&o.shimN, "shim-n", 30, "measured iterations per runtime of the shim run case")
	flag.IntVar(&o.shimContainers, "shim-containers", 20, "sleeping containers of the second shim memory reading (the first has 1)")
	flag.StringVar(&o.which, "case", "all", "cases, comma-separated: run, cycle, shim-run, shim-mem, shim (both) or all")
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

// bench checks the flags, runs the chosen runtime cases, then the shim
// cases, and prints the summary of ratios.
func bench(ctx context.Context, o options) error {
	sel, err := selectCases(o.which)
	if err != nil {
		return err
	}
	if o.n < 1 || o.warmup < 0 || o.shimN < 1 || o.shimContainers < 2 {
		return fmt.Errorf("-n and -shim-n must be at least 1, -warmup at least 0, -shim-containers at least 2")
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
	var sum summary
	if len(sel.runtime) > 0 {
		if err := runtimeCases(ctx, o, sel.runtime, berthPath, runcPath, &sum); err != nil {
			return err
		}
	}
	if sel.shimRun || sel.shimMem {
		if err := shimCases(ctx, o, sel, berthPath, runcPath, &sum); err != nil {
			return err
		}
	}
	sum.print()
	return nil
}

// runtimeCases sets up a bundle and one state root per runtime in a temp
// dir, runs the cases and removes everything it made.
func runtimeCases(ctx context.Context, o options, cases []benchCase, berthPath, runcPath string, sum *summary) error {
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
	var labels []string
	for _, r := range rts {
		labels = append(labels, r.label)
	}
	for _, c := range cases {
		samples, err := measure(ctx, rts, c, b, o.warmup, o.n)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		line, ratio := report(c.name, labels, samples)
		fmt.Println(line)
		sum.add(c.name+", median time", "berth-runtime/runc", ratio, 0)
	}
	return nil
}

// shimCases starts the private containerd, runs the shim cases on it and
// takes it all down again, also after an error or ^C (a failed cleanup is
// an error of its own).
func shimCases(ctx context.Context, o options, sel selection, berthPath, runcPath string, sum *summary) (err error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	b, err := startShimBench(ctx, bin, berthPath, runcPath)
	if b != nil {
		defer func() {
			if cerr := b.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup of the private containerd: %w", cerr))
			}
		}()
	}
	if err != nil {
		return fmt.Errorf("shim cases: %w", err)
	}
	b.printHeader(bin)
	const pair = "berth shim/runc shim"
	if sel.shimRun {
		fmt.Printf("shim run: iterations %d per runtime after %d warm-up, runtimes alternate\n", o.shimN, o.warmup)
		line, ratio, err := b.runCase(ctx, o.warmup, o.shimN, false)
		if err != nil {
			return fmt.Errorf("shim run: %w", err)
		}
		fmt.Println(line)
		sum.add("ctr run --rm true, median time", pair, ratio, 0.6)
		// The same with a shim process started for every container (no
		// shared shim lingering for the next one), for comparison.
		line, fresh, err := b.runCase(ctx, o.warmup, o.shimN, true)
		if err != nil {
			return fmt.Errorf("shim run, ShimLinger 0s: %w", err)
		}
		fmt.Println(line)
		sum.add("  same, ShimLinger 0s", pair, fresh, 0)
	}
	if sel.shimMem {
		counts := []int{1, o.shimContainers}
		fmt.Printf("shim memory: sum of Pss of the shims serving %d and %d sleeping containers, none in a shim group\n", counts[0], counts[1])
		lines, ratios, err := b.memCase(ctx, counts)
		if err != nil {
			return fmt.Errorf("shim memory: %w", err)
		}
		for i, line := range lines {
			fmt.Println(line)
			if ratios != nil {
				sum.add(fmt.Sprintf("shim PSS, %d container(s)", counts[i]), pair, ratios[i], 0.5)
			}
		}
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
