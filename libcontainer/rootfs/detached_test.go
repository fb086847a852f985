package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var testMaps = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}

func TestIDMapOf(t *testing.T) {
	tests := []struct {
		name string
		m    specs.Mount
		want *IDMap
		err  string
	}{
		{name: "plain bind", m: specs.Mount{Destination: "/d", Source: "/s", Options: []string{"rbind"}}},
		{name: "tmpfs", m: specs.Mount{Destination: "/d", Type: "tmpfs", Source: "tmpfs"}},
		{
			name: "idmap", m: specs.Mount{Destination: "/d", Source: "/s", Options: []string{"bind", "idmap"}},
			want: &IDMap{Source: "/s", Option: "idmap"},
		},
		{
			name: "idmap rbind", m: specs.Mount{Destination: "/d", Source: "/s", Options: []string{"rbind", "idmap", "ro"}},
			want: &IDMap{Source: "/s", Option: "idmap", Rbind: true},
		},
		{
			name: "ridmap", m: specs.Mount{Destination: "/d", Source: "/s", Type: "bind", Options: []string{"ridmap"}},
			want: &IDMap{Source: "/s", Option: "ridmap", Recursive: true},
		},
		{
			name: "mappings without an option mean idmap",
			m:    specs.Mount{Destination: "/d", Source: "/s", Options: []string{"bind"}, UIDMappings: testMaps, GIDMappings: testMaps},
			want: &IDMap{Source: "/s", Option: "idmap", UIDMappings: testMaps, GIDMappings: testMaps},
		},
		{
			name: "relative source", m: specs.Mount{Destination: "/d", Source: "data", Options: []string{"bind", "idmap"}},
			want: &IDMap{Source: "/bundle/data", Option: "idmap"},
		},
		{
			name: "not a bind", m: specs.Mount{Destination: "/d", Type: "tmpfs", Source: "tmpfs", Options: []string{"idmap"}},
			err: `mount option idmap on /d: only bind mounts can be idmapped (type "tmpfs", no bind or rbind option)`,
		},
		{
			name: "uid mappings alone", m: specs.Mount{Destination: "/d", Source: "/s", Options: []string{"bind", "ridmap"}, UIDMappings: testMaps},
			err: "mount option ridmap on /d: uidMappings and gidMappings must be given together",
		},
		{
			name: "remount", m: specs.Mount{Destination: "/d", Source: "/s", Options: []string{"bind", "remount", "idmap"}},
			err: "mount option idmap on /d: a remount cannot be idmapped",
		},
		{
			name: "no source", m: specs.Mount{Destination: "/d", Options: []string{"bind", "idmap"}},
			err: "mount option idmap on /d: a bind mount needs a source",
		},
	}
	for _, tt := range tests {
		got, err := IDMapOf(&tt.m, "/bundle")
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: err = %v, want %s", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

// detachedFrom returns a DetachedMount that hands out an O_PATH handle on
// dir (named "detached-<i>") for the listed mounts, and records each call.
func detachedFrom(t *testing.T, dir string, calls *[]int, for_ ...int) func(int) (*os.File, error) {
	return func(i int) (*os.File, error) {
		*calls = append(*calls, i)
		for _, j := range for_ {
			if i == j {
				fd, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				return os.NewFile(uintptr(fd), fmt.Sprintf("detached-%d", i)), nil
			}
		}
		return nil, nil
	}
}

func TestPrepareAttachesDetachedMounts(t *testing.T) {
	src := t.TempDir()
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/plain", Source: src, Options: []string{"bind"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/data", Source: "/ignored/for/detached", Options: []string{"rbind", "idmap", "ro", "nosuid"}},
		{Destination: "/run/notify", Source: "/state/notify", Type: "bind", Options: []string{"nodev", "rprivate"}},
	}})
	var calls []int
	f, _, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
		cfg.DetachedMount = detachedFrom(t, src, &calls, 2, 3)
	})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "mounts", f.specMounts(), []string{
		"mount " + src + " {root}/plain - BIND",
		"mount tmpfs {root}/tmp tmpfs 0",
		"move_mount detached-2 {root}/data",
		"mount - {root}/data - RDONLY|NOSUID|REMOUNT|BIND",
		"move_mount detached-3 {root}/run/notify",
		"mount - {root}/run/notify - NODEV|REMOUNT|BIND",
		"mount - {root}/run/notify - REC|PRIVATE",
	})
	if want := []int{0, 2, 3}; !reflect.DeepEqual(calls, want) {
		t.Errorf("DetachedMount called for %v, want the bind mounts %v", calls, want)
	}
}

// A detached mount of a file makes a file mount point, whatever the
// spec's source (which init may not even be able to see).
func TestDetachedFileMountPoint(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/etc/f", Source: "/unreachable", Options: []string{"bind", "idmap"}},
	}})
	var calls []int
	_, cfg, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) {
		cfg.DetachedMount = detachedFrom(t, file, &calls, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(cfg.Rootfs, "etc/f")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("mount point: %v, %v; want a regular file", fi, err)
	}
}

func TestIdmapWithoutDetachedMount(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Source: t.TempDir(), Options: []string{"bind"}, UIDMappings: testMaps, GIDMappings: testMaps},
	}})
	var calls []int
	f, _, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) {
		cfg.DetachedMount = detachedFrom(t, "/", &calls)
	})
	if err == nil || !strings.Contains(err.Error(), "on /data (rootfs ") || !strings.Contains(err.Error(), "the runtime made no idmapped mount for it") {
		t.Fatalf("err = %v", err)
	}
	if got := f.specMounts(); len(got) != 0 {
		t.Errorf("mounted %v anyway", got)
	}
}

func TestIdmapRequestErrorsInPrepare(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"ridmap"}},
	}})
	_, _, err := prepareWith(t, spec, nil)
	if err == nil || !strings.Contains(err.Error(), "only bind mounts can be idmapped") {
		t.Fatalf("err = %v", err)
	}
}
