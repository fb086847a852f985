package libcontainer

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var testMaps = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}

func TestPlanMountSources(t *testing.T) {
	spec := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/a", Source: "a", Options: []string{"rbind", "ridmap"}},
		{Destination: "/b", Source: "/b", Options: []string{"bind"}},
		{Destination: "/c", Source: "/c", Options: []string{"bind"}, UIDMappings: testMaps, GIDMappings: testMaps},
	}}
	got, err := planMountSources(spec, "/bundle", true)
	if err != nil {
		t.Fatal(err)
	}
	if idx := mountSourceIndices(got); !reflect.DeepEqual(idx, []int{1, 3}) {
		t.Fatalf("indices %v, want [1 3]", idx)
	}
	if a := got[0]; a.source != "/bundle/a" || !a.rbind || !a.idmap.Recursive || a.dest != "/a" {
		t.Errorf("ridmap mount planned as %+v", a)
	}
	// Only the mount with its own mappings can do without a user namespace.
	if _, err := planMountSources(&specs.Spec{Mounts: spec.Mounts[3:]}, "/bundle", false); err != nil {
		t.Errorf("mount with mappings, no user namespace: %v", err)
	}
	_, err = planMountSources(spec, "/bundle", false)
	if err == nil || !strings.Contains(err.Error(), "mount option ridmap on /a: the mount has no uidMappings") {
		t.Errorf("no user namespace: err = %v", err)
	}
}

func TestMountFdRoundTrip(t *testing.T) {
	parent, child, err := mountFdPair()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	defer child.Close()
	dir := t.TempDir()
	for i, name := range []string{"x", "y"} {
		os.Mkdir(filepath.Join(dir, name), 0o755)
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := sendMountFd(parent, 2+i*3, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	parent.Close()
	cfg := &initConfig{DetachedMounts: []int{2, 7}, MountFd: int(child.Fd())}
	get := cfg.detachedMountFunc()
	if f, err := get(1); f != nil || err != nil {
		t.Fatalf("mount 1 (not detached): %v, %v", f, err)
	}
	f, err := get(2)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); p != filepath.Join(dir, "x") {
		t.Errorf("mount 2 is %s", p)
	}
	f.Close()
	// The parent sent mount 5 where init expects 7: a protocol error, not
	// a wrong mount.
	if f, err := get(7); err == nil || !strings.Contains(err.Error(), "got the mount for spec mount 5, want 7") {
		t.Errorf("out of order: %v, %v", f, err)
	}
	if _, err := get(7); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after the parent closed: %v", err)
	}
}

func TestNewUserns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mappings of other uids)")
	}
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 123000, Size: 10}, {ContainerID: 100, HostID: 5000, Size: 1}}
	f, err := newUserns(maps, maps)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The namespace outlives its process: ask a child to show its map.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	own, _ := os.Readlink("/proc/self/ns/user")
	if own == "user:["+strconv.FormatUint(st.Ino, 10)+"]" {
		t.Fatal("got our own user namespace")
	}
	uidMap := readMapOf(t, f)
	if want := "0 123000 10|100 5000 1"; uidMap != want {
		t.Errorf("uid_map %q, want %q", uidMap, want)
	}
}

// readMapOf reads the uid_map of a user namespace from a process in it:
// setns into a user namespace needs a single-threaded process, which a
// Go test is not, so nsenter(1) does it.
func readMapOf(t *testing.T, ns *os.File) string {
	t.Helper()
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter(1)")
	}
	cmd := exec.Command("nsenter", "--user=/proc/self/fd/3", "cat", "/proc/self/uid_map")
	cmd.ExtraFiles = []*os.File{ns}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "|")
}
