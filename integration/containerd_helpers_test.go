package integration

// A private containerd for tests, driven through its own ctr, with
// containerd's runc shim (containerd-shim-runc-v2) running the runtime under
// test as its "runc". Everything it makes lives under the test's own
// directories, and cleanup takes all of it down again, failure or not.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/integration/image"
)

const (
	// ctrdNamespace is the containerd namespace of every test container;
	// ctr makes each container's cgroup /<namespace>/<id>.
	ctrdNamespace = "berthtest"
	// ctrdImage is the name the test image is imported under.
	ctrdImage = "docker.io/berthtest/busybox:latest"
	// shimSocketDir is where containerd's shims put their sockets when
	// containerd runs as root; it is not configurable.
	shimSocketDir = "/run/containerd/s"
)

// ctrd is one running private containerd.
type ctrd struct {
	t        *testing.T
	bin      string // bin/ with containerd, ctr, containerd-shim-runc-v2
	root     string // containerd root (content, snapshots, metadata)
	state    string // containerd state: sockets, shim bundles, runtime root, fifos
	sock     string
	runcRoot string // --root the shim passes to the runtime
	fifoDir  string
	// runtime is what the shim runs as "runc": a script that records each
	// call in calls and then runs realRuntime.
	runtime     string
	realRuntime string
	calls       string
	log         string // containerd's own log
	cmd         *exec.Cmd
	exited      chan struct{}
	// createdDirs are the directories outside state and root that this
	// containerd made (the shim socket dir), removed again when empty.
	createdDirs []string
}

// containerdBinDir is where the containerd binaries are: CONTAINERD_BIN_DIR,
// else the repository's bin/ (where `make` puts them).
func containerdBinDir() string {
	if d := os.Getenv("CONTAINERD_BIN_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs("../bin")
	return d
}

// ctrdRuntimeBinary is the runtime the shim drives: CTR_RUNTIME_BINARY (e.g.
// /usr/sbin/runc, to prove the harness), else the berth-runtime under test.
func ctrdRuntimeBinary(t *testing.T) string {
	p := os.Getenv("CTR_RUNTIME_BINARY")
	if p == "" {
		return runtimeBin
	}
	if !filepath.IsAbs(p) {
		lp, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("CTR_RUNTIME_BINARY=%s: %v", p, err)
		}
		p = lp
	}
	return p
}

