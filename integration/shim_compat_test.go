package integration

// Berth's shim as containerd's clients use containerd's runc shim: the
// places where a drop-in shim must behave as that one does, and the
// safety of shared shims. Each test drives the shim through a private
// containerd.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apitypes "github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
)

func TestBerthShimCompat(t *testing.T) {
	c := startShimContainerd(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *ctrd)
	}{
		{"ExecRequestTTY", shimExecRequestTTY},
		{"BinaryName", shimBinaryName},
		{"AbsolutePath", shimAbsolutePath},
		{"InfoFeatures", shimInfoFeatures},
		{"DeletedBehind", shimDeletedBehind},
		{"ShimCgroupPacked", shimCgroupPacked},
		{"PanickingRequest", shimPanickingRequest},
		{"NothingLeft", shimNothingLeft},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c.sub(t)) })
	}
}

// An exec whose request asks for a terminal gets one, although its
// process spec says terminal: false: the request wins, as with
// containerd's runc shim.
func shimExecRequestTTY(t *testing.T, c *ctrd) {
	id := c.shimDetached(t)
	task, ctx := c.loadTask(t, id)
	spec, err := task.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Terminal = false
	pspec.Args = []string{"sh", "-c", "if [ -t 0 ] && [ -t 1 ]; then echo is-a-tty; else echo no-tty; fi"}
	var out bytes.Buffer
	creator := cio.NewCreator(cio.WithStreams(nil, &out, nil), cio.WithTerminal, cio.WithFIFODir(c.FifoDir))
	proc, err := task.Exec(ctx, "request-tty", &pspec, creator)
	if err != nil {
		t.Fatalf("exec with a request terminal: %v%s", err, c.diagnostics())
	}
	defer proc.Delete(context.WithoutCancel(ctx))
	statusC, err := proc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx); err != nil {
		t.Fatalf("start the exec with a request terminal: %v%s", err, c.diagnostics())
	}
	select {
	case st := <-statusC:
		if st.ExitCode() != 0 {
			t.Errorf("exec with a request terminal: exit %d", st.ExitCode())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("exec with a request terminal did not exit within 30s%s", c.diagnostics())
	}
	proc.IO().Wait()
	if got := out.String(); !strings.Contains(got, "is-a-tty") {
		t.Errorf("exec with Terminal=true in the request and terminal: false in its spec printed %q, want is-a-tty", got)
	}
}

// runc's BinaryName: one that names no binary fails the create, saying
// which (runc's shim fails it too); one that names a berth-runtime is the
// runtime containers start from; runc's own is ignored.
func shimBinaryName(t *testing.T, c *ctrd) {
	fail := func(binaryName string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.runWithRuncOptions(ctx, t, binaryName)
		return err
	}
	if err := fail("/no/such/runc"); err == nil || !strings.Contains(err.Error(), "/no/such/runc") || !strings.Contains(err.Error(), "BinaryName") {
		t.Errorf("a task with BinaryName = /no/such/runc: %v; want a failed create naming the option and the binary", err)
	}
	for _, name := range []string{runtimeBin, "runc"} {
		if name == "runc" {
			if _, err := exec.LookPath("runc"); err != nil {
				continue // no runc here: nothing to ignore
			}
		}
		code, err := c.runWithRuncOptions(context.Background(), t, name)
		if err != nil || code != 7 {
			t.Errorf("a task with BinaryName = %s: exit %d, %v; want 7%s", name, code, err, c.diagnostics())
		}
	}
	// A stand-in that calls itself berth-runtime but cannot be an init:
	// the create fails in it, so it is what the container starts from.
	standIn := filepath.Join(t.TempDir(), "berth-runtime")
	script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = --version ] && exec %s --version\necho standing-in-for-berth-runtime >&2\nexit 97\n", runtimeBin)
	if err := os.WriteFile(standIn, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fail(standIn); err == nil {
		t.Errorf("a task with BinaryName = a stand-in berth-runtime that fails as init was created: BinaryName was not honoured")
	}
}

// A shim that containerd starts by its absolute path, from a directory
// without the shim server, finds the server on containerd's PATH.
func shimAbsolutePath(t *testing.T, c *ctrd) {
	dir := t.TempDir()
	shim := filepath.Join(dir, "containerd-shim-berth-v2")
	copyExecutable(t, filepath.Join(containerdBinDir(), "containerd-shim-berth-v2"), shim)
	id := c.container(t)
	r := c.ctr("run", "--rm", "--runtime", shim, "--fifo-dir", c.FifoDir, ctrdImage, id, "echo", "by-path")
	if r.code != 0 || r.stdout != "by-path\n" {
		t.Fatalf("ctr run --runtime %s (the server only on PATH): exit %d, stdout %q, stderr %q%s", shim, r.code, r.stdout, r.stderr, c.diagnostics())
	}
}

