package rootfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

func TestDeviceList(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o600)), UID: ptr(uint32(5)), GID: ptr(uint32(6))},
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
		{Path: "dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: ptr(os.FileMode(0o660))},
		{Path: "/dev/kmsg", Type: "u", Major: 1, Minor: 11},
		{Path: "/dev/pipe", Type: "p", Major: 9, Minor: 9},
	}}}
	got, err := deviceList(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]device(nil), defaultDevices...)
	want[0] = device{path: "/dev/null", typ: unix.S_IFCHR, major: 1, minor: 3, perm: 0o600, uid: 5, gid: 6}
	want = append(want,
		device{path: "/dev/fuse", typ: unix.S_IFCHR, major: 10, minor: 229, perm: 0o666},
		device{path: "/dev/sda", typ: unix.S_IFBLK, major: 8, minor: 0, perm: 0o660},
		device{path: "/dev/kmsg", typ: unix.S_IFCHR, major: 1, minor: 11, perm: 0o666},
		device{path: "/dev/pipe", typ: unix.S_IFIFO, perm: 0o666},
	)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deviceList:\ngot  %+v\nwant %+v", got, want)
	}
	for _, bad := range []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}, {Path: "/", Type: "c"}} {
		if _, err := deviceList(&specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{bad}}}); err == nil {
			t.Errorf("deviceList(%+v) succeeded", bad)
		}
	}
}

func TestNeedsDevSetup(t *testing.T) {
	for _, tt := range []struct {
		m    []specs.Mount
		want bool
	}{
		{nil, true},
		{[]specs.Mount{{Destination: "/dev", Type: "tmpfs"}}, true},
		{[]specs.Mount{{Destination: "/dev/", Source: "/dev", Options: []string{"rbind"}}}, false},
		{[]specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev"}}, false},
		{[]specs.Mount{{Destination: "/dev/shm", Source: "/dev/shm", Options: []string{"bind"}}}, true},
	} {
		if got := needsDevSetup(&specs.Spec{Mounts: tt.m}); got != tt.want {
			t.Errorf("needsDevSetup(%+v) = %v", tt.m, got)
		}
	}
}

func TestSetupDev(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, UID: ptr(uint32(7)), GID: ptr(uint32(8)), FileMode: ptr(os.FileMode(0o640))},
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200},
	}}}
	f, cfg, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
		f.kcore = true
		// An image's own ptmx file must make way for the symlink.
		os.MkdirAll(filepath.Join(cfg.Rootfs, "dev"), 0o755)
		os.WriteFile(filepath.Join(cfg.Rootfs, "dev/ptmx"), nil, 0o644)
		os.Symlink("/somewhere", filepath.Join(cfg.Rootfs, "dev/stdin"))
	})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "device calls", f.calls[2:], []string{
		"mknod {root}/dev/null c 1:3 0666", "chown {root}/dev/null 0:0",
		"mknod {root}/dev/zero c 1:5 0666", "chown {root}/dev/zero 0:0",
		"mknod {root}/dev/full c 1:7 0666", "chown {root}/dev/full 0:0",
		"mknod {root}/dev/random c 1:8 0666", "chown {root}/dev/random 0:0",
		"mknod {root}/dev/urandom c 1:9 0666", "chown {root}/dev/urandom 0:0",
		"mknod {root}/dev/tty c 5:0 0666", "chown {root}/dev/tty 0:0",
		"mknod {root}/dev/fuse c 10:229 0640", "chown {root}/dev/fuse 7:8",
		"mknod {root}/dev/net/tun c 10:200 0666", "chown {root}/dev/net/tun 0:0",
	})
	if fi, err := os.Stat(filepath.Join(cfg.Rootfs, "dev/fuse")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("dev/fuse: %v, %v", fi, err)
	}
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/somewhere", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "core": "/proc/kcore", "ptmx": "pts/ptmx",
	}
	for name, want := range links {
		if got, err := os.Readlink(filepath.Join(cfg.Rootfs, "dev", name)); err != nil || got != want {
			t.Errorf("/dev/%s -> %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestSetupDevWithoutKcore(t *testing.T) {
	_, cfg, err := prepareWith(t, &specs.Spec{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(cfg.Rootfs, "dev/core")); !os.IsNotExist(err) {
		t.Errorf("/dev/core without a host /proc/kcore: %v", err)
	}
}

func TestDevicesInUserNSAreBindMounted(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}}}
	f, cfg, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) { cfg.UserNS = true })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "fuse"} {
		want = append(want, "mount /dev/"+d+" {root}/dev/"+d+" - BIND")
	}
	diffLines(t, "calls", f.calls[2:], want)
	if fi, err := os.Lstat(filepath.Join(cfg.Rootfs, "dev/null")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("bind mount point dev/null: %v, %v; want an empty file", fi, err)
	}
}

func TestMknodWithoutPermissionFallsBackToBind(t *testing.T) {
	f, _, err := prepareWith(t, &specs.Spec{}, func(_ *Config, f *fakeSys) {
		f.fail = func(line string) error {
			if strings.HasPrefix(line, "mknod {root}/dev/tty ") {
				return unix.EPERM
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.only("mount /dev/tty"); len(got) != 1 || got[0] != "mount /dev/tty {root}/dev/tty - BIND" {
		t.Errorf("fallback calls %q", got)
	}
}

func TestExistingDeviceNodes(t *testing.T) {
	var root string
	f, _, err := prepareWith(t, &specs.Spec{}, func(cfg *Config, f *fakeSys) {
		root = cfg.Rootfs
		os.MkdirAll(filepath.Join(root, "dev"), 0o755)
		// A plain file where /dev/zero belongs is replaced by the device.
		os.WriteFile(filepath.Join(root, "dev/zero"), []byte("not a device"), 0o644)
		f.fail = func(line string) error {
			if strings.HasPrefix(line, "mknod {root}/dev/zero") && len(f.only("mknod {root}/dev/zero")) == 0 {
				return unix.EEXIST
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := f.only("mknod {root}/dev/zero")
	if len(got) != 2 || !strings.HasSuffix(got[0], "= file exists") {
		t.Errorf("zero: %q, want a failed mknod and a second one after unlinking", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dev/zero")); len(b) != 0 {
		t.Errorf("old /dev/zero content still there: %q", b)
	}
}
