package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/daemon"
	ctrdpkg "github.com/berthrt/berth/integration/ctrd"
	"github.com/berthrt/berth/integration/image"
	"github.com/berthrt/berth/restart"
)

// restartBerth is a test's managed containerd with the busybox image
// loaded, and a client of it for making containers as berth run does.
type restartBerth struct {
	t      *testing.T
	b      *berthCLI
	dir    string
	client *containerd.Client
	ctx    context.Context
	img    containerd.Image
}

const restartTestImage = "docker.io/berthtest/restart:latest"

// newRestartBerth starts a private managed containerd for t (berth's own
// bin/containerd, with the restart monitor) and loads busybox into it.
// Cleanup stops and removes every container, then the containerd.
func newRestartBerth(t *testing.T) *restartBerth {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	b, dir := newManagedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })
	archive := filepath.Join(dir, "busybox.tar")
	writeArchive(t, archive, func(w io.Writer) error { return image.Busybox(w, restartTestImage) })
	b.mustRun("load", "-i", archive) // starts the managed containerd, sets berth's default runtime
	client, err := containerd.New(filepath.Join(dir, "st", "c.sock"))
	if err != nil {
		t.Fatalf("containerd client: %v", err)
	}
	r := &restartBerth{t: t, b: b, dir: dir, client: client, ctx: namespaces.WithNamespace(context.Background(), "default")}
	t.Cleanup(r.cleanup)
	if r.img, err = client.GetImage(r.ctx, restartTestImage); err != nil {
		t.Fatalf("get the loaded image: %v", err)
	}
	return r
}

// cleanup removes every container as `berth rm -f` would: marked stopped
// by the user first, so that no policy brings it back.
func (r *restartBerth) cleanup() {
	defer r.client.Close()
	if r.t.Failed() {
		logs, _ := os.ReadFile(filepath.Join(r.dir, "st", "containerd.log"))
		r.t.Logf("containerd.log, the restart monitor's lines:\n%s", grepLines(string(logs), "berth restart monitor"))
	}
	list, err := r.client.Containers(r.ctx)
	if err != nil {
		r.t.Errorf("cleanup: list containers: %v", err)
		return
	}
	for _, c := range list {
		restart.MarkStoppedByUser(r.ctx, c)
		if task, err := c.Task(r.ctx, nil); err == nil {
			task.Delete(r.ctx, containerd.WithProcessKill)
		}
		if err := c.Delete(r.ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			r.t.Errorf("cleanup: delete container %s: %v", c.ID(), err)
		}
	}
	// The shims go on a moment after their last task: wait for them, lest
	// one writes under the test's dir after it was removed.
	socket := filepath.Join(r.dir, "st", "c.sock")
	if pids := waitShimsGone(socket); len(pids) > 0 {
		r.t.Errorf("cleanup: shims of %s still run 10s after their last task: %v", socket, pids)
	}
}

