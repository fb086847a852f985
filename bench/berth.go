package main

// The berth case: the whole front end, `berth` against `ctr` with
// containerd's runc shim, on one containerd — the one berth manages,
// started from a temp berth.toml under /run, so that nothing of the
// host's (its berth.toml, /var/lib/berth, /run/containerd) is touched.
// Three figures: the time of a foreground `run --rm`, the memory of what
// berth adds beside containerd for N detached containers with their
// json-file logs, and the time of `ps -a` over 100 containers.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/integration/ctrd"
	"github.com/berthrt/berth/integration/image"
)

const (
	// berthBenchImage is the busybox image `berth load` loads once.
	berthBenchImage = "docker.io/berthbench/busybox:latest"
	// berthBenchNamespace keeps the bench's images and containers apart
	// even from berth's own default namespace.
	berthBenchNamespace = "berthbench"
	// Targets of issue 11: the front end faster than bare ctr with the
	// runc shim, and the memory of berth's shims a fraction of runc's.
	berthRunTarget = 0.7
	berthMemTarget = 0.3
)

// berthBench is berth's managed containerd at temp paths, with the image
// loaded, and what the bench made on it, for cleanup.
type berthBench struct {
	berth, ctr string // binaries
	dir        string // the temp dir holding berth.toml and all state
	config     string // berth.toml
	socket     string // containerd's socket
	runcs      []string
	// host is the host's network state before the bench.
	host hostNetwork
	// names are berth containers and ctrIDs ctr containers that may
	// exist: close removes them.
	names, ctrIDs []string
}

// berthConfig is the bench's berth.toml: every path berth and its
// containerd write under dir.
func berthConfig(dir, pluginDir string) string {
	state := filepath.Join(dir, "st")
	return fmt.Sprintf("data_root = %q\nnamespace = %q\n[containerd]\nroot = %q\nstate = %q\nsocket = %q\nstop_timeout = \"20s\"\n"+
		"[cni]\nconf_dir = %q\nplugin_dir = %q\ndefault_network = \"none\"\n",
		filepath.Join(dir, "data"), berthBenchNamespace, filepath.Join(dir, "root"), state, filepath.Join(state, "c.sock"),
		filepath.Join(dir, "net.d"), pluginDir)
}

// startBerthBench writes the temp berth.toml, starts berth's managed
// containerd with it and loads the image. The caller must close it, also
// on error.
func startBerthBench(ctx context.Context, bin string, runcs []string) (*berthBench, error) {
	b := &berthBench{berth: filepath.Join(bin, "berth"), ctr: filepath.Join(bin, "ctr"), runcs: runcs}
	for _, p := range []string{b.berth, b.ctr, filepath.Join(bin, "containerd"), filepath.Join(bin, "containerd-shim-runc-v2")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (run `make build`, or pass -bin DIR)", err)
		}
	}
	// Under /run and short: the shims' sockets go under the state dir.
	dir, err := os.MkdirTemp("/run", "bb-")
	if err != nil {
		return nil, err
	}
	b.dir, b.config = dir, filepath.Join(dir, "berth.toml")
	if b.host, err = saveHostNetwork(); err != nil {
		return b, err
	}
	b.socket = filepath.Join(dir, "st", "c.sock")
	if err := os.WriteFile(b.config, []byte(berthConfig(dir, filepath.Join(bin, "cni"))), 0o644); err != nil {
		return b, err
	}
	if _, err := b.run(ctx, "system", "start"); err != nil {
		return b, err
	}
	archive := filepath.Join(dir, "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		return b, err
	}
	err = image.Busybox(f, berthBenchImage)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return b, fmt.Errorf("writing the busybox image: %w", err)
	}
	_, err = b.run(ctx, "load", "-i", archive)
	return b, err
}

// command is berth with the bench's berth.toml, and nothing of the
// caller's environment choosing another containerd.
func (b *berthBench) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.berth, append([]string{"--config", b.config}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	return cmd
}

