// Command bench times berth-runtime against runc, and Berth's containerd
// shim against containerd's runc shim, on the same machine, in the same
// run, so that the ratio between them means something: all see the same
// kernel, cgroup layout, page cache and load.
//
// Run it as root from the repository root, after `make build` (`make
// bench` does both, and compares with the runc that containerd pins, built
// by hack/runc.sh, and with the runc on PATH):
//
//	go run ./bench [-berth ./bin/berth-runtime] [-runc PATH[,PATH...]] [-bin ./bin]
//	    [-n 30] [-warmup 3] [-shim-n 30] [-shim-containers 20]
//	    [-ps-containers 100] [-case run,cycle,shim-run,shim-mem,berth,network,build|shim|all]
//
// The runtime cases (run, cycle) drive the runtime binaries directly.
// The shim cases start a private containerd (package integration/ctrd)
// with the bin dir's shims and time `ctr run --rm` (shim-run) and read the
// shims' memory for 1 and N sleeping containers (shim-mem), for
// io.containerd.berth.v2 and io.containerd.runc.v2 with each runc. Every
// Berth shim line sets ContainersPerShim and ShimLinger itself, so that
// the figures do not depend on the shim's defaults. A summary of every
// ratio (berth/runc, one per runc) comes last, with the targets.
//
// The berth case (berth.go) drives the `berth` command against `ctr` with
// containerd's runc shim, on the containerd berth manages, started from a
// temp berth.toml under /run: `run --rm` times, the memory of what berth
// adds for -shim-containers detached containers with their logs, and the
// time of `ps -a` over -ps-containers containers.
//
// The network case (network.go) times a container's network in-process:
// NewNetNS, Attach to a user network, Detach, RemoveNetNS, step by step,
// against the namespace alone.
//
// The build case (build.go) times a cold and a cached `berth build` of one
// Dockerfile against Debian's `buildah bud`, when buildah is installed.
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
	"strings"
	"syscall"

	"github.com/berthrt/berth/integration/bundle"
)

// options are the command-line flags.
type options struct {
	berth, bin     string
	runc           string // comma-separated runc binaries to compare with
	n, warmup      int
	shimN          int // iterations of the shim run case
	shimContainers int // sleeping containers of the larger memory reading, and of the berth one
	psContainers   int // containers `berth ps -a` lists in the berth case
	which          string
	runcRequested  bool // -runc was given, so a missing runc is an error
}

func main() {
	var o options
	flag.StringVar(&o.berth, "berth", "./bin/berth-runtime", "path of the berth-runtime binary under test")
	flag.StringVar(&o.runc, "runc", "", "runc binaries to compare with, comma-separated (default: runc on PATH)")
	flag.IntVar(&o.n, "n", 30, "measured iterations per runtime and case")
	flag.IntVar(&o.warmup, "warmup", 3, "unmeasured iterations first, to fill caches")
	flag.StringVar(&o.bin, "bin", "./bin", "dir with containerd, ctr and both shims, for the shim cases")
	flag.IntVar(&o.shimN, "shim-n", 30, "measured iterations per runtime of the shim run case")
	flag.IntVar(&o.shimContainers, "shim-containers", 20, "sleeping containers of the second shim memory reading (the first has 1) and of the berth one")
	flag.IntVar(&o.psContainers, "ps-containers", 100, "containers `berth ps -a` lists in the berth case")
	flag.StringVar(&o.which, "case", "all", "cases, comma-separated: run, cycle, shim-run, shim-mem, shim (both), berth, network, build or all")
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
	if o.n < 1 || o.warmup < 0 || o.shimN < 1 || o.shimContainers < 2 || o.psContainers < 1 {
		return fmt.Errorf("-n, -shim-n and -ps-containers must be at least 1, -warmup at least 0, -shim-containers at least 2")
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root: both runtimes need it to create containers")
	}
	berthPath, err := resolve(o.berth)
	if err != nil {
		return fmt.Errorf("berth-runtime: %w (build it first, or pass -berth PATH)", err)
	}
	runcs, err := findRuncs(o)
	if err != nil {
		return err
	}
	var sum summary
	if len(sel.runtime) > 0 {
		if err := runtimeCases(ctx, o, sel.runtime, berthPath, runcs, &sum); err != nil {
			return err
		}
	}
	if sel.shimRun || sel.shimMem {
		if err := shimCases(ctx, o, sel, berthPath, runcs, &sum); err != nil {
			return err
		}
	}
	if sel.berth {
		if err := berthCases(ctx, o, runcs, &sum); err != nil {
			return err
		}
	}
	if sel.network {
		if err := networkCase(ctx, o, &sum); err != nil {
			return err
		}
	}
	if sel.build {
		if err := buildCase(ctx, o, &sum); err != nil {
			return err
		}
	}
	sum.print()
	return nil
}

