package integration

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestReadonlyRootAndMaskedPaths(t *testing.T) {
	r := newRT(t)
	b := busybox(t, nil, "sh", "-c", `
		touch /newfile 2>/dev/null && echo root-writable
		[ -s /proc/kcore ] && echo kcore-visible
		cat /proc/keys 2>/dev/null | grep -q . && echo keys-visible
		echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo procsys-writable
		echo done`)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 || strings.TrimSpace(res.stdout) != "done" {
		t.Fatalf("exit %d, output %q (stderr %q): want only \"done\"", res.code, res.stdout, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(b, "rootfs/newfile")); err == nil {
		t.Fatal("a read-only root was written")
	}
}

// TestReadonlyPathCoversMountsBelow: a read-only path stays read-only all
// the way down, mounts below it included (a tmpfs mounted inside it, here).
func TestReadonlyPathCoversMountsBelow(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=755"}},
			specs.Mount{Destination: "/data/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=755"}})
		s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/data")
	}, "sh", "-c", `
		touch /data/f 2>/dev/null && echo top-writable
		touch /data/sub/f 2>/dev/null && echo below-writable
		echo done`)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 || strings.TrimSpace(res.stdout) != "done" {
		t.Fatalf("exit %d, output %q (stderr %q): want only \"done\"", res.code, res.stdout, res.stderr)
	}
}

func TestMountDestinationSymlinkStaysInRootfs(t *testing.T) {
	r := newRT(t)
	hostDir := t.TempDir()
	b := busybox(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/evil/sub", Type: "tmpfs", Source: "tmpfs"})
	}, "sh", "-c", "grep -q ' /evil/sub ' /proc/self/mountinfo && echo ok; ls -la /evil /evil/")
	// A symlink in the image that points at a host path: followed naively,
	// the mount would land on the host.
	if err := os.Symlink(hostDir, filepath.Join(b, "rootfs/evil")); err != nil {
		t.Fatal(err)
	}
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run: exit %d %s", res.code, res.stderr)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Fatalf("the mount escaped the rootfs: host dir %s now holds %v", hostDir, entries)
	}
	inside := filepath.Join(b, "rootfs", hostDir, "sub")
	if _, err := os.Stat(inside); err != nil {
		t.Fatalf("mount point was not made inside the rootfs at %s: %v", inside, err)
	}
}

func TestOnlyStdioFdsReachContainer(t *testing.T) {
	r := newRT(t)
	// Bait: a host directory fd that berth-runtime inherits (no
	// close-on-exec), the kind of fd the CVE-2024-21626 class abuses.
	bait, err := syscall.Open("/", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(bait)
	// pid 1 is the shell; it lists its own fds through /proc/1 while ls
	// (pid 2) runs, so ls's own directory fd does not count.
	b := busybox(t, nil, "sh", "-c", "ls /proc/1/fd; true")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 || strings.Fields(res.stdout) == nil || strings.Join(strings.Fields(res.stdout), " ") != "0 1 2" {
		t.Fatalf("fds of the container's process: %q (exit %d %s), want 0 1 2", res.stdout, res.code, res.stderr)
	}
}

func TestRuntimeBinaryCannotBeOverwritten(t *testing.T) {
	r := newRT(t)
	before := fileSum(t, runtimeBin)
	// The first container's init stays blocked in create: its exe is the
	// runtime. A second container shares its pid namespace (init is pid 1
	// there) and tries, as root with every capability, to write to it.
	first := newID(t)
	r.must("create", "-b", busybox(t, nil, "true"), first)
	pid := r.state(first).Pid
	if fd, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY, 0); err == nil {
		fd.Close()
		t.Fatal("the init's executable opened for writing from the host")
	}
	all := []string{"CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN", "CAP_FOWNER"}
	b := busybox(t, func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", pid)
			}
		}
		c := s.Process.Capabilities
		c.Bounding, c.Effective, c.Permitted = append(c.Bounding, all...), append(c.Effective, all...), append(c.Permitted, all...)
	}, "sh", "-c", "echo pwned >> /proc/1/exe && echo wrote; echo pwned > /proc/1/exe && echo wrote; true")
	res := r.run("run", "-b", b, newID(t))
	if strings.Contains(res.stdout, "wrote") {
		t.Fatalf("container wrote to the runtime's executable: %q", res.stdout)
	}
	if after := fileSum(t, runtimeBin); after != before {
		t.Fatal("the host's berth-runtime binary changed")
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestHookOrder(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "log")
	hostHook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "read -r state; echo " + name + " >> " + log}}
	}
	b := busybox(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: logDir, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hostHook("prestart")},
			CreateRuntime:   []specs.Hook{hostHook("createRuntime")},
			CreateContainer: []specs.Hook{hostHook("createContainer")},
			// startContainer runs inside the container, after pivot_root.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer >> /hooklog/log"}}},
			Poststart:      []specs.Hook{hostHook("poststart")},
			Poststop:       []specs.Hook{hostHook("poststop")},
		}
	}, "sh", "-c", "echo process >> /hooklog/log")
	id := newID(t)
	r.must("create", "-b", b, id)
	r.must("start", id)
	r.waitStatus(id, "stopped")
	r.must("delete", id)
	got, _ := os.ReadFile(log)
	// poststart runs once the program has been exec'd, concurrently with
	// it; everything else is strictly ordered.
	want := "prestart\ncreateRuntime\ncreateContainer\nstartContainer\n"
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if !strings.HasPrefix(string(got), want) || len(lines) != 7 || lines[6] != "poststop" {
		t.Fatalf("hook order:\n%s\nwant %s then process and poststart, then poststop", got, want)
	}
}

func TestFailingHookCleansUp(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 1"}}}}
	}, "true")
	id := newID(t)
	res := r.run("create", "-b", b, id)
	if res.code == 0 || !strings.Contains(res.stderr, "createRuntime hook") || !strings.Contains(res.stderr, "nope") {
		t.Fatalf("create with a failing hook: exit %d %q", res.code, res.stderr)
	}
	if out := r.must("list", "-q"); out != "" {
		t.Fatalf("failed create left %q", out)
	}
}