// ctrCommand is ctr on the same containerd and namespace.
func (b *berthBench) ctrCommand(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, b.ctr, append([]string{"--address", b.socket, "--namespace", berthBenchNamespace}, args...)...)
}

// run runs berth and returns its stdout.
func (b *berthBench) run(ctx context.Context, args ...string) (string, error) {
	return output(b.command(ctx, args...))
}

// output runs cmd and returns its stdout, or an error with its stderr.
func output(cmd *exec.Cmd) (string, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\nstderr: %s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "),
			err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.String(), nil
}

// timed runs cmd, its stdout discarded, and returns how long it took.
func timed(cmd *exec.Cmd) (time.Duration, error) {
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("%s %s: %w\nstderr: %s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "),
			err, bytes.TrimSpace(errb.Bytes()))
	}
	return took, nil
}

// runcFlags are ctr run's flags for the runc shim running runc, with its
// state root and fifos in the bench's dir.
func (b *berthBench) runcFlags(runc string) []string {
	return []string{"--runtime", runcShimType, "--runc-binary", runc,
		"--runc-root", filepath.Join(b.dir, "runc"), "--fifo-dir", filepath.Join(b.dir, "fifo")}
}

// printHeader says which binaries and which shim packing were compared.
func (b *berthBench) printHeader(ctx context.Context) {
	// berth's own: `berth version` says the client's version first.
	version, _ := b.run(ctx, "version")
	fmt.Printf("%-16s %s (%s)\n", "berth", b.berth, strings.TrimSpace(lineWith(version, "Version:")))
	fmt.Printf("%-16s %s, managed by berth with %s\n", "containerd", b.socket, b.config)
	info, err := b.run(ctx, "info")
	if err != nil {
		fmt.Println("berth info failed:", err)
	}
	fmt.Println(strings.TrimSpace(lineWith(info, "Default Runtime:")))
	fmt.Println(strings.TrimSpace(lineWith(info, "Shim Packing:")))
	for _, runc := range b.runcs {
		fmt.Printf("ctr + runc shim  %s (%s)\n", runc, firstLine(runc, "--version"))
	}
}