// runtimeCases sets up a bundle and one state root per runtime in a temp
// dir, runs the cases and removes everything it made.
func runtimeCases(ctx context.Context, o options, cases []benchCase, berthPath string, runcs []string, sum *summary) error {
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
	for _, path := range runcs {
		rts = append(rts, newRuntime(runcLabel(path), path, tmp))
	}
	// Deferred after RemoveAll, so it runs first: containers must be
	// deleted while their state dirs still exist.
	defer func() {
		for _, r := range rts {
			r.cleanup()
		}
	}()

	printHeader(rts, o, len(runcs) == 0)
	var labels []string
	for _, r := range rts {
		labels = append(labels, r.label)
	}
	for _, c := range cases {
		samples, err := measure(ctx, rts, c, b, o.warmup, o.n)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		line, ratios := report(c.name, labels, samples)
		fmt.Println(line)
		for i, ratio := range ratios {
			sum.add(c.name+", median time", "berth-runtime/"+labels[i+1], ratio, 0)
		}
	}
	return nil
}

// shimCases starts the private containerd, runs the shim cases on it and
// takes it all down again, also after an error or ^C (a failed cleanup is
// an error of its own).
func shimCases(ctx context.Context, o options, sel selection, berthPath string, runcs []string, sum *summary) (err error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	b, err := startShimBench(ctx, bin, berthPath, runcs)
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
	if sel.shimRun {
		fmt.Printf("shim run: iterations %d per runtime after %d warm-up, runtimes alternate\n", o.shimN, o.warmup)
		// The target line: a shim process started for every container
		// and gone with it, as containerd's runc shim does.
		if err := b.runCase(ctx, o.warmup, o.shimN, b.single, 0.6, sum); err != nil {
			return err
		}
		// Packed, with the shim lingering for the next container.
		if err := b.runCase(ctx, o.warmup, o.shimN, b.packed, 0, sum); err != nil {
			return err
		}
	}
	if sel.shimMem {
		counts := []int{1, o.shimContainers}
		fmt.Printf("shim memory: Pss and Pss_Anon (smaps_rollup) of the shims serving %d and %d sleeping containers, none in a shim group\n",
			counts[0], counts[1])
		if err := b.memCase(ctx, counts, sum); err != nil {
			return fmt.Errorf("shim memory: %w", err)
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

// findRuncs returns the runc binaries to compare with: -runc's, or runc on
// PATH, or none when there is none on PATH: berth's own figures are still
// worth printing without the comparison.
func findRuncs(o options) ([]string, error) {
	if !o.runcRequested {
		p, err := exec.LookPath("runc")
		if err != nil {
			return nil, nil
		}
		return []string{p}, nil
	}
	var paths []string
	for _, name := range strings.Split(o.runc, ",") {
		p, err := resolve(name)
		if err != nil {
			return nil, fmt.Errorf("runc: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// runcLabel names a runc by its version ("runc 1.5.2"), so that the lines
// of two runc versions can be told apart.
func runcLabel(path string) string {
	v := firstLine(path, "--version") // "runc version 1.5.2"
	if f := strings.Fields(v); len(f) == 3 && f[1] == "version" {
		return "runc " + f[2]
	}
	return "runc " + filepath.Base(path)
}

// printHeader says which binaries were compared, so that a pasted result
// can be traced back (and a run with -berth pointing at runc is obvious).
func printHeader(rts []*runtime, o options, runcMissing bool) {
	for _, r := range rts {
		fmt.Printf("%-16s %s (%s)\n", r.label, r.path, r.version())
	}
	if runcMissing {
		fmt.Println("runc             missing: not found on PATH, printing berth-runtime figures only")
	}
	fmt.Printf("iterations %d per runtime after %d warm-up, runtimes alternate\n", o.n, o.warmup)
}
