package main

// The shim cases: containerd-shim-berth-v2 (io.containerd.berth.v2, which
// runs libcontainer in-process) against containerd's own
// containerd-shim-runc-v2 (io.containerd.runc.v2) driving runc, on one
// private containerd with one image, so that the only difference between
// the two is the runtime type a container asks for.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthrt/berth/integration/ctrd"
)

const (
	berthShimType = "io.containerd.berth.v2"
	runcShimType  = "io.containerd.runc.v2"
	// benchNamespace is the containerd namespace, and so the cgroup parent
	// (/<namespace>/<id>), of every bench container.
	benchNamespace = "berthbench"
)

// shimRuntime is one runtime type under test: the shim binary containerd
// runs for it, and the ctr run flags that give it its own state root and
// options.
type shimRuntime struct {
	label    string // for the output: "berth shim (1 per shim, linger 0s)", "runc shim + runc 1.5.2"
	short    string // in container ids
	settings string // for the summary: what the line measures
	typ      string // the runtime type
	// binary is the shim's path (the one containerd runs), and server
	// the binary of its long-running processes (berth's shim hands over
	// to containerd-shim-berth-v2-server), symlinks resolved, as the
	// kernel shows it in /proc/<pid>/exe: how a shim process is recognised.
	binary, server string
	flags          []string
	about          string // for the header: what else runs (runc and its version)
}

// shimBench is the private containerd and the runtimes compared on it.
type shimBench struct {
	d *ctrd.Daemon
	// single is the Berth shim with ContainersPerShim 1 and ShimLinger 0s:
	// every container starts a shim process of its own, which exits with
	// it, as with containerd's runc shim. The like-for-like lines, which
	// carry the targets.
	single *shimRuntime
	// packed is the Berth shim with ContainersPerShim 8 and ShimLinger 2s:
	// containers share shims, and a shim left empty waits for the next.
	packed *shimRuntime
	// runcs is containerd's runc shim, once per runc compared.
	runcs []*shimRuntime
}

// startShimBench starts the private containerd with the image and sets up
// the runtimes with their state roots under its state dir (a runc shim for
// each of runcPaths). The caller must close it, also on error.
func startShimBench(ctx context.Context, bin, berthPath string, runcPaths []string) (*shimBench, error) {
	need := []string{"containerd", "ctr", "containerd-shim-berth-v2", "containerd-shim-berth-v2-server"}
	if len(runcPaths) > 0 {
		need = append(need, "containerd-shim-runc-v2")
	}
	for _, name := range need {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("%w (run `make build`, or pass -bin DIR)", err)
		}
	}
	d, err := ctrd.Start(ctx, ctrd.Config{
		BinDir:    bin,
		Namespace: benchNamespace,
		// Shims of their own: PSS splits pages shared with any other
		// process that maps the same binary (another containerd's shims
		// on this machine), and these figures are about ours alone.
		CopyShims: true,
		// Leftovers are a bug somewhere: say what had to be forced.
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "cleanup: "+format+"\n", args...) },
	})
	if err != nil {
		return nil, err
	}
	b := &shimBench{d: d}
	if b.single, err = b.berthRuntime(berthPath, "berth1", 1, "0s"); err != nil {
		return b, err
	}
	if b.packed, err = b.berthRuntime(berthPath, "berth8", 8, "2s"); err != nil {
		return b, err
	}
	for i, path := range runcPaths {
		runc, err := b.runcRuntime(path, i)
		if err != nil {
			return b, err
		}
		b.runcs = append(b.runcs, runc)
	}
	return b, nil
}

// berthRuntime is io.containerd.berth.v2 with its state root and shim
// options set through a runtime options file (ctr's --runc-root is for
// the runc type only). berth-runtime shares libcontainer's state format,
// so cleanup can use it.
func (b *shimBench) berthRuntime(berthPath, short string, perShim int, linger string) (*shimRuntime, error) {
	root, err := b.d.RuntimeRoot(short, berthPath)
	if err != nil {
		return nil, err
	}
	opts, err := os.CreateTemp(b.d.State, "berth-options-*.toml")
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(opts, "Root = %q\nContainersPerShim = %d\nShimLinger = %q\n", root, perShim, linger)
	if cerr := opts.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	settings := fmt.Sprintf("%d per shim, linger %s", perShim, linger)
	rt, err := newShimRuntime("berth shim ("+settings+")", short, berthShimType,
		filepath.Join(b.d.ShimDir, "containerd-shim-berth-v2"), "--runtime-config-path", opts.Name())
	if err == nil {
		rt.settings = settings
		rt.server, err = filepath.EvalSymlinks(filepath.Join(b.d.ShimDir, "containerd-shim-berth-v2-server"))
	}
	return rt, err
}

