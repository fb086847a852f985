package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// nsLinks prints the namespace links of the container's process.
const nsLinks = "for n in pid net mnt uts ipc cgroup user; do echo $n $(readlink /proc/self/ns/$n); done"

func parseNS(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

func hostNS(t *testing.T, kind string) string {
	l, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewNamespaces(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		// Two ranges, as a user's subuid allocation may give.
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 64536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Hostname = "inside"
	}, "sh", "-c", nsLinks+"; echo pid1 $$; echo host $(hostname); cat /proc/self/uid_map; "+
		// mknod is not allowed in a user namespace: the devices are bound.
		"[ -c /dev/null ] && echo hi > /dev/null && echo devnull-ok")
	openToMappedRoot(t, b)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	ns := parseNS(res.stdout)
	for _, kind := range []string{"pid", "net", "mnt", "uts", "ipc", "cgroup", "user"} {
		if ns[kind] == "" || ns[kind] == hostNS(t, kind) {
			t.Errorf("%s namespace: container %q, host %q: want a new one", kind, ns[kind], hostNS(t, kind))
		}
	}
	for _, want := range []string{"pid1 1\n", "host inside\n", "100000", "300000", "devnull-ok"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output %q lacks %q", res.stdout, want)
		}
	}
}

func TestJoinNamespacesByPath(t *testing.T) {
	r := newRT(t)
	first := newID(t)
	r.must("run", "-d", "-b", busybox(t, nil, "sleep", "300"), first)
	pid := r.state(first).Pid
	// A mount namespace is joined as runc does: the rootfs is then set up
	// inside it, so it must see the bundle. A fresh `unshare -m` one does.
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "300")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	paths := map[string]string{
		"pid": fmt.Sprintf("/proc/%d/ns/pid", pid), "net": fmt.Sprintf("/proc/%d/ns/net", pid),
		"ipc": fmt.Sprintf("/proc/%d/ns/ipc", pid), "uts": fmt.Sprintf("/proc/%d/ns/uts", pid),
		"cgroup": fmt.Sprintf("/proc/%d/ns/cgroup", pid), "mnt": fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid),
	}
	types := map[string]specs.LinuxNamespaceType{
		"pid": specs.PIDNamespace, "net": specs.NetworkNamespace, "ipc": specs.IPCNamespace,
		"uts": specs.UTSNamespace, "cgroup": specs.CgroupNamespace, "mnt": specs.MountNamespace,
	}
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Namespaces = nil
		for name, path := range paths {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: types[name], Path: path})
		}
		s.Hostname = ""
	}, "sh", "-c", nsLinks)
	waitForNS(t, paths["mnt"])
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	got := parseNS(res.stdout)
	for name, path := range paths {
		want, _ := os.Readlink(path)
		if got[name] != want {
			t.Errorf("%s: joined %q, want %q", name, got[name], want)
		}
	}
}

// waitForNS waits until a process started with unshare has left the
// test's own namespace.
func waitForNS(t *testing.T, path string) {
	own, _ := os.Readlink("/proc/self/ns/mnt")
	for i := 0; i < 200; i++ {
		if l, err := os.Readlink(path); err == nil && l != own {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never became a namespace of its own", path)
}

func TestNoMountNamespaceLeavesNoMounts(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		var keep []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.MountNamespace {
				keep = append(keep, ns)
			}
		}
		s.Linux.Namespaces = keep
	}, "sh", "-c", "readlink /proc/self/ns/mnt; ls /proc/1/cmdline >/dev/null && echo proc-ok")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 || !strings.Contains(res.stdout, hostNS(t, "mnt")) || !strings.Contains(res.stdout, "proc-ok") {
		t.Fatalf("run without a mount namespace: exit %d out %q err %q", res.code, res.stdout, res.stderr)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), b) {
		t.Fatalf("mounts under the bundle are left on the host after delete")
	}
}

// openToMappedRoot lets the namespace's root (an unprivileged host uid)
// walk down to the bundle: test temp dirs are 0700.
func openToMappedRoot(t *testing.T, dir string) {
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
				t.Fatal(err)
			}
		}
	}
}
