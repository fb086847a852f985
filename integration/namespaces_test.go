package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Hostname = "inside"
	}, "sh", "-c", nsLinks+"; echo pid1 $$; echo host $(hostname); cat /proc/self/uid_map")
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
	for _, want := range []string{"pid1 1\n", "host inside\n", "100000"} {
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
	kinds := map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
		specs.UTSNamespace: "uts", specs.MountNamespace: "mnt", specs.CgroupNamespace: "cgroup",
	}
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Namespaces = nil
		for typ, name := range kinds {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, name)})
		}
		s.Hostname = ""
	}, "sh", "-c", nsLinks)
	// Joining the first container's mount namespace means running its
	// rootfs, so the program comes from there.
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	got := parseNS(res.stdout)
	for _, name := range kinds {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
		if got[name] != want {
			t.Errorf("%s: joined %q, want %q", name, got[name], want)
		}
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