// runcRuntime is io.containerd.runc.v2 running the given runc, with a
// state root of its own.
func (b *shimBench) runcRuntime(runcPath string, i int) (*shimRuntime, error) {
	short := fmt.Sprintf("runc%d", i)
	root, err := b.d.RuntimeRoot(short, runcPath)
	if err != nil {
		return nil, err
	}
	rt, err := newShimRuntime("runc shim + "+runcLabel(runcPath), short, runcShimType,
		filepath.Join(b.d.ShimDir, "containerd-shim-runc-v2"), "--runc-binary", runcPath, "--runc-root", root)
	if err == nil {
		rt.about = fmt.Sprintf(" running %s (%s)", runcPath, firstLine(runcPath, "--version"))
	}
	return rt, err
}

func newShimRuntime(label, short, typ, binary string, flags ...string) (*shimRuntime, error) {
	resolved, err := filepath.EvalSymlinks(binary)
	if err != nil {
		return nil, err
	}
	return &shimRuntime{label: label, short: short, typ: typ, binary: resolved, server: resolved, flags: flags}, nil
}

func (b *shimBench) close() error { return b.d.Close() }

// runArgs is `run [flags] IMAGE ID ARGS…` for rt, with the fifos in the
// private state dir.
func (b *shimBench) runArgs(rt *shimRuntime, flags []string, id string, args ...string) []string {
	a := []string{"run", "--runtime", rt.typ, "--fifo-dir", b.d.FifoDir}
	a = append(a, rt.flags...)
	a = append(a, flags...)
	a = append(a, b.d.Image, id)
	return append(a, args...)
}

// runOnce times `ctr run --rm IMAGE ID true`: a container's whole life as
// a containerd client sees it, shim start and exit included.
func (b *shimBench) runOnce(ctx context.Context, rt *shimRuntime, id string) (time.Duration, error) {
	b.d.Track(id)
	cmd := b.d.CtrCommand(ctx, b.runArgs(rt, []string{"--rm"}, id, "true")...)
	var errb bytes.Buffer
	cmd.Stderr = &errb // stdin and stdout stay /dev/null
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("%s: ctr %s: %v\nstderr: %s", rt.label, strings.Join(cmd.Args[1:], " "),
			err, bytes.TrimSpace(errb.Bytes()))
	}
	return took, nil
}

// runCase measures runOnce for berth and each runc shim, alternating,
// prints the line and adds a ratio per runc to the summary, with the
// target (0: none).
func (b *shimBench) runCase(ctx context.Context, warmup, n int, berth *shimRuntime, target float64, sum *summary) error {
	rts := append([]*shimRuntime{berth}, b.runcs...)
	samples, err := alternate(ctx, len(rts), warmup, n, func(j, i int) (time.Duration, error) {
		rt := rts[j]
		return b.runOnce(ctx, rt, fmt.Sprintf("br-%d-%s-%d", os.Getpid(), rt.short, i))
	})
	if err != nil {
		return fmt.Errorf("shim run, %s: %w", berth.label, err)
	}
	var labels []string
	for _, rt := range rts {
		labels = append(labels, rt.label)
	}
	line, ratios := report("ctr run --rm true", labels, samples)
	fmt.Println(line)
	for i, ratio := range ratios {
		sum.add("ctr run --rm true, "+berth.settings, "berth shim/runc shim + "+strings.TrimPrefix(b.runcs[i].label, "runc shim + "), ratio, target)
	}
	return nil
}

// printHeader says which containerd, shims and runc were compared.
func (b *shimBench) printHeader(bin string) {
	ctrdBin := filepath.Join(bin, "containerd")
	fmt.Printf("%-16s %s (%s)\n", "containerd", ctrdBin, firstLine(ctrdBin, "--version"))
	for _, rt := range append([]*shimRuntime{b.single, b.packed}, b.runcs...) {
		fmt.Printf("%s: %s (%s) for %s%s\n", rt.label, rt.binary, shimVersion(rt.binary), rt.typ, rt.about)
	}
	if len(b.runcs) == 0 {
		fmt.Println("runc shim: skipped, no runc: printing berth shim figures only")
	}
}

// firstLine is the first line of a command's output, for headers only.
func firstLine(path string, args ...string) string {
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		return "version unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// shimVersion is the Version: line of a shim's -v (containerd's shim
// library prints the name first, then indented fields).
func shimVersion(path string) string {
	out, _ := exec.Command(path, "-v").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			return "version " + strings.TrimSpace(v)
		}
	}
	return "version unknown"
}

// errNotShim is the error of a container whose init's parent is not the
// shim of the runtime it asked for: the memory figures would be wrong.
var errNotShim = errors.New("parent is not the expected shim")
