package integration

// Helpers for the tests of Berth's own shim (containerd-shim-berth-v2)
// under the private containerd of containerd_helpers_test.go. containerd
// finds the shim on its PATH, which package ctrd starts with the bin dir
// first.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	ctrdpkg "github.com/berthrt/berth/integration/ctrd"
)

const (
	// berthRuntime is the runtime type the shim serves.
	berthRuntime = "io.containerd.berth.v2"
	// berthShimRoot is the shim's default libcontainer root (plus the
	// namespace): what it leaves there after a test is a leak.
	berthShimRoot = "/run/containerd/berth"
)

// startShimContainerd is startContainerd for tests of the Berth shim: it
// skips when the shim is not built, and adds the checks that the shim
// left nothing behind in its state root.
func startShimContainerd(t *testing.T) *ctrd {
	t.Helper()
	for _, name := range []string{"containerd-shim-berth-v2", "containerd-shim-berth-v2-server"} {
		if _, err := os.Stat(filepath.Join(containerdBinDir(), name)); err != nil {
			t.Skipf("%s not built (run `make build`): %v", name, err)
		}
	}
	c := startContainerd(t)
	// Runs before the harness's cleanup (LIFO) but after every subtest's.
	t.Cleanup(c.checkShimState)
	return c
}

// checkShimState reports (and removes) libcontainer state that the shim
// left for this run's containers.
func (c *ctrd) checkShimState() {
	root := filepath.Join(berthShimRoot, ctrdNamespace)
	for _, id := range c.knownIDs() {
		dir := filepath.Join(root, id)
		if _, err := os.Stat(dir); err == nil {
			c.t.Errorf("cleanup: shim state %s was left behind", dir)
			exec.Command(runtimeBin, "--root", root, "delete", "--force", id).Run()
		}
	}
	os.Remove(root) // only when empty
}

// shimRunArgs is `run --runtime io.containerd.berth.v2 [flags] IMAGE ID
// ARGS...`.
func (c *ctrd) shimRunArgs(flags []string, id string, args ...string) []string {
	a := []string{"run", "--runtime", berthRuntime, "--fifo-dir", c.FifoDir}
	a = append(a, flags...)
	a = append(a, ctrdImage, id)
	return append(a, args...)
}

// shimDetached runs `sleep 300` detached (no IO) under the Berth shim, with
// extra ctr run flags, and waits until it runs.
func (c *ctrd) shimDetached(t *testing.T, flags ...string) string {
	t.Helper()
	id := c.container(t)
	c.mustCtr(c.shimRunArgs(append([]string{"--detach", "--null-io"}, flags...), id, "sleep", "300")...)
	c.waitTask(id, "RUNNING")
	return id
}

// ctrStdin runs ctr with stdin from a pipe: ready is called once ctr has
// started, and the input is written and the pipe closed after it returns.
// (ctr only sends CloseIO for an EOF that comes after it made the task or
// exec: an EOF before that would leave the process's stdin open.)
func (c *ctrd) ctrStdin(ready func(), input string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.CtrCommand(ctx, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	out, errf := tempFile(c.t), tempFile(c.t)
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	ready()
	io.WriteString(in, input)
	in.Close()
	cmd.Wait()
	res := result{stdout: readAll(out), stderr: readAll(errf), code: -1}
	if cmd.ProcessState != nil && ctx.Err() == nil {
		res.code = cmd.ProcessState.ExitCode()
	}
	return res
}

// ctrStderr is what ctr printed for the user: its own log lines (such as
// the cgroup v1 deprecation warning) left out.
func ctrStderr(s string) string {
	var out []string
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(line, "time=\"") && strings.Contains(line, " level=") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "")
}

// client is a containerd client for what ctr cannot do (update).
func (c *ctrd) client() (*containerd.Client, context.Context) {
	c.t.Helper()
	cl, err := containerd.New(c.Socket)
	if err != nil {
		c.t.Fatalf("containerd client: %v", err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl, namespaces.WithNamespace(context.Background(), ctrdNamespace)
}

// updateMemory sets a task's memory limit through the task API's Update.
func (c *ctrd) updateMemory(id string, limit int64) error {
	cl, ctx := c.client()
	ctr, err := cl.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return err
	}
	return task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}))
}

