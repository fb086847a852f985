package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/cni"
)

// berthCLI runs bin/berth with one test's berth.toml.
type berthCLI struct {
	t      *testing.T
	bin    string
	config string
	// timeout bounds each command; zero is a minute. A build that
	// installs packages takes a copy with more.
	timeout time.Duration
}

// berthBin is the front end: $BERTH_BIN, else berth beside berth-runtime.
func berthBin(t *testing.T) string {
	bin := os.Getenv("BERTH_BIN")
	if bin == "" {
		bin = filepath.Join(filepath.Dir(runtimeBin), "berth")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("berth not found at %s: run `make build` or set BERTH_BIN", bin)
	}
	return bin
}

// newManagedBerth gives t a berth whose managed containerd lives at temp
// paths under the returned dir (its state in dir/st, socket dir/st/c.sock),
// and registers the cleanup that takes it down even when t fails.
//
// Its networks are its own (conf dir and data root in dir), and a
// container run without --net has none (default_network = "none"): the
// tests of networking use newNetworkedBerth.
func newManagedBerth(t *testing.T) (*berthCLI, string) {
	return newBerthWithNetwork(t, "none")
}

// newNetworkedBerth is newManagedBerth with docker's default network,
// bridge. What networking changes on the host goes with the test: its
// containers and networks, the default network's bridge and rules, and
// what keepHostNetwork puts back.
func newNetworkedBerth(t *testing.T) (*berthCLI, string) {
	keepHostNetwork(t)
	b, dir := newBerthWithNetwork(t, "bridge")
	t.Cleanup(func() {
		if ids := strings.Fields(b.run("ps", "-aq").stdout); len(ids) > 0 {
			if res := b.run(append([]string{"rm", "-f", "-v"}, ids...)...); res.code != 0 {
				t.Errorf("cleanup: rm -f: %s", res.stderr)
			}
		}
		b.run("network", "prune", "-f")
		store := cni.NewStore(cni.Config{ConfDir: filepath.Join(dir, "net.d"), DataRoot: filepath.Join(dir, "data")})
		if err := store.ReleaseNetwork(context.Background(), cni.DefaultNetwork); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("cleanup: the default network's bridge and rules: %v", err)
		}
		b.run("system", "stop")
	})
	return b, dir
}

func newBerthWithNetwork(t *testing.T, defaultNetwork string) (*berthCLI, string) {
	// Under /run and short: the shims' sockets go under the state dir.
	dir, err := os.MkdirTemp("/run", "bt-")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "st")
	config := filepath.Join(dir, "berth.toml")
	t.Cleanup(func() { cleanupManaged(t, dir, filepath.Join(state, "config.toml")) })
	body := fmt.Sprintf("data_root = %q\n[containerd]\nroot = %q\nstate = %q\nsocket = %q\nstop_timeout = \"20s\"\n"+
		"[cni]\nconf_dir = %q\nplugin_dir = %q\ndefault_network = %q\n",
		filepath.Join(dir, "data"), filepath.Join(dir, "root"), state, filepath.Join(state, "c.sock"),
		filepath.Join(dir, "net.d"), filepath.Join(filepath.Dir(runtimeBin), "cni"), defaultNetwork)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return &berthCLI{t: t, bin: berthBin(t), config: config}, dir
}

// run runs berth for at most its timeout; safe from any goroutine.
func (b *berthCLI) run(args ...string) result {
	return b.runInput(nil, args...)
}

// runInput runs berth with stdin from in.
func (b *berthCLI) runInput(in io.Reader, args ...string) result {
	return b.runIO(in, nil, args...)
}

// runOutput runs berth with its stdout going to out instead of the result.
func (b *berthCLI) runOutput(out io.Writer, args ...string) result {
	return b.runIO(nil, out, args...)
}

// runIO runs berth with stdin from in and, where out is not nil, stdout
// to out.
func (b *berthCLI) runIO(in io.Reader, stdout io.Writer, args ...string) result {
	timeout := b.timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"--config", b.config}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	cmd.Stdin = in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if err != nil && res.code < 0 { // did not run, or killed: code -1
		res.stderr += err.Error()
	}
	return res
}