// lineWith is the first line of out that holds s, or "".
func lineWith(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// withBerthBench runs fn on a managed containerd of its own (what names
// the case in an error) and takes it all down again, also after an error
// or ^C.
func withBerthBench(ctx context.Context, o options, runcs []string, what string, fn func(b *berthBench) error) (err error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	b, err := startBerthBench(ctx, bin, runcs)
	if b != nil {
		defer func() {
			if cerr := b.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup of berth's containerd: %w", cerr))
			}
		}()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fn(b)
}

// berthCases runs the berth figures on one managed containerd.
func berthCases(ctx context.Context, o options, runcs []string, sum *summary) error {
	return withBerthBench(ctx, o, runcs, "berth cases", func(b *berthBench) error { return b.berthCases(ctx, o, sum) })
}

func (b *berthBench) berthCases(ctx context.Context, o options, sum *summary) error {
	b.printHeader(ctx)
	if err := b.runCase(ctx, o.warmup, o.shimN, sum); err != nil {
		return fmt.Errorf("berth run: %w", err)
	}
	if err := b.netCase(ctx, o.warmup, o.shimN); err != nil {
		return fmt.Errorf("berth run network: %w", err)
	}
	if err := b.memCase(ctx, o.shimContainers, sum); err != nil {
		return fmt.Errorf("berth memory: %w", err)
	}
	if err := b.psCase(ctx, o.warmup, o.n, o.psContainers); err != nil {
		return fmt.Errorf("berth ps: %w", err)
	}
	return nil
}

// runCase times `berth run --rm --net none IMAGE true` against `ctr run
// --rm` with the runc shim and each runc, alternating, and adds the
// ratios to the summary with the target.
func (b *berthBench) runCase(ctx context.Context, warmup, n int, sum *summary) error {
	fmt.Printf("berth run: iterations %d per contender after %d warm-up, contenders alternate\n", n, warmup)
	labels := []string{"berth run --rm --net none"}
	for _, runc := range b.runcs {
		labels = append(labels, "ctr run --rm + "+runcLabel(runc))
	}
	samples, err := alternate(ctx, len(labels), warmup, n, func(j, i int) (time.Duration, error) {
		// --rm removes a container that ran; one that failed may be
		// left for close.
		if j == 0 {
			name := fmt.Sprintf("bb-run-%d-%d", os.Getpid(), i)
			d, err := timed(b.command(ctx, "run", "--rm", "--net", "none", "--name", name, berthBenchImage, "true"))
			if err != nil {
				b.names = append(b.names, name)
			}
			return d, err
		}
		id := fmt.Sprintf("bb-ctr-%d-%d-%d", os.Getpid(), j, i)
		args := append([]string{"run", "--rm"}, b.runcFlags(b.runcs[j-1])...)
		d, err := timed(b.ctrCommand(ctx, append(args, berthBenchImage, id, "true")...))
		if err != nil {
			b.ctrIDs = append(b.ctrIDs, id)
		}
		return d, err
	})
	if err != nil {
		return err
	}
	line, ratios := report("run --rm true", labels, samples)
	fmt.Println(line)
	for i, ratio := range ratios {
		sum.add("berth run --rm true, median time", "berth/ctr + runc shim + "+strings.TrimPrefix(runcLabel(b.runcs[i]), "runc "), ratio, berthRunTarget)
	}
	return nil
}

// psCase creates count containers with `berth create` and times `berth ps
// -a` over them.
func (b *berthBench) psCase(ctx context.Context, warmup, n, count int) error {
	var names []string
	for i := range count {
		names = append(names, fmt.Sprintf("bb-ps-%d-%d", os.Getpid(), i))
	}
	b.names = append(b.names, names...)
	if err := inParallel(names, func(name string) error {
		_, err := b.run(ctx, "create", "--name", name, berthBenchImage, "true")
		return err
	}); err != nil {
		return err
	}
	samples, err := alternate(ctx, 1, warmup, n, func(int, int) (time.Duration, error) {
		return timed(b.command(ctx, "ps", "-a"))
	})
	if err != nil {
		return err
	}
	// What was timed lists them all: a ps that lists fewer is no figure.
	out, err := b.run(ctx, "ps", "-a", "-q")
	if err != nil {
		return err
	}
	if listed := len(strings.Fields(out)); listed != count {
		return fmt.Errorf("ps -a -q lists %d containers, want the %d created", listed, count)
	}
	fmt.Printf("berth ps -a, %d containers: median %s p90 %s (%d runs after %d warm-up)\n",
		count, ms(quantile(samples[0], 0.5)), ms(quantile(samples[0], 0.9)), n, warmup)
	return b.removeBerth(ctx, names)
}

// inParallel calls do for each of items, a few at a time: each call is
// mostly waiting on containerd.
func inParallel(items []string, do func(string) error) error {
	const workers = 4
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan string)
	for range workers {
		wg.Go(func() {
			for item := range next {
				if err := do(item); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, item := range items {
		next <- item
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// removeBerth removes berth containers, running or not, and stops
// tracking them.
func (b *berthBench) removeBerth(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if _, err := b.run(ctx, append([]string{"rm", "-f"}, names...)...); err != nil {
		return err
	}
	b.names = without(b.names, names)
	return nil
}

// without is list less the items of drop.
func without(list, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
}

// removeCtr kills and deletes ctr containers; one that does not exist is
// not an error.
func (b *berthBench) removeCtr(ctx context.Context, ids []string) error {
	err := inParallel(ids, func(id string) error {
		if _, err := output(b.ctrCommand(ctx, "task", "kill", "--signal", "SIGKILL", id)); err == nil {
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				tasks, err := b.ctrTasks(ctx)
				if err != nil || tasks[id].status != "RUNNING" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if _, err := output(b.ctrCommand(ctx, "task", "delete", "--force", id)); err != nil && !isNotFound(err) {
			return err
		}
		if _, err := output(b.ctrCommand(ctx, "container", "delete", id)); err != nil && !isNotFound(err) {
			return err
		}
		return nil
	})
	if err == nil {
		b.ctrIDs = without(b.ctrIDs, ids)
	}
	return err
}

func isNotFound(err error) bool { return strings.Contains(err.Error(), "not found") }

// close removes every container the bench may have left, stops berth's
// containerd (`system stop`; SIGKILL if it outlives that), unmounts what
// is left under the temp dir and removes it.
func (b *berthBench) close() error {
	// A context of its own: after ^C the bench's is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	pid := b.containerdPid()
	if pid > 0 {
		// All at once; one by one after an error, since a name that was
		// never made (a create that failed) fails the whole rm.
		if err := b.removeBerth(ctx, b.names); err != nil {
			for _, name := range b.names {
				if err := b.removeBerth(ctx, []string{name}); err != nil && !strings.Contains(err.Error(), "No such container") {
					errs = append(errs, err)
				}
			}
		}
		errs = append(errs, b.removeCtr(ctx, b.ctrIDs))
		if _, err := b.run(ctx, "system", "stop"); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, b.releaseNetwork(ctx))
		if ctrd.Alive(pid) {
			fmt.Fprintf(os.Stderr, "cleanup: killing containerd (pid %d), alive after system stop\n", pid)
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	// The shims of our containerd exit with their last container (berth's
	// after its linger): wait for them, then kill what is left.
	errs = append(errs, b.waitShims())
	// The containers' cgroups go with them; their parent /<namespace>
	// is removed where it is empty (rmdir: another user keeps it).
	for _, dir := range ctrd.CgroupDirs(berthBenchNamespace, "") {
		unix.Rmdir(dir)
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(b.dir))
	for i := len(mounts) - 1; i >= 0; i-- { // deepest first
		if err := unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i].Mountpoint, err))
		}
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// containerdPid is the pid berth's containerd wrote, if it is the one of
// the bench's berth.toml; 0 otherwise.
func (b *berthBench) containerdPid() int {
	data, _ := os.ReadFile(filepath.Join(b.dir, "st", "containerd.pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !strings.Contains(strings.Join(ctrd.Cmdline(pid), " "), b.dir) {
		return 0
	}
	return pid
}

// waitShims waits up to 10s for the processes serving the bench's
// containerd (they name its socket, under the temp dir) to exit, then
// kills those left and says so.
func (b *berthBench) waitShims() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := b.servingPids()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				unix.Kill(pid, unix.SIGKILL)
			}
			return fmt.Errorf("processes of berth's containerd left after cleanup, killed: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servingPids are the live processes whose command line names the
// bench's temp dir: its containerd and the shims it started.
func (b *berthBench) servingPids() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(strings.Join(ctrd.Cmdline(pid), " "), b.dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ctrTask is a line of `ctr task ls`.
type ctrTask struct {
	pid    int
	status string
}

// ctrTasks lists the namespace's tasks by id.
func (b *berthBench) ctrTasks(ctx context.Context) (map[string]ctrTask, error) {
	out, err := output(b.ctrCommand(ctx, "task", "ls"))
	if err != nil {
		return nil, err
	}
	return parseTaskList(out)
}

// parseTaskList reads `ctr task ls`: a header, then TASK PID STATUS.
func parseTaskList(out string) (map[string]ctrTask, error) {
	tasks := map[string]ctrTask{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("ctr task ls: unexpected line %q", sc.Text())
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("ctr task ls: pid of %q: %w", sc.Text(), err)
		}
		tasks[f[0]] = ctrTask{pid: pid, status: f[2]}
	}
	return tasks, sc.Err()
}