// startContainerd starts a private containerd for t, imports the busybox
// test image and registers the cleanup that takes it all down. It skips the
// test when the containerd binaries have not been built.
func startContainerd(t *testing.T) *ctrd {
	t.Helper()
	bin := containerdBinDir()
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Skipf("%s not built (run `make containerd` or set CONTAINERD_BIN_DIR): %v", b, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	c := &ctrd{t: t, bin: bin, root: t.TempDir(), realRuntime: ctrdRuntimeBinary(t), exited: make(chan struct{})}
	// The state dir holds unix sockets, whose paths must stay under 108
	// bytes: keep it short, under /run, and remove it in cleanup.
	state, err := os.MkdirTemp("/run", "berth-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c.state = state
	c.sock = filepath.Join(state, "containerd.sock")
	c.runcRoot = filepath.Join(state, "runtime")
	c.fifoDir = filepath.Join(state, "fifo")
	c.calls = filepath.Join(state, "runtime-calls.log")
	c.runtime = filepath.Join(state, "runtime.sh")
	c.log = filepath.Join(c.root, "containerd.log")
	for _, d := range []string{shimSocketDir, filepath.Dir(shimSocketDir)} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			c.createdDirs = append(c.createdDirs, d)
		}
	}
	// Registered first, so it runs after the cleanup below has stopped
	// containerd and unmounted its snapshots.
	t.Cleanup(func() { os.RemoveAll(c.state) })
	t.Cleanup(c.cleanup)

	for _, d := range []string{c.runcRoot, c.fifoDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.runtime, []byte(runtimeWrapper(c.realRuntime, c.calls)), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(c.root, "config.toml")
	if err := os.WriteFile(cfg, []byte(c.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(filepath.Join(bin, "containerd"), "--config", cfg)
	c.cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Its own process group: a ^C to the test does not reach it first, and
	// cleanup decides when it stops.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if r := c.ctr("version"); r.code == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %s%s\n%s", c.sock, r.stderr, r.stdout, c.tail(c.log, 30))
		}
		select {
		case <-c.exited:
			t.Fatalf("containerd exited: %v\n%s", c.cmd.ProcessState, c.tail(c.log, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.importImage()
	return c
}

// config is containerd's config.toml: everything under the test's dirs, no
// CRI (nothing here needs Kubernetes' plugins), overlayfs snapshots.
func (c *ctrd) config() string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
temp = %q
imports = []
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "debug"
`, c.root, c.state, filepath.Join(c.root, "tmp"), c.sock, c.sock+".ttrpc")
}

// runtimeWrapper is a script that appends each call's arguments, and then
// its exit status and on failure the runtime's --log, to calls before
// passing the status on: a record of exactly how the shim drives the runtime.
func runtimeWrapper(real, calls string) string {
	return fmt.Sprintf(`#!/bin/bash
calls=%q
{ printf 'call[%%d]:' $$; printf ' %%q' "$@"; echo; } >>"$calls"
%q "$@"
rc=$?
log=
prev=
for a in "$@"; do
	[[ $prev == --log ]] && log=$a
	[[ $a == --log=* ]] && log=${a#--log=}
	prev=$a
done
{
	printf 'exit[%%d]: %%d\n' $$ "$rc"
	if [[ $rc -ne 0 && -n $log && -f $log ]]; then tail -n 5 "$log" | sed 's/^/  log: /'; fi
} >>"$calls"
exit $rc
`, calls, real)
}

// ctr runs ctr against this containerd in the test namespace, for at most a
// minute.
func (c *ctrd) ctr(args ...string) result {
	return c.ctrTimeout(time.Minute, args...)
}

func (c *ctrd) ctrTimeout(d time.Duration, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "ctr"), c.ctrArgs(args...)...)
	// Files, not pipes: a task's process may keep ctr's stdio open.
	out, errf := tempFile(c.t), tempFile(c.t)
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	res := result{stdout: readAll(out), stderr: readAll(errf)}
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
		if ctx.Err() != nil {
			res.code = -1
			res.stderr += fmt.Sprintf("\n(ctr %s: killed after %s)", strings.Join(args, " "), d)
		}
	} else if err != nil {
		c.t.Fatalf("ctr %v: %v", args, err)
	}
	return res
}

func (c *ctrd) ctrArgs(args ...string) []string {
	return append([]string{"--address", c.sock, "--namespace", ctrdNamespace}, args...)
}

// mustCtr runs a ctr command that has to succeed and returns its stdout.
func (c *ctrd) mustCtr(args ...string) string {
	c.t.Helper()
	r := c.ctr(args...)
	if r.code != 0 {
		c.t.Fatalf("ctr %s: exit %d: %s%s%s", strings.Join(args, " "), r.code, r.stderr, r.stdout, c.diagnostics())
	}
	return r.stdout
}

// runFlags are the flags `ctr run` needs to drive the runtime under test
// through containerd's runc shim, with its state and fifos in our dirs.
func (c *ctrd) runFlags() []string {
	return []string{
		"--runtime", "io.containerd.runc.v2",
		"--runc-binary", c.runtime,
		"--runc-root", c.runcRoot,
		"--fifo-dir", c.fifoDir,
	}
}

// runArgs is `run [flags] IMAGE ID ARGS...` with the runtime flags.
func (c *ctrd) runArgs(flags []string, id string, args ...string) []string {
	a := append([]string{"run"}, c.runFlags()...)
	a = append(a, flags...)
	a = append(a, ctrdImage, id)
	return append(a, args...)
}

// importImage builds the busybox image archive and imports it.
func (c *ctrd) importImage() {
	c.t.Helper()
	archive := filepath.Join(c.root, "busybox.oci.tar")
	f, err := os.Create(archive)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := image.Busybox(f, ctrdImage); err != nil {
		f.Close()
		c.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		c.t.Fatal(err)
	}
	c.mustCtr("images", "import", archive)
	if out := c.mustCtr("images", "ls", "-q"); !strings.Contains(out, ctrdImage) {
		c.t.Fatalf("after import, images are %q; want %s", out, ctrdImage)
	}
}

// tasks returns the task list: id → status (RUNNING, PAUSED, STOPPED …).
func (c *ctrd) tasks() map[string]string {
	c.t.Helper()
	out := c.mustCtr("task", "ls")
	tasks := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 { // the header: TASK PID STATUS
			continue
		}
		tasks[f[0]] = f[2]
	}
	return tasks
}

// waitTask waits until `ctr task ls` shows the task with status want.
func (c *ctrd) waitTask(id, want string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := c.tasks()[id]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("task %s: status %q (listed %v), want %s%s", id, got, ok, want, c.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeContainer kills id's task, deletes it and the container with its
// snapshot; quietly, as a cleanup of whatever is left.
func (c *ctrd) removeContainer(id string) {
	if _, ok := c.tasks()[id]; ok {
		c.ctr("task", "kill", "--all", "--signal", "SIGKILL", id)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if st, ok := c.tasks()[id]; !ok || st == "STOPPED" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// --force only for a task that would not stop: the plain delete of
		// a stopped task is what every client does (ForceDeleteStopped
		// tests the other).
		args := []string{"task", "delete", id}
		if st := c.tasks()[id]; st != "STOPPED" {
			args = []string{"task", "delete", "--force", id}
		}
		if r := c.ctr(args...); r.code != 0 && !strings.Contains(r.stderr, "not found") {
			c.t.Errorf("cleanup: ctr %s: %s", strings.Join(args, " "), r.stderr)
		}
	}
	if r := c.ctr("container", "delete", id); r.code != 0 && !strings.Contains(r.stderr, "not found") {
		c.t.Errorf("cleanup: ctr container delete %s: %s", id, r.stderr)
	}
}

// container registers the cleanup of a container the test is about to make.
func (c *ctrd) container(t *testing.T) string {
	id := newID(t)
	t.Cleanup(func() { c.removeContainer(id) })
	return id
}

// diagnostics is what a failure message needs: the runtime calls so far
// and the end of containerd's log.
func (c *ctrd) diagnostics() string {
	return "\n--- runtime calls:\n" + c.tail(c.calls, 40) + "--- containerd log:\n" + c.tail(c.log, 20)
}

func (c *ctrd) tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n")+"\n", "\n")
	if len(lines) > n+1 {
		lines = lines[len(lines)-n-1:]
	}
	return strings.Join(lines, "")
}

// cleanup removes every container, stops containerd (by its pid), kills any
// shim or container process that survived, unmounts what it mounted under
// root and state, and removes the cgroups and socket dirs it made.
func (c *ctrd) cleanup() {
	t := c.t
	if t.Failed() || os.Getenv("CTR_SHOW_CALLS") != "" {
		t.Logf("runtime calls (%s):\n%s", c.realRuntime, c.tail(c.calls, 400))
	}
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.exited:
		default:
			if r := c.ctr("container", "ls", "-q"); r.code == 0 {
				for _, id := range strings.Fields(r.stdout) {
					t.Errorf("cleanup: container %s was left behind", id)
					c.removeContainer(id)
				}
			}
		}
	}
	pids := c.taskPids()
	c.stopDaemon()
	// Containers left in the runtime's root (the shim's is <root>/<ns>):
	// delete them with the real runtime, now that no shim uses them.
	nsRoot := filepath.Join(c.runcRoot, ctrdNamespace)
	left, _ := os.ReadDir(nsRoot)
	for _, e := range left {
		if e.IsDir() {
			t.Errorf("cleanup: runtime state of %s was left behind; deleting it", e.Name())
			exec.Command(c.realRuntime, "--root", nsRoot, "delete", "--force", e.Name()).Run()
		}
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("cleanup: task process %d (%s) outlived its container; killing it", pid, cmdline(pid))
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	// A shim shuts down on its own shortly after its last task is deleted:
	// give it that time before calling it a leak.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.strayProcesses()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range c.strayProcesses() {
		t.Errorf("cleanup: process %d (%s) still refers to %s; killing it", pid, cmdline(pid), c.state)
		unix.Kill(pid, unix.SIGKILL)
	}
	c.unmountAll()
	c.removeCgroups()
	c.removeShimSockets()
}

func (c *ctrd) stopDaemon() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		c.t.Errorf("containerd (pid %d) did not stop on SIGTERM; killing it", c.cmd.Process.Pid)
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// taskPids reads the pids the shims recorded for their tasks' processes
// (init.pid, and <exec-id>.pid for each exec) in each bundle.
func (c *ctrd) taskPids() []int {
	var pids []int
	matches, _ := filepath.Glob(filepath.Join(c.state, "io.containerd.runtime.v2.task", "*", "*", "*.pid"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// strayProcesses are the processes whose command line names the state dir:
// shims (their -address) and anything else started for this containerd.
func (c *ctrd) strayProcesses() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), c.state) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; its parent will reap it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// unmountAll unmounts every mount under root or state, deepest first.
func (c *ctrd) unmountAll() {
	for _, mp := range mountsUnder(c.root, c.state) {
		c.t.Logf("cleanup: unmounting %s", mp)
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			c.t.Errorf("cleanup: unmount %s: %v", mp, err)
		}
	}
}

// mountsUnder lists the mount points at or below any of dirs, deepest first.
func mountsUnder(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				mps = append(mps, mp)
				break
			}
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes /<namespace> (ctr's cgroup parent) in every
// hierarchy once it is empty, and reports leaves left in it.
func (c *ctrd) removeCgroups() {
	parents, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ctrdNamespace))
	if p := filepath.Join("/sys/fs/cgroup", ctrdNamespace); isDir(p) {
		parents = append(parents, p) // cgroup v2 (unified at /sys/fs/cgroup)
	}
	prefix := fmt.Sprintf("it-%d-", os.Getpid())
	for _, p := range parents {
		leaves, _ := os.ReadDir(p)
		for _, l := range leaves {
			if l.IsDir() && strings.HasPrefix(l.Name(), prefix) {
				c.t.Errorf("cleanup: cgroup %s/%s was left behind", p, l.Name())
				unix.Rmdir(filepath.Join(p, l.Name()))
			}
		}
		// Fails while another test run still has containers in it.
		unix.Rmdir(p)
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// removeShimSockets removes the sockets of this containerd's shims (named by
// a hash of containerd's address, namespace and grouping id) that a killed
// shim left, and the socket dirs if this containerd made them and they are
// empty.
func (c *ctrd) removeShimSockets() {
	for _, id := range c.knownIDs() {
		for _, suffix := range []string{"", "/debug"} {
			sum := sha256.Sum256([]byte(filepath.Join(c.sock, ctrdNamespace, id) + suffix))
			p := filepath.Join(shimSocketDir, fmt.Sprintf("%x", sum))
			if _, err := os.Lstat(p); err == nil {
				c.t.Errorf("cleanup: shim socket %s (container %s) was left behind", p, id)
				os.Remove(p)
			}
		}
	}
	for _, d := range c.createdDirs {
		unix.Rmdir(d) // only when empty: another containerd may use it
	}
}

// knownIDs are the container ids this process handed out so far.
func (c *ctrd) knownIDs() []string {
	var ids []string
	for i := int64(1); i <= idSeq.Load(); i++ {
		ids = append(ids, fmt.Sprintf("it-%d-%d", os.Getpid(), i))
	}
	return ids
}

// ptyCtr is a ctr command running on a terminal the test holds the other
// end of, as a user at a terminal would run `ctr run -t`.
type ptyCtr struct {
	t       *testing.T
	cmd     *exec.Cmd
	master  console.Console
	mu      sync.Mutex
	out     bytes.Buffer
	done    chan struct{} // closed when ctr has exited
	readEOF chan struct{}
}

// ctrOnPty starts ctr with a new pty as its controlling terminal and stdio.
func (c *ctrd) ctrOnPty(t *testing.T, args ...string) *ptyCtr {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Resize(console.WinSize{Height: 24, Width: 80}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	p := &ptyCtr{t: t, master: master, done: make(chan struct{}), readEOF: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(c.bin, "ctr"), c.ctrArgs(args...)...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = p.cmd.Start()
	slave.Close()
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.readEOF)
				return
			}
		}
	}()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		master.Close()
	})
	return p
}

// output is everything ctr wrote to the terminal so far.
func (p *ptyCtr) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal shows s, after at least from bytes.
func (p *ptyCtr) waitFor(s string, from int, d time.Duration) int {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := p.output()
		if i := strings.Index(out[min(from, len(out)):], s); i >= 0 {
			return from + i + len(s)
		}
		select {
		case <-p.done:
			// ctr is gone: whatever it printed is all there will be.
			time.Sleep(100 * time.Millisecond)
			if out := p.output(); strings.Contains(out[min(from, len(out)):], s) {
				return strings.Index(out, s) + len(s)
			}
			p.t.Fatalf("ctr exited (%v) before the terminal showed %q; it showed %q", p.cmd.ProcessState, s, p.output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("terminal did not show %q in %s; it showed %q", s, d, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeLine types a line at the terminal.
func (p *ptyCtr) typeLine(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s + "\r")); err != nil {
		p.t.Fatalf("type %q: %v", s, err)
	}
}

// wait waits for ctr to exit and returns its exit code.
func (p *ptyCtr) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("ctr did not exit in %s; the terminal showed %q", d, p.output())
		return -1
	}
}

// sub is c for a subtest: failures and cleanups go to t.
func (c *ctrd) sub(t *testing.T) *ctrd {
	cc := *c
	cc.t = t
	return &cc
}

// ctrAsync starts a ctr command and sends its result when it exits; it
// never fails the test itself, so it may run beside the test's goroutine.
func (c *ctrd) ctrAsync(d time.Duration, args ...string) <-chan result {
	done := make(chan result, 1)
	out, errf := tempFile(c.t), tempFile(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "ctr"), c.ctrArgs(args...)...)
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	go func() {
		defer cancel()
		err := cmd.Run()
		res := result{stdout: readAll(out), stderr: readAll(errf), code: -1}
		if cmd.ProcessState != nil {
			res.code = cmd.ProcessState.ExitCode()
		} else if err != nil {
			res.stderr += err.Error()
		}
		done <- res
	}()
	return done
}