// mustRun runs berth and fails the test unless it exits 0.
func (b *berthCLI) mustRun(args ...string) result {
	b.t.Helper()
	res := b.run(args...)
	if res.code != 0 {
		b.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// TestBerthManagedContainerd drives the containerd berth manages as a
// user would: nothing runs at first; the first command that needs it
// starts it (and says so, once); it outlives that command and serves the
// next; `system stop` takes it down and leaves nothing behind.
func TestBerthManagedContainerd(t *testing.T) {
	b, dir := newManagedBerth(t)
	state := filepath.Join(dir, "st")
	socket := filepath.Join(state, "c.sock")

	if res := b.mustRun("system", "status"); !strings.Contains(res.stdout, "containerd: not running") {
		t.Fatalf("status before any command: %q", res.stdout)
	}

	// Another containerd named explicitly is never started in its place.
	other := filepath.Join(dir, "other.sock")
	res := b.run("--address", other, "info")
	if res.code != 125 || !strings.Contains(res.stderr, "nothing answers at "+other) {
		t.Fatalf("info at an address where nothing answers: exit %d, stderr %q; want 125 naming the address", res.code, res.stderr)
	}

	res = b.mustRun("info")
	started := regexp.MustCompile(`(?m)^berth: started containerd \(pid (\d+), socket ` + regexp.QuoteMeta(socket) + `\)$`)
	m := started.FindAllStringSubmatch(res.stderr, -1)
	if len(m) != 1 {
		t.Fatalf("info's stderr should say once that it started containerd: %q", res.stderr)
	}
	pid, _ := strconv.Atoi(m[0][1])
	for _, want := range []string{fmt.Sprintf("Managed Containerd: yes (pid %d)", pid), "Default Runtime:    io.containerd.berth.v2",
		"Containerd Version: v2.", "Address:            " + socket} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("info does not show %q:\n%s", want, res.stdout)
		}
	}
	// It outlived berth, in a session of its own.
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Fatalf("containerd (pid %d) after berth exited: session %d, %v; want a live session leader", pid, sid, err)
	}

	res = b.mustRun("version")
	if strings.Contains(res.stderr, "started containerd") || !strings.Contains(res.stdout, "Server:\n containerd:\n  Version:          v2.") {
		t.Fatalf("a second command should reuse containerd:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
	}
	if res := b.mustRun("system", "status"); !strings.Contains(res.stdout, fmt.Sprintf("containerd: running (pid %d)\n", pid)) {
		t.Fatalf("status while it runs: %q", res.stdout)
	}
	if res := b.mustRun("system", "start"); !strings.Contains(res.stdout, fmt.Sprintf("already running (pid %d", pid)) {
		t.Fatalf("start while it runs: %q %q", res.stdout, res.stderr)
	}

	if res := b.mustRun("system", "stop"); !strings.Contains(res.stdout, fmt.Sprintf("stopped containerd (pid %d)", pid)) {
		t.Fatalf("stop: %q", res.stdout)
	}
	if processRuns(pid) {
		t.Errorf("containerd (pid %d) still runs after `system stop`", pid)
	}
	for _, p := range []string{socket, socket + ".ttrpc", filepath.Join(state, "containerd.pid")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after `system stop`", p)
		}
	}
	if mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); len(mounts) > 0 {
		t.Errorf("mounts left under %s after `system stop`: %d, the first %s", dir, len(mounts), mounts[0].Mountpoint)
	}
	if res := b.mustRun("system", "status"); !strings.Contains(res.stdout, "containerd: not running") {
		t.Fatalf("status after stop: %q", res.stdout)
	}

	// Two commands at once start one containerd between them.
	results := make(chan result, 2)
	for range 2 {
		go func() { results <- b.run("version") }()
	}
	var starts int
	for range 2 {
		res := <-results
		if res.code != 0 {
			t.Fatalf("concurrent version: exit %d: %s", res.code, res.stderr)
		}
		starts += len(started.FindAllString(res.stderr, -1))
	}
	if starts != 1 {
		t.Fatalf("two concurrent commands said %d times that they started containerd, want once", starts)
	}
	if res := b.mustRun("system", "stop"); !strings.Contains(res.stdout, "stopped containerd") {
		t.Fatalf("second stop: %q", res.stdout)
	}
}

// processRuns says whether pid is a process that has not exited: a zombie
// (containerd's new parent, init, may reap it a moment later) has.
func processRuns(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// cleanupManaged takes down what a test's managed containerd left, even
// when the test failed half way: the containerd (by its pid file, and
// only if that process was started with the test's config), mounts, dirs.
func cleanupManaged(t *testing.T, dir, configPath string) {
	b, _ := os.ReadFile(filepath.Join(dir, "st", "containerd.pid"))
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(configPath)) {
			t.Logf("cleanup: killing containerd (pid %d) the test left running", pid)
			unix.Kill(pid, unix.SIGKILL)
			deadline := time.Now().Add(10 * time.Second)
			for processRuns(pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// A shim outlives its last container by its linger time, and one that
	// is still there would make its socket dir again after the RemoveAll.
	if pids := waitShimsGone(filepath.Join(dir, "st", "c.sock")); len(pids) > 0 {
		t.Logf("cleanup: shims of the test's containerd still run: %v", pids)
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	for i := len(mounts) - 1; i >= 0; i-- { // deepest first
		if err := unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", mounts[i].Mountpoint, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}