// taskPid is the host pid of a task's init, from `ctr task ls`.
func (c *ctrd) taskPid(id string) int {
	c.t.Helper()
	if task, ok := c.taskList()[id]; ok {
		return task.Pid
	}
	c.t.Fatalf("task %s is not listed%s", id, c.diagnostics())
	return 0
}

// parentPid reads a process's parent from /proc: a container's init is a
// child of the shim that runs it.
func parentPid(pid int) int { return ctrdpkg.ParentPid(pid) }

// eventWatch is `ctr events` running in the background, its output in a
// file the test reads as it grows.
type eventWatch struct {
	t   *testing.T
	out *os.File
	cmd *exec.Cmd
}

func (c *ctrd) watchEvents(t *testing.T) *eventWatch {
	t.Helper()
	w := &eventWatch{t: t, out: tempFile(t)}
	w.cmd = c.CtrCommand(context.Background(), "events")
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		})
	}
	t.Cleanup(stop)
	w.waitSubscribed(c)
	return w
}

// eventProbeLabel is the namespace label whose updates tell that `ctr
// events` has subscribed.
const eventProbeLabel = "berth-test-events-probe"

// waitSubscribed waits until ctr has subscribed (it prints nothing until
// an event comes): it labels the test namespace, which containerd
// publishes as /namespaces/update, until ctr prints that event. Then
// every event of what the test does next is seen.
func (w *eventWatch) waitSubscribed(c *ctrd) {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; ; n++ {
		c.mustCtr("namespaces", "label", ctrdNamespace, fmt.Sprintf("%s=%d", eventProbeLabel, n))
		for retry := time.Now().Add(200 * time.Millisecond); time.Now().Before(retry); time.Sleep(20 * time.Millisecond) {
			if strings.Contains(readAll(w.out), eventProbeLabel) {
				return
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("ctr events did not show the namespace update it waits for within 20s; it printed:\n%s", readAll(w.out))
		}
	}
}

// topics lists the topics of the events about container id, in order.
func (w *eventWatch) topics(id string) []string {
	var out []string
	for _, line := range strings.Split(readAll(w.out), "\n") {
		if !strings.Contains(line, `"`+id+`"`) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/tasks/") {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// waitTopics waits until id's events include every one of want, in that
// order (others may come between), and returns all of id's topics.
func (w *eventWatch) waitTopics(id string, d time.Duration, want ...string) []string {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := w.topics(id)
		if isSubsequence(want, got) {
			return got
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("events of %s: got %v, want %v in order; all events:\n%s", id, got, want, readAll(w.out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// cgroupFile reads a file of the container's cgroup: ctr puts it at
// /<namespace>/<id>; on v1 ctrl names the hierarchy.
func cgroupFile(ctrl, id, file string) (string, error) {
	p := filepath.Join("/sys/fs/cgroup", ctrl, ctrdNamespace, id, file)
	if isDir("/sys/fs/cgroup/unified") || !isDir(filepath.Join("/sys/fs/cgroup", ctrl)) {
		if _, err := os.Stat(p); err != nil {
			p = filepath.Join("/sys/fs/cgroup", ctrdNamespace, id, file) // pure v2
		}
	}
	b, err := os.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}

// restart kills containerd outright (SIGKILL, by its pid), as a crash or
// the OOM killer does, runs during (if not nil) while it is down, and
// starts it again with the same config and state. Its shims and their
// containers keep running.
func (c *ctrd) restart(during func()) {
	c.t.Helper()
	if err := c.Restart(context.Background(), during); err != nil {
		c.t.Fatal(err)
	}
}

// mountedUnder says whether anything is mounted at or below dir.
func mountedUnder(dir string) bool { return len(ctrdpkg.MountsUnder(dir)) > 0 }

func pidAlive(pid int) bool { return unix.Kill(pid, 0) == nil && ctrdpkg.Alive(pid) }

// waitExec waits until `ctr task ps` shows the exec id in the task.
func (c *ctrd) waitExec(id, execID string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.mustCtr("task", "ps", id), execID) {
		if time.Now().After(deadline) {
			c.t.Fatalf("exec %s does not show in ctr task ps %s%s", execID, id, c.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadTask is the client's handle on the task of container id.
func (c *ctrd) loadTask(t *testing.T, id string) (containerd.Task, context.Context) {
	t.Helper()
	cl, ctx := c.client()
	ctr, err := cl.LoadContainer(ctx, id)
	if err != nil {
		t.Fatalf("load container %s: %v", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatalf("load the task of %s: %v%s", id, err, c.diagnostics())
	}
	return task, ctx
}

// waitTTYSize types `stty size` at the terminal until the process's
// terminal shows rows and cols (a resize reaches it asynchronously), and
// returns the offset after the answer.
func (p *ptyCtr) waitTTYSize(from, rows, cols int) int {
	p.t.Helper()
	want := fmt.Sprintf("\n%d %d\r", rows, cols)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		p.typeLine("stty size")
		for retype := time.Now().Add(time.Second); time.Now().Before(retype); {
			out := p.output()
			if i := strings.Index(out[min(from, len(out)):], want); i >= 0 {
				return from + i + len(want)
			}
			select {
			case <-p.done:
				p.t.Fatalf("ctr exited (%v) before `stty size` showed %d %d; the terminal showed %q", p.cmd.ProcessState, rows, cols, p.output())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	p.t.Fatalf("`stty size` did not show %d %d within 15s; the terminal showed %q", rows, cols, p.output()[min(from, len(p.output())):])
	return 0
}

// exitStatus waits for the TaskExit of container id's init and returns
// its exit status.
func (w *eventWatch) exitStatus(id string, d time.Duration) int {
	w.t.Helper()
	return w.exitStatuses(id, 1, d)[0]
}

// exitStatuses waits for n TaskExits of container id's init and returns
// the exit status of each, in order.
func (w *eventWatch) exitStatuses(id string, n int, d time.Duration) []int {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var got []int
		for _, line := range strings.Split(readAll(w.out), "\n") {
			i := strings.Index(line, " /tasks/exit {")
			if i < 0 {
				continue
			}
			var e struct {
				ContainerID string `json:"container_id"`
				ID          string `json:"id"`
				ExitStatus  int    `json:"exit_status"`
			}
			if json.Unmarshal([]byte(line[i+len(" /tasks/exit "):]), &e) == nil && e.ContainerID == id && e.ID == id {
				got = append(got, e.ExitStatus)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%d TaskExit of %s within %s, want %d; events:\n%s", len(got), id, d, n, readAll(w.out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shimFootprint is what a running container of the Berth shim has on the
// host, taken while it runs: what must all be gone once it is cleaned up.
type shimFootprint struct {
	id      string
	pid     int // the init
	shimPid int // the shim serving it
	// sharedWith are the other tasks the shim serves (a group, or a
	// shared shim): it stays for them after this container goes.
	sharedWith []string
	bundle     string // containerd's bundle (rootfs mount, bootstrap.json)
	libState   string // libcontainer's state dir
	sockets    []string
}

func (c *ctrd) shimFootprint(t *testing.T, id string) shimFootprint {
	t.Helper()
	f := shimFootprint{
		id:       id,
		pid:      c.taskPid(id),
		bundle:   filepath.Join(c.State, "io.containerd.runtime.v2.task", ctrdNamespace, id),
		libState: filepath.Join(berthShimRoot, ctrdNamespace, id),
	}
	f.shimPid = parentPid(f.pid)
	if !strings.Contains(cmdline(f.shimPid), "containerd-shim-berth-v2") {
		t.Fatalf("parent %d of the task %s is %q, not the shim", f.shimPid, id, cmdline(f.shimPid))
	}
	for other, st := range c.tasks() {
		if other != id && st != "STOPPED" && parentPid(c.taskPid(other)) == f.shimPid {
			f.sharedWith = append(f.sharedWith, other)
		}
	}
	if !isDir(f.libState) {
		t.Fatalf("no libcontainer state for %s at %s", id, f.libState)
	}
	if len(cgroupDirs(id)) == 0 {
		t.Fatalf("no cgroup for %s under /sys/fs/cgroup", id)
	}
	if !mountedUnder(filepath.Join(f.bundle, "rootfs")) {
		t.Fatalf("the rootfs of %s is not mounted", id)
	}
	// The shim's sockets: the one containerd connects to (bootstrap.json)
	// and the debug one, both named after the group.
	var boot struct {
		Address string `json:"address"`
	}
	if b, err := os.ReadFile(filepath.Join(f.bundle, "bootstrap.json")); err != nil || json.Unmarshal(b, &boot) != nil || boot.Address == "" {
		t.Fatalf("no shim address in %s/bootstrap.json: %v", f.bundle, err)
	}
	f.sockets = append(f.sockets, strings.TrimPrefix(boot.Address, "unix://"))
	// The group is the annotation's, or for a container without one the
	// shared shim's Start picked; it records which in the bundle.
	b, err := os.ReadFile(filepath.Join(f.bundle, "berth-shim-group"))
	if err != nil || len(b) == 0 {
		t.Fatalf("no shim group recorded for %s: %v", id, err)
	}
	group := string(b)
	sum := sha256.Sum256([]byte(filepath.Join(c.Socket, ctrdNamespace, group, "debug")))
	f.sockets = append(f.sockets, filepath.Join(c.SocketDir, fmt.Sprintf("%x", sum)))
	for _, s := range f.sockets {
		if _, err := os.Lstat(s); err != nil {
			t.Fatalf("shim socket %s of %s: %v", s, id, err)
		}
	}
	return f
}

// shared says the shim served other tasks too when the footprint was
// taken: their shim may outlive this container.
func (f shimFootprint) shared() bool { return len(f.sharedWith) > 0 }

// leftovers lists what is still there of a container after its cleanup.
func (c *ctrd) leftovers(f shimFootprint) []string {
	var out []string
	if st, listed := c.tasks()[f.id]; listed {
		out = append(out, "ctr task ls lists the task ("+st+")")
	}
	if pidAlive(f.pid) {
		out = append(out, fmt.Sprintf("its init %d is alive", f.pid))
	}
	if pidAlive(f.shimPid) && !f.shared() {
		out = append(out, fmt.Sprintf("its shim %d is alive", f.shimPid))
	}
	for _, d := range cgroupDirs(f.id) {
		out = append(out, "cgroup "+d)
	}
	for _, m := range ctrdpkg.MountsUnder(f.bundle) {
		out = append(out, "mount "+m)
	}
	if _, err := os.Lstat(f.bundle); err == nil {
		out = append(out, "bundle "+f.bundle)
	}
	if _, err := os.Lstat(f.libState); err == nil {
		out = append(out, "libcontainer state "+f.libState)
	}
	for _, s := range f.sockets {
		if _, err := os.Lstat(s); err == nil && !(f.shared() && pidAlive(f.shimPid)) {
			out = append(out, "shim socket "+s)
		}
	}
	for _, p := range fifosUnder(c.State) {
		if strings.Contains(filepath.Base(p), f.id) {
			out = append(out, "fifo "+p)
		}
	}
	return out
}

// waitNothingLeft waits (30s at most) until nothing of the container is left.
func (c *ctrd) waitNothingLeft(f shimFootprint) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l := c.leftovers(f); len(l) > 0; l = c.leftovers(f) {
		if time.Now().After(deadline) {
			c.t.Fatalf("30s after the shim of %s was killed, left: %s%s", f.id, strings.Join(l, "; "), c.diagnostics())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cgroupDirs are the cgroups named after container id, in every
// hierarchy (v1: /sys/fs/cgroup/<controller>/<ns>/<id>; v2:
// /sys/fs/cgroup/<ns>/<id>).
func cgroupDirs(id string) []string { return ctrdpkg.CgroupDirs(ctrdNamespace, id) }

// fifosUnder lists the named pipes at or below dir.
func fifosUnder(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "rootfs" {
			return fs.SkipDir // a container's root, mounted in its bundle
		}
		if err == nil && d.Type()&fs.ModeNamedPipe != 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
}
