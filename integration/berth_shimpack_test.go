package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBerthRunPacksShims: berth's own containerd packs the containers
// berth runs into shared berth shims, as `berth info` says (berth.toml's
// containers_per_shim, 8 by default): three detached containers have one
// shim process between them, not one each.
func TestBerthRunPacksShims(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	if res := b.mustRun("info"); !strings.Contains(res.stdout, "up to 8 containers per shim") {
		t.Fatalf("info does not say 8 containers per shim:\n%s", res.stdout)
	}
	names := []string{"pack0", "pack1", "pack2"}
	for _, name := range names {
		b.mustRun("run", "-d", "--name", name, busyboxRef, "sleep", "300")
	}
	out := b.mustRun(append([]string{"inspect", "-f", "{{.State.Pid}}"}, names...)...).stdout
	shims := map[int]string{}
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			t.Fatalf("inspect .State.Pid: %q", out)
		}
		shim := parentPid(pid)
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", shim))
		shims[shim] = filepath.Base(exe)
	}
	if len(shims) != 1 {
		t.Fatalf("3 containers run in %d shim processes %v, want 1 (packed 8 per shim)", len(shims), shims)
	}
	for pid, exe := range shims {
		if exe != "containerd-shim-berth-v2-server" {
			t.Errorf("the containers' parent %d runs %q, want berth's shim server", pid, exe)
		}
	}
}

// TestBerthRunRmRepeated: a foreground `run --rm` succeeds every time,
// although containerd's restart monitor removes the container at its exit
// while berth still records that exit, and leaves nothing behind.
func TestBerthRunRmRepeated(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	for i := range 10 {
		if res := b.run("run", "--rm", "--net", "none", busyboxRef, "true"); res.code != 0 {
			t.Fatalf("run --rm, try %d: exit %d: %s", i, res.code, res.stderr)
		}
	}
	if out := b.mustRun("ps", "-aq").stdout; out != "" {
		t.Errorf("run --rm left containers: %q", out)
	}
}
