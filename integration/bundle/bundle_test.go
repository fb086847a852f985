package bundle

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBusyboxLayout builds one bundle and checks every file the package
// promises, since tests elsewhere rely on them without looking.
func TestBusyboxLayout(t *testing.T) {
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	dir := t.TempDir()
	s, err := Busybox(dir, "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs")

	tests := []struct {
		path string
		mode os.FileMode // type and permission bits expected from Lstat
	}{
		{"bin/busybox", 0o755},
		{"tmp", os.ModeDir | os.ModeSticky | 0o777},
		{"etc/passwd", 0o644},
		{"etc/group", 0o644},
		{"proc", os.ModeDir | 0o555},
		{"dev", os.ModeDir | 0o755},
	}
	for _, tc := range tests {
		fi, err := os.Lstat(filepath.Join(rootfs, tc.path))
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if got := fi.Mode() & (os.ModeType | os.ModeSticky | os.ModePerm); got != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.path, got, tc.mode)
		}
	}

	for _, applet := range []string{"sh", "ls", "cat", "sleep", "true", "echo", "id", "mkdir", "ps"} {
		target, err := os.Readlink(filepath.Join(rootfs, "bin", applet))
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s -> %q, %v; want -> busybox", applet, target, err)
		}
	}

	// The copy must be a separate inode, not a hard link to the host binary.
	host, _ := os.Stat(BusyboxPath)
	copied, _ := os.Stat(filepath.Join(rootfs, "bin", "busybox"))
	if os.SameFile(host, copied) {
		t.Error("bin/busybox is a hard link to the host binary, want a copy")
	}
	if host.Size() != copied.Size() {
		t.Errorf("bin/busybox size %d, host %d", copied.Size(), host.Size())
	}

	for file, want := range map[string][]string{
		"etc/passwd": {"root:x:0:0:", "nobody:x:65534:65534:"},
		"etc/group":  {"root:x:0:", "nobody:x:65534:"},
	} {
		data, err := os.ReadFile(filepath.Join(rootfs, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s lacks %q:\n%s", file, w, data)
			}
		}
	}

	if s.Process.Terminal {
		t.Error("returned spec has Terminal=true")
	}
	onDisk, err := ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, s) {
		t.Errorf("config.json differs from returned spec:\n%+v\n%+v", onDisk.Process, s.Process)
	}
	if !reflect.DeepEqual(onDisk.Process.Args, []string{"/bin/true"}) || onDisk.Root.Path != "rootfs" {
		t.Errorf("args %q root %q", onDisk.Process.Args, onDisk.Root.Path)
	}
}

// TestSpecRoundTrip checks that WriteSpec replaces config.json and ReadSpec
// sees the change, the way tests tweak a bundle after building it.
func TestSpecRoundTrip(t *testing.T) {
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	dir := t.TempDir()
	s, err := Busybox(dir, "sh", "-c", "echo hi")
	if err != nil {
		t.Fatal(err)
	}
	s.Hostname = "changed"
	s.Process.Args = []string{"sleep", "1"}
	if err := WriteSpec(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hostname != "changed" || !reflect.DeepEqual(got.Process.Args, []string{"sleep", "1"}) {
		t.Errorf("read back hostname %q args %q", got.Hostname, got.Process.Args)
	}
}

// TestBadBusybox checks that a missing or dynamic busybox fails up front
// with the package to install, rather than later inside a container.
func TestBadBusybox(t *testing.T) {
	dynamic := "/bin/ls" // dynamically linked on Debian
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), "busybox-static"},
		{"dynamic", dynamic, "dynamically linked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "dynamic" && checkStatic(dynamic) == nil {
				t.Skipf("%s is static here", dynamic)
			}
			old := BusyboxPath
			BusyboxPath = tc.path
			defer func() { BusyboxPath = old }()
			_, err := Busybox(t.TempDir(), "true")
			if err == nil || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "apt-get install busybox-static") {
				t.Errorf("err = %v, want it to mention %q and the install hint", err, tc.want)
			}
		})
	}
}

// TestReadSpecMissing makes sure a bad bundle dir is an error, not a nil spec.
func TestReadSpecMissing(t *testing.T) {
	if _, err := ReadSpec(t.TempDir()); err == nil {
		t.Error("ReadSpec of an empty dir succeeded")
	}
}
