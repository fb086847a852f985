package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// ctrdDeleteCreated deletes a task that was created and never started,
// through containerd's runc shim: the shim calls the runtime's `delete`
// without --force, which runc answers by killing the waiting init.
func ctrdDeleteCreated(t *testing.T, c *ctrd) {
	cl, ctx := c.client()
	img, err := cl.GetImage(ctx, ctrdImage)
	if err != nil {
		t.Fatal(err)
	}
	id := c.container(t)
	ropts := &runcoptions.Options{BinaryName: c.runtime, Root: c.runcRoot}
	ctr, err := cl.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "300")),
		containerd.WithRuntime("io.containerd.runc.v2", ropts))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("create task: %v%s", err, c.diagnostics())
	}
	pid := int(task.Pid())
	if st := c.tasks()[id]; st != "CREATED" {
		t.Fatalf("new task is %q, want CREATED%s", st, c.diagnostics())
	}
	// Straight to the task service, as CRI does for a container that
	// failed before its start (the client's Delete wants a kill first).
	if _, err := cl.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err != nil {
		t.Fatalf("delete of a created task: %v%s", err, c.diagnostics())
	}
	stateDir := filepath.Join(c.runcRoot, ctrdNamespace, id)
	deadline := time.Now().Add(10 * time.Second)
	for pidAlive(pid) || isDir(stateDir) {
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the created task: init alive %v, runtime state left %v%s", pidAlive(pid), isDir(stateDir), c.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cgroupFile("pids", id, "cgroup.procs"); err == nil {
		t.Errorf("the cgroup of the deleted created task is still there")
	}
	if calls := readFile(t, c.calls); !strings.Contains(calls, " delete "+id) {
		t.Errorf("the shim did not call the runtime's plain delete:\n%s", calls)
	}
}