// waitShimsGone waits up to 10s for the shims serving the containerd at
// socket to exit, and returns those still running then.
func waitShimsGone(socket string) []int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := shimsOf(socket)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shimsOf are the pids of the shims serving the containerd at socket.
func shimsOf(socket string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args := strings.Join(ctrdpkg.Cmdline(pid), " ")
		if strings.Contains(args, "containerd-shim") && strings.Contains(args, " -address "+socket) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// run creates a container with a policy's labels and starts its task
// with no stdio, as `berth run -d` does.
func (r *restartBerth) run(id string, labels map[string]string, args ...string) containerd.Container {
	r.t.Helper()
	return r.runSpec(id, labels, nil, args...)
}

// runSpec is run with more of the container's spec.
func (r *restartBerth) runSpec(id string, labels map[string]string, spec []oci.SpecOpts, args ...string) containerd.Container {
	r.t.Helper()
	labels["berth/name"] = id
	spec = append([]oci.SpecOpts{oci.WithImageConfig(r.img), oci.WithProcessArgs(args...)}, spec...)
	c, err := r.client.NewContainer(r.ctx, id,
		containerd.WithRuntime(daemon.RuntimeType, nil),
		containerd.WithImage(r.img),
		containerd.WithNewSnapshot(id, r.img),
		containerd.WithNewSpec(spec...),
		containerd.WithContainerLabels(labels))
	if err != nil {
		r.t.Fatalf("create container %s: %v", id, err)
	}
	task, err := c.NewTask(r.ctx, cio.NullIO)
	if err != nil {
		r.t.Fatalf("create the task of %s: %v", id, err)
	}
	if err := task.Start(r.ctx); err != nil {
		r.t.Fatalf("start %s: %v", id, err)
	}
	return c
}

// state is what a user sees of a container: its task's status and pid
// ("" and 0 without a task) and its labels.
type containerState struct {
	status containerd.ProcessStatus
	pid    uint32
	labels map[string]string
}

func (r *restartBerth) state(c containerd.Container) containerState {
	r.t.Helper()
	var s containerState
	labels, err := c.Labels(r.ctx)
	if err != nil {
		r.t.Fatalf("labels of %s: %v", c.ID(), err)
	}
	s.labels = labels
	if task, err := c.Task(r.ctx, nil); err == nil {
		s.pid = task.Pid()
		if st, err := task.Status(r.ctx); err == nil {
			s.status = st.Status
		}
	}
	return s
}

func (s containerState) String() string {
	return fmt.Sprintf("task %q pid %d, count %q, exit %q, stopped-by-user %q", s.status, s.pid,
		s.labels["berth/restart-count"], s.labels["berth/exit-code"], s.labels["berth/stopped-by-user"])
}

// waitFor polls c until cond holds, failing after d.
func (r *restartBerth) waitFor(c containerd.Container, d time.Duration, what string, cond func(containerState) bool) containerState {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := r.state(c)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not %s within %v; now %v", c.ID(), what, d, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// staysFor checks that cond keeps holding for d: long enough for a
// restart the monitor wrongly makes (its delays here are under d).
func (r *restartBerth) staysFor(c containerd.Container, d time.Duration, what string, cond func(containerState) bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s := r.state(c); !cond(s) {
			r.t.Fatalf("%s: no longer %s: %v", c.ID(), what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func running(s containerState) bool { return s.status == containerd.Running }
func exited(s containerState) bool  { return s.status == containerd.Stopped }

// killTask sends sig to c's task, as a crash (or `berth kill`) would.
func (r *restartBerth) killTask(c containerd.Container, sig unix.Signal) {
	r.t.Helper()
	task, err := c.Task(r.ctx, nil)
	if err != nil {
		r.t.Fatalf("task of %s: %v", c.ID(), err)
	}
	if err := task.Kill(r.ctx, sig); err != nil {
		r.t.Fatalf("kill %s: %v", c.ID(), err)
	}
}

// TestBerthRestartPolicies runs containers with each policy in berth's
// managed containerd, with no berth process running, and checks what
// docker users expect: always restarts at once and counts, on-failure:N
// stops after N restarts keeping the exit code, a clean exit under
// on-failure and a user's stop stay, a crash loop backs off, --rm removes.
func TestBerthRestartPolicies(t *testing.T) {
	r := newRestartBerth(t)
	if ok, err := restart.Available(r.ctx, r.client); err != nil || !ok {
		t.Fatalf("restart.Available on berth's containerd: %v, %v; want true", ok, err)
	}
	for name, test := range map[string]func(*restartBerth){
		"always":            (*restartBerth).testAlways,
		"on-failure:2":      (*restartBerth).testOnFailureMax,
		"on-failure exit 0": (*restartBerth).testOnFailureSuccess,
		"stopped by user":   (*restartBerth).testStoppedByUser,
		"backoff":           (*restartBerth).testBackoff,
		"auto-remove":       (*restartBerth).testAutoRemove,
		"oom-killed":        (*restartBerth).testOOMKilled,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sub := *r
			sub.t = t
			test(&sub)
		})
	}
}

func (r *restartBerth) testAlways() {
	c := r.run("rs-always", map[string]string{"berth/restart": "always"}, "sleep", "1000")
	first := r.waitFor(c, 10*time.Second, "running", running)

	// An exec's exit is not the container's.
	task, _ := c.Task(r.ctx, nil)
	spec, _ := c.Spec(r.ctx)
	pspec := *spec.Process
	pspec.Args = []string{"true"}
	proc, err := task.Exec(r.ctx, "probe", &pspec, cio.NullIO)
	if err != nil {
		r.t.Fatalf("exec: %v", err)
	}
	exitCh, _ := proc.Wait(r.ctx)
	if err := proc.Start(r.ctx); err != nil {
		r.t.Fatalf("exec start: %v", err)
	}
	<-exitCh
	proc.Delete(r.ctx)

	r.killTask(c, unix.SIGKILL)
	r.waitFor(c, 5*time.Second, "restarted", func(s containerState) bool { return running(s) && s.pid != first.pid })
	// What inspect shows: the exit (the shim's time) and the new start.
	s := r.waitFor(c, 5*time.Second, "counted once, its start after its last exit", func(s containerState) bool {
		finished := restart.ParseTime(s.labels["berth/finished-at"])
		return s.labels["berth/restart-count"] == "1" && !finished.IsZero() && restart.ParseTime(s.labels["berth/started-at"]).After(finished)
	})
	took := restart.ParseTime(s.labels["berth/started-at"]).Sub(restart.ParseTime(s.labels["berth/finished-at"]))
	r.t.Logf("always: restarted %v after the exit", took)
	if took > time.Second {
		r.t.Errorf("always: restarted %v after the exit, want within a second", took)
	}
	r.staysFor(c, 500*time.Millisecond, "running, counted once", func(s containerState) bool {
		return running(s) && s.labels["berth/restart-count"] == "1"
	})
}

func (r *restartBerth) testOnFailureMax() {
	c := r.run("rs-onfail2", map[string]string{"berth/restart": "on-failure:2"}, "sh", "-c", "exit 3")
	done := func(s containerState) bool {
		return exited(s) && s.labels["berth/restart-count"] == "2" && s.labels["berth/exit-code"] == "3"
	}
	r.waitFor(c, 10*time.Second, "exited 3 after two restarts", done)
	r.staysFor(c, 1500*time.Millisecond, "exited after two restarts", done)

	// berth start: the count starts again (UserStartLabels clear it),
	// so two more restarts.
	r.userStart(c)
	r.waitFor(c, 10*time.Second, "exited 3 after two restarts again", done)
	r.staysFor(c, 1500*time.Millisecond, "exited after two restarts again", done)
}

// userStart starts an exited container as berth start does.
func (r *restartBerth) userStart(c containerd.Container) {
	r.t.Helper()
	if _, err := c.SetLabels(r.ctx, restart.UserStartLabels()); err != nil {
		r.t.Fatal(err)
	}
	if task, err := c.Task(r.ctx, nil); err == nil {
		if _, err := task.Delete(r.ctx); err != nil {
			r.t.Fatalf("delete the exited task of %s: %v", c.ID(), err)
		}
	}
	task, err := c.NewTask(r.ctx, cio.NullIO)
	if err != nil {
		r.t.Fatalf("create the task of %s: %v", c.ID(), err)
	}
	if err := task.Start(r.ctx); err != nil {
		r.t.Fatalf("start %s: %v", c.ID(), err)
	}
}

func (r *restartBerth) testOnFailureSuccess() {
	c := r.run("rs-onfail-ok", map[string]string{"berth/restart": "on-failure"}, "true")
	done := func(s containerState) bool {
		return exited(s) && s.labels["berth/exit-code"] == "0" && s.labels["berth/finished-at"] != "" && s.labels["berth/restart-count"] == ""
	}
	r.waitFor(c, 10*time.Second, "exited 0", done)
	r.staysFor(c, time.Second, "exited 0, not restarted", done)
}

// testStoppedByUser: berth stop of an always container and berth kill
// of an on-failure one (the label first, then the signal) leave them
// stopped, with the exit code the signal gave.
func (r *restartBerth) testStoppedByUser() {
	var list []containerd.Container
	for id, policy := range map[string]string{"rs-stopped": "always", "rs-killed": "on-failure"} {
		list = append(list, r.run(id, map[string]string{"berth/restart": policy}, "sleep", "1000"))
	}
	stopped := func(s containerState) bool { return exited(s) && s.labels["berth/exit-code"] == "137" }
	for _, c := range list {
		r.waitFor(c, 10*time.Second, "running", running)
		if err := restart.MarkStoppedByUser(r.ctx, c); err != nil {
			r.t.Fatal(err)
		}
		r.killTask(c, unix.SIGKILL)
		r.waitFor(c, 10*time.Second, "exited 137", stopped)
	}
	for _, c := range list {
		r.staysFor(c, time.Second, "stopped", stopped)
	}
}

// testBackoff watches the starts of a crash-looping container: the
// delays between them grow (docker: 100 ms, doubling).
func (r *restartBerth) testBackoff() {
	const id = "rs-backoff"
	starts := r.watchStarts(id)
	r.run(id, map[string]string{"berth/restart": "always"}, "sh", "-c", "exit 1")
	var times []time.Time
	deadline := time.After(30 * time.Second)
	for len(times) < 7 {
		select {
		case at := <-starts:
			times = append(times, at)
		case <-deadline:
			r.t.Fatalf("backoff: %d starts within 30s, want 7", len(times))
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	// The sixth restart waits 3.2s (100ms doubled five times) on top of
	// the time the container takes to exit and be restarted.
	if gaps[0] > time.Second || gaps[len(gaps)-1] < 3200*time.Millisecond {
		r.t.Errorf("backoff: gaps between restarts %v; want the first within a second and the sixth over 3.2s (100ms doubling)", gaps)
	}
}

// watchStarts sends the time of each start of container id's task.
func (r *restartBerth) watchStarts(id string) <-chan time.Time {
	ctx, cancel := context.WithCancel(r.ctx)
	r.t.Cleanup(cancel)
	envs, _ := r.client.Subscribe(ctx, `topic=="/tasks/start"`)
	out := make(chan time.Time, 64)
	var once sync.Once
	go func() {
		defer once.Do(func() { close(out) })
		for env := range envs {
			ev, err := typeurl.UnmarshalAny(env.Event)
			if start, ok := ev.(*eventtypes.TaskStart); err == nil && ok && start.ContainerID == id {
				out <- env.Timestamp
			}
		}
	}()
	return out
}

func (r *restartBerth) testAutoRemove() {
	const id = "rs-autoremove"
	// Its directory of berth's data, as berth run makes it, with its log.
	dataDir := filepath.Join(r.dir, "data", "containers", id)
	logPath := filepath.Join(dataDir, id+"-json.log")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		r.t.Fatal(err)
	}
	c := r.runSpec(id, map[string]string{"berth/auto-remove": "true"},
		[]oci.SpecOpts{oci.WithAnnotations(map[string]string{"io.berth.log.path": logPath})}, "true")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.client.LoadContainer(r.ctx, id)
		if errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("auto-remove: %s still there 10s after it exited: %v", id, r.state(c))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := r.client.SnapshotService("").Stat(r.ctx, id); !errdefs.IsNotFound(err) {
		r.t.Errorf("auto-remove: the snapshot of %s is left (%v)", id, err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		r.t.Errorf("auto-remove: %s is left (%v)", dataDir, err)
	}
}

// testOOMKilled: a container its memory limit kills shows it, as
// docker's .State.OOMKilled does, with exit code 137.
func (r *restartBerth) testOOMKilled() {
	c := r.runSpec("rs-oom", map[string]string{"berth/restart": "no"},
		[]oci.SpecOpts{oci.WithMemoryLimit(32 << 20), oci.WithMemorySwap(32 << 20)},
		"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
	r.waitFor(c, 10*time.Second, "OOM-killed with exit code 137", func(s containerState) bool {
		return exited(s) && s.labels["berth/oom-killed"] == "true" && s.labels["berth/exit-code"] == "137"
	})
}

// TestBerthRestartAcrossContainerdRestart kills the managed containerd,
// kills containers' tasks while it is down, and starts containerd again:
// unless-stopped and always containers come back (an always one even
// after the user stopped it, as with docker's daemon), an on-failure one
// that died meanwhile is restarted and counted, an unless-stopped one the
// user stopped stays stopped.
func TestBerthRestartAcrossContainerdRestart(t *testing.T) {
	r := newRestartBerth(t)
	up := r.run("rs-unless", map[string]string{"berth/restart": "unless-stopped"}, "sleep", "1000")
	stopped := r.run("rs-unless-stopped", map[string]string{"berth/restart": "unless-stopped"}, "sleep", "1000")
	always := r.run("rs-always-stopped", map[string]string{"berth/restart": "always"}, "sleep", "1000")
	onFailure := r.run("rs-onfail-down", map[string]string{"berth/restart": "on-failure:3"}, "sleep", "1000")
	upBefore := r.waitFor(up, 10*time.Second, "running", running)
	onFailureBefore := r.waitFor(onFailure, 10*time.Second, "running", running)
	for _, c := range []containerd.Container{stopped, always} {
		r.waitFor(c, 10*time.Second, "running", running)
		if err := restart.MarkStoppedByUser(r.ctx, c); err != nil {
			t.Fatal(err)
		}
		r.killTask(c, unix.SIGKILL)
		r.waitFor(c, 10*time.Second, "exited", exited)
	}

	pidFile := filepath.Join(r.dir, "st", "containerd.pid")
	b, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("containerd's pid file %s: %q, %v", pidFile, b, err)
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill containerd (pid %d): %v", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); processRuns(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("containerd (pid %d) still runs 10s after SIGKILL", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range []uint32{upBefore.pid, onFailureBefore.pid} {
		if err := unix.Kill(int(pid), unix.SIGKILL); err != nil {
			t.Fatalf("kill a container's task (pid %d) while containerd is down: %v", pid, err)
		}
	}

	r.b.mustRun("system", "start")
	upAfter := r.waitFor(up, 10*time.Second, "running again", func(s containerState) bool { return running(s) && s.pid != upBefore.pid })
	if upAfter.labels["berth/finished-at"] == "" {
		t.Errorf("%s: the exit while containerd was down is not recorded: %v", up.ID(), upAfter)
	}
	r.waitFor(onFailure, 10*time.Second, "restarted once (on-failure, killed while containerd was down)", func(s containerState) bool {
		return running(s) && s.pid != onFailureBefore.pid && s.labels["berth/restart-count"] == "1"
	})
	r.waitFor(always, 10*time.Second, "running again (always, even though stopped by the user)", func(s containerState) bool {
		return running(s) && s.labels["berth/stopped-by-user"] == ""
	})
	r.staysFor(stopped, time.Second, "stopped (unless-stopped, stopped by the user)", func(s containerState) bool {
		return !running(s) && s.labels["berth/stopped-by-user"] == "true"
	})
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestRestartPolicyNeedsBerthContainerd: a containerd without Berth's
// restart monitor (here berth's own containerd with the plugin disabled,
// as any other containerd is) is told apart, and a policy refused for it
// with an error that says what to do; "no" needs nothing.
func TestRestartPolicyNeedsBerthContainerd(t *testing.T) {
	dir, err := os.MkdirTemp("/run", "bt-")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "st")
	socket := filepath.Join(state, "c.sock")
	config := daemon.ContainerdConfig(filepath.Join(dir, "root"), state, socket, "info", filepath.Join(state, "s"))
	config = strings.Replace(config, "disabled_plugins = [\n", "disabled_plugins = [\n  \"io.containerd.monitor.container.v1."+restart.PluginID+"\",\n", 1)
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// cleanupManaged finds the daemon by this pid file.
	t.Cleanup(func() { cleanupManaged(t, dir, configPath) })
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(filepath.Dir(berthBin(t)), "containerd"), "--config", configPath)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second): // cleanupManaged kills it
		}
	})
	if err := os.WriteFile(filepath.Join(state, "containerd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	var client *containerd.Client
	for deadline := time.Now().Add(30 * time.Second); ; {
		if client, err = containerd.New(socket, containerd.WithTimeout(time.Second)); err == nil {
			if _, err = client.Version(context.Background()); err == nil {
				break
			}
			client.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd does not answer at %s: %v", socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer client.Close()
	ctx := context.Background()
	if ok, err := restart.Available(ctx, client); err != nil || ok {
		t.Fatalf("restart.Available without the monitor: %v, %v; want false", ok, err)
	}
	always, _ := restart.ParsePolicy("always")
	err = restart.CheckPolicy(ctx, client, socket, always)
	if !errors.Is(err, restart.ErrNoMonitor) || !strings.Contains(err.Error(), "--restart always") || !strings.Contains(err.Error(), socket) {
		t.Fatalf("CheckPolicy(always) without the monitor: %v; want an error naming --restart always and %s", err, socket)
	}
	if err := restart.CheckPolicy(ctx, client, socket, restart.Policy{Mode: restart.No}); err != nil {
		t.Fatalf("CheckPolicy(no): %v", err)
	}
	// berth run refuses the policy before it looks for the image.
	b := &berthCLI{t: t, bin: berthBin(t), config: filepath.Join(t.TempDir(), "berth.toml")}
	res := b.run("--address", socket, "run", "-d", "--restart", "always", "berthtest/nosuch", "true")
	if res.code != 125 || !strings.Contains(res.stderr, "--restart always") || !strings.Contains(res.stderr, socket) || !strings.Contains(res.stderr, "--restart no") {
		t.Fatalf("berth run --restart always without the monitor: exit %d, stderr %q; want 125 saying what to do", res.code, res.stderr)
	}
	// berth update refuses it too, and leaves the container's policy.
	data := t.TempDir()
	if err := os.WriteFile(b.config, []byte(fmt.Sprintf("data_root = %q\n", data)), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(data, "busybox.tar")
	writeArchive(t, archive, func(w io.Writer) error { return image.Busybox(w, "docker.io/"+busyboxRef+":latest") })
	b.mustRun("--address", socket, "load", "-i", archive)
	b.mustRun("--address", socket, "create", "--name", "plain", "--net", "none", busyboxRef, "true")
	t.Cleanup(func() { b.run("--address", socket, "rm", "-f", "plain") })
	res = b.run("--address", socket, "update", "--restart", "always", "plain")
	if res.code == 0 || !strings.Contains(res.stderr, "--restart always") || !strings.Contains(res.stderr, socket) {
		t.Errorf("berth update --restart always without the monitor: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.mustRun("--address", socket, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "plain"); strings.TrimSpace(res.stdout) != "no" {
		t.Errorf("policy after the refused update: %q", res.stdout)
	}
}