// The runtime's features document reaches containerd through the
// shim's Info (RuntimeInfo.Features), as berth-runtime prints it.
func shimInfoFeatures(t *testing.T, c *ctrd) {
	cl, ctx := c.client()
	resp, err := cl.IntrospectionService().PluginInfo(ctx, string(plugins.RuntimePluginV2), "task", &apitypes.RuntimeRequest{RuntimePath: berthRuntime})
	if err != nil {
		t.Fatalf("runtime info of %s: %v%s", berthRuntime, err, c.diagnostics())
	}
	var info apitypes.RuntimeInfo
	if err := typeurl.UnmarshalTo(resp.Extra, &info); err != nil {
		t.Fatalf("runtime info of %s: %v", berthRuntime, err)
	}
	if info.Features == nil {
		t.Fatalf("runtime info of %s has no features: %+v", berthRuntime, &info)
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("the features in the runtime info: %v", err)
	}
	got, ok := v.(*features.Features)
	if !ok {
		t.Fatalf("the features in the runtime info are a %T", v)
	}
	out, err := exec.Command(runtimeBin, "features").Output()
	if err != nil {
		t.Fatal(err)
	}
	var want features.Features
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("the runtime info's features differ from `berth-runtime features`:\ngot  %+v\nwant %+v", *got, want)
	}
}

