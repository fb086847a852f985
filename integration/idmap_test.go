package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var idmapUserNS = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}

// withUserNS gives the container a user namespace whose root is host uid
// 100000.
func withUserNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings, s.Linux.GIDMappings = idmapUserNS, idmapUserNS
}

func hostOwner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// An idmap bind of a directory owned by host root shows it, in a user
// namespace, as owned by the container's root, and what the container's
// root writes there is owned by host root: the ids are mapped on the
// mount, not chowned. Mappings on the mount itself override the
// container's.
func TestIdmapBindMount(t *testing.T) {
	r := newRT(t)
	src, own := t.TempDir(), t.TempDir() // both owned by host root, 0700
	for _, d := range []string{src, own} {
		if err := os.WriteFile(filepath.Join(d, "owned"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// On the second mount, host id 0 shows as 1 (host 100001, which the
	// container's namespace maps to 1).
	mountMaps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100001, Size: 1}}
	b := busybox(t, func(s *specs.Spec) {
		withUserNS(s)
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Source: src, Type: "bind", Options: []string{"rbind", "idmap"}},
			specs.Mount{Destination: "/own", Source: own, Options: []string{"bind", "ridmap", "ro"}, UIDMappings: mountMaps, GIDMappings: mountMaps},
		)
	}, "sh", "-c", "stat -c '%u:%g' /data/owned /own/owned && cat /data/owned && echo new > /data/created && id -u")
	openToMappedRoot(t, b)
	// The rootfs is host root's: the namespace's root cannot make mount
	// points in it.
	for _, d := range []string{"data", "own"} {
		if err := os.Mkdir(filepath.Join(b, "rootfs", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := r.must("run", "-b", b, newID(t))
	if want := "0:0\n1:1\nx0\n"; out != want {
		t.Fatalf("in the container: %q, want %q (owners of /data/owned and /own/owned, its content, our uid)", out, want)
	}
	if uid, gid := hostOwner(t, filepath.Join(src, "created")); uid != 0 || gid != 0 {
		t.Fatalf("file created by the container's root is %d:%d on the host, want 0:0 (not 100000)", uid, gid)
	}
}

func TestIdmapErrors(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name  string
		edit  func(*specs.Spec)
		wants []string
	}{
		{
			name: "no mappings and no user namespace",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: t.TempDir(), Options: []string{"bind", "idmap"}})
			},
			wants: []string{"mount option idmap on /data", "no user namespace"},
		},
		{
			name: "a file system without idmap support",
			edit: func(s *specs.Spec) {
				withUserNS(s)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "/proc", Options: []string{"rbind", "idmap"}})
			},
			wants: []string{"mount option idmap on /data: the file system of /proc does not support idmapped mounts (EINVAL)"},
		},
		{
			name: "not a bind mount",
			edit: func(s *specs.Spec) {
				withUserNS(s)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"ridmap"}})
			},
			wants: []string{"mount option ridmap on /data: only bind mounts can be idmapped"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := busybox(t, tc.edit, "true")
			openToMappedRoot(t, b)
			id := newID(t)
			res := r.run("create", "-b", b, id)
			if res.code == 0 {
				t.Fatalf("create succeeded")
			}
			for _, w := range tc.wants {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q lacks %q", res.stderr, w)
				}
			}
			if res := r.run("state", id); res.code == 0 {
				t.Errorf("a failed create left the container behind")
			}
		})
	}
}
