package ctrd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCloseLeavesNothing starts a private containerd, leaves a running
// container in it, and checks that Close takes down the container, its
// shim, mounts, cgroups and every directory. It needs root and the
// binaries of `make build` (containerd, ctr, containerd's runc shim) with
// runc; it skips without them.
func TestCloseLeavesNothing(t *testing.T) {
	bin, runc := needDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := Start(ctx, Config{BinDir: bin, Namespace: "ctrdtest", CopyShims: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() }) // after a failure below
	if out, err := d.Ctr(ctx, "images", "ls", "-q"); err != nil || !strings.Contains(out, DefaultImage) {
		t.Fatalf("images after import: %q, %v; want %s", out, err, DefaultImage)
	}
	root, err := d.RuntimeRoot("runc", runc)
	if err != nil {
		t.Fatal(err)
	}
	id := "ctrd-test-1"
	d.Track(id)
	if _, err := d.Ctr(ctx, "run", "--detach", "--null-io", "--fifo-dir", d.FifoDir, "--runtime", "io.containerd.runc.v2",
		"--runc-binary", runc, "--runc-root", root, d.Image, id, "sleep", "300"); err != nil {
		t.Fatal(err)
	}
	tasks, err := d.Tasks(ctx)
	if err != nil || tasks[id].Status != "RUNNING" {
		t.Fatalf("tasks %v, %v: want %s RUNNING", tasks, err, id)
	}
	initPid := tasks[id].Pid
	shimPid := ParentPid(initPid)
	if exe, _ := Exe(shimPid); exe != filepath.Join(d.ShimDir, "containerd-shim-runc-v2") {
		t.Fatalf("init %d's parent %d runs %q, want the runc shim", initPid, shimPid, exe)
	}
	if got := d.ShimPids(); len(got) != 1 || got[0] != shimPid {
		t.Errorf("ShimPids() = %v, want [%d]", got, shimPid)
	}

	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range []int{initPid, shimPid} {
		if Alive(pid) {
			t.Errorf("process %d (%v) outlived Close", pid, Cmdline(pid))
		}
	}
	for _, dir := range []string{d.State, d.Root, d.ShimDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Close (%v)", dir, err)
		}
	}
	if mps := MountsUnder(d.State, d.Root); len(mps) > 0 {
		t.Errorf("still mounted after Close: %v", mps)
	}
	if dirs := CgroupDirs("ctrdtest", id); len(dirs) > 0 {
		t.Errorf("cgroups left after Close: %v", dirs)
	}
	if err := d.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// needDaemon skips unless the test can run a containerd: root, the
// binaries in the repository's bin/ and runc. It returns bin/ and runc.
func needDaemon(t *testing.T) (string, string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin, _ := filepath.Abs("../../bin")
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Skipf("%s not built (run `make build`): %v", b, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the image: %v", err)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc on PATH")
	}
	return bin, runc
}