// A container whose runtime state is removed behind the shim's back
// (`berth-runtime delete --force` in the shim's root): its exit is still
// published, a kill gets NotFound, and it can be deleted.
func shimDeletedBehind(t *testing.T, c *ctrd) {
	ev := c.watchEvents(t)
	id := c.shimDetached(t)
	task, ctx := c.loadTask(t, id)
	statusC, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(berthShimRoot, ctrdNamespace)
	if out, err := exec.Command(runtimeBin, "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
		t.Fatalf("berth-runtime delete --force %s behind the shim: %v: %s", id, err, out)
	}
	// At once, whether or not the shim has reaped the init yet.
	if err := task.Kill(ctx, unix.SIGKILL); !errdefs.IsNotFound(err) {
		t.Errorf("kill of a container deleted behind the shim: %v, want not found", err)
	}
	select {
	case st := <-statusC:
		if st.ExitCode() != 137 {
			t.Errorf("exit of the container deleted behind the shim: %d, want 137", st.ExitCode())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30s of the container's deletion behind the shim%s", c.diagnostics())
	}
	if got := ev.exitStatus(id, 10*time.Second); got != 137 {
		t.Errorf("TaskExit of the container deleted behind the shim: %d, want 137", got)
	}
	if err := task.Kill(ctx, unix.SIGKILL); !errdefs.IsNotFound(err) {
		t.Errorf("kill of a container deleted behind the shim, after its exit: %v, want not found", err)
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Errorf("delete of the task deleted behind the shim: %v%s", err, c.diagnostics())
	}

	// Only the state removed, the processes left running: a kill is
	// NotFound all the same (runc's shim cannot signal a container whose
	// state is gone either); the init's exit, when something else ends
	// it, is published; a delete cleans up what is left.
	id = c.shimDetached(t)
	f := c.shimFootprint(t, id)
	task, ctx = c.loadTask(t, id)
	if err := os.RemoveAll(filepath.Join(root, id)); err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, unix.SIGKILL); !errdefs.IsNotFound(err) {
		t.Errorf("kill of a running container whose state was removed behind the shim: %v, want not found", err)
	}
	if err := unix.Kill(f.pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := ev.exitStatus(id, 10*time.Second); got != 137 {
		t.Errorf("TaskExit of the container whose state was removed: %d, want 137", got)
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Errorf("delete of the task whose state was removed behind the shim: %v%s", err, c.diagnostics())
	}
	c.waitNothingLeft(f)
}

// The ShimCgroup option on packed starts: a container never joins a
// shared shim started with other options (it was silently put in one
// outside its ShimCgroup), and containers with the same options share one.
func shimCgroupPacked(t *testing.T, c *ctrd) {
	path := fmt.Sprintf("/berth-shimcg-packed-%d", time.Now().UnixNano())
	cg, err := cgroups.New("shimcg", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var shims []int
	t.Cleanup(func() {
		// After the containers' own cleanup: the shims must be gone first.
		deadline := time.Now().Add(10 * time.Second)
		for _, shim := range shims {
			for pidAlive(shim) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if err := cg.Delete(); err != nil {
			t.Errorf("remove the test's cgroup %s: %v", path, err)
		}
	})
	dir := t.TempDir()
	options := func(name, body string) string {
		cfg := filepath.Join(dir, name)
		if err := os.WriteFile(cfg, []byte(body+"ContainersPerShim = 4\nShimLinger = \"0s\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	plainOpts, cgOpts := options("plain.toml", ""), options("cg.toml", fmt.Sprintf("ShimCgroup = %q\n", path))
	shimOf := func(id string) int {
		shim := parentPid(c.taskPid(id))
		shims = append(shims, shim)
		return shim
	}
	plain := shimOf(c.shimDetached(t, "--runtime-config-path", plainOpts))
	inCgroup := shimOf(c.shimDetached(t, "--runtime-config-path", cgOpts))
	if inCgroup == plain {
		t.Fatalf("a container with ShimCgroup = %s joined the shim %d of a container without it", path, plain)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", inCgroup)); err != nil || !strings.Contains(string(b), ":"+path+"\n") {
		t.Fatalf("shim %d of a container with ShimCgroup = %s is not in it (%v):\n%s", inCgroup, path, err, b)
	}
	if again := shimOf(c.shimDetached(t, "--runtime-config-path", cgOpts)); again != inCgroup {
		t.Errorf("a second container with the same options went to shim %d, not to the shared shim %d", again, inCgroup)
	}
	if other := shimOf(c.shimDetached(t, "--runtime-config-path", plainOpts)); other != plain {
		t.Errorf("a second container without ShimCgroup went to shim %d, not to the shared shim %d", other, plain)
	}
}

// A request that panics in a shared shim fails alone: the shim and its
// other containers carry on. A shim server built with the test hook
// (-tags berth_testhooks) panics serving an Exec with the id
// berth-test-panic.
func shimPanickingRequest(t *testing.T, c *ctrd) {
	shim := testHookShim(t)
	cfg := filepath.Join(t.TempDir(), "shared.toml")
	if err := os.WriteFile(cfg, []byte("ContainersPerShim = 2\nShimLinger = \"0s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() string {
		id := c.container(t)
		c.mustCtr("run", "--runtime", shim, "--runtime-config-path", cfg, "--detach", "--null-io", ctrdImage, id, "sleep", "300")
		c.waitTask(id, "RUNNING")
		return id
	}
	a, b := start(), start()
	shimPid := parentPid(c.taskPid(a))
	if parentPid(c.taskPid(b)) != shimPid {
		t.Fatalf("containers %s and %s do not share a shim (ContainersPerShim = 2)", a, b)
	}
	r := c.ctr("task", "exec", "--exec-id", "berth-test-panic", b, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "test hook") {
		t.Errorf("the exec whose request panics: exit %d, stderr %q; want a failure with the panic's message", r.code, r.stderr)
	}
	if !pidAlive(shimPid) {
		t.Fatalf("the shim %d died of a panicking request%s", shimPid, c.diagnostics())
	}
	for _, id := range []string{a, b} {
		if st := c.tasks()[id]; st != "RUNNING" {
			t.Errorf("after a panicking request to the shared shim, task %s is %q, want RUNNING", id, st)
		}
		r := c.ctr("task", "exec", "--exec-id", "after-panic", id, "echo", "alive-"+id)
		if r.code != 0 || r.stdout != "alive-"+id+"\n" {
			t.Errorf("exec in %s after a panicking request: exit %d, stdout %q, stderr %q", id, r.code, r.stdout, r.stderr)
		}
	}
	for _, id := range []string{a, b} {
		c.mustCtr("task", "kill", "--signal", "SIGKILL", id)
		c.waitTask(id, "STOPPED")
		c.mustCtr("task", "delete", id)
	}
	for deadline := time.Now().Add(10 * time.Second); pidAlive(shimPid) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if pidAlive(shimPid) {
		t.Errorf("the test build's shim %d still runs after its containers were deleted", shimPid)
	}
}

// testHookShim builds the shim server with the test hooks into a new
// directory with a copy of the shim, and returns the shim's path: a
// runtime containerd runs by that path.
func testHookShim(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "osusergo,netgo,no_grpc,berth_testhooks",
		"-o", filepath.Join(dir, "containerd-shim-berth-v2-server"), "../cmd/shim-server")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the shim server with the test hooks: %v\n%s", err, out)
	}
	shim := filepath.Join(dir, "containerd-shim-berth-v2")
	copyExecutable(t, filepath.Join(containerdBinDir(), "containerd-shim-berth-v2"), shim)
	return shim
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// runWithRuncOptions runs `sh -c 'exit 7'` in a container made through the
// client with runc's runtime options, BinaryName binaryName and some that
// cannot apply to berth, and returns its exit code; err when the task
// could not be created or started.
func (c *ctrd) runWithRuncOptions(ctx context.Context, t *testing.T, binaryName string) (int, error) {
	t.Helper()
	cl, _ := c.client()
	ctx = namespaces.WithNamespace(ctx, ctrdNamespace)
	img, err := cl.GetImage(ctx, ctrdImage)
	if err != nil {
		t.Fatal(err)
	}
	id := c.container(t)
	ropts := &runcoptions.Options{BinaryName: binaryName, SystemdCgroup: false, NoNewKeyring: true}
	ctr, err := cl.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sh", "-c", "exit 7")),
		containerd.WithRuntime(berthRuntime, ropts))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		return 0, fmt.Errorf("new task with runc options: %w", err)
	}
	defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	statusC, err := task.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := task.Start(ctx); err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	select {
	case st := <-statusC:
		return int(st.ExitCode()), nil
	case <-ctx.Done():
		return 0, errors.Join(errors.New("no exit"), ctx.Err())
	}
}
