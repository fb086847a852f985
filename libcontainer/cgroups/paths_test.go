package cgroups

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// hybridSelf is /proc/self/cgroup as a process on the CI host sees it: its
// memory cgroup differs from the others, and cpu/cpuacct share one line.
const hybridSelf = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/b39e
3:cpuset:/
2:cpu,cpuacct:/
0::/
`

func reader(s string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(s), nil }
}

func TestResolveV1(t *testing.T) {
	failRead := func() ([]byte, error) { return nil, fs.ErrPermission }
	tests := []struct {
		name, id, path string
		self           func() ([]byte, error)
		roots          map[string]string
		want           cgroupPaths
		wantErr        string
	}{
		{name: "empty uses /berth/<id>", id: "abc", self: failRead, want: cgroupPaths{all: "/berth/abc"}},
		{name: "absolute is taken as is", id: "abc", path: "/a/b", self: failRead, want: cgroupPaths{all: "/a/b"}},
		{name: "absolute is cleaned", id: "abc", path: "/a//b/../c/", self: failRead, want: cgroupPaths{all: "/a/c"}},
		{name: "relative joins own cgroup per hierarchy", id: "abc", path: "a/b", self: reader(hybridSelf),
			want: cgroupPaths{per: map[string]string{
				"systemd": "/a/b", "pids": "/a/b", "blkio": "/a/b", "freezer": "/a/b", "devices": "/a/b",
				"memory": "/process_api/b39e/a/b", "cpuset": "/a/b", "cpu": "/a/b", "cpuacct": "/a/b", "unified": "/a/b",
			}}},
		{name: "relative below a partial mount root", id: "abc", path: "x", self: reader("4:memory:/docker/c1\n3:cpu:/docker/c1\n"),
			roots: map[string]string{"memory": "/docker/c1", "cpu": "/"},
			want:  cgroupPaths{per: map[string]string{"memory": "/x", "cpu": "/docker/c1/x"}}},
		{name: "relative cannot climb out", id: "abc", path: "a/../../b", self: reader(hybridSelf), wantErr: "leaves the caller's cgroup"},
		{name: "relative needs /proc/self/cgroup", id: "abc", path: "a", self: failRead, wantErr: "read own cgroup"},
		{name: "relative on a v2-only line", id: "abc", path: "a", self: reader("0::/user.slice\n"), wantErr: "no cgroup v1 entry"},
		{name: "root is refused", id: "abc", path: "/", self: failRead, wantErr: "root cgroup"},
		{name: "systemd's slice:prefix:name is refused", id: "abc", path: "system.slice:docker:abc", self: reader(hybridSelf), wantErr: "systemd cgroup driver"},
		{name: "systemd's form with the default slice", id: "abc", path: ":cri-containerd:abc", self: reader(hybridSelf), wantErr: "systemd cgroup driver"},
		{name: "a relative path with one colon is a path", id: "abc", path: "a:b", self: reader("3:cpu:/\n"),
			want: cgroupPaths{per: map[string]string{"cpu": "/a:b"}}},
		{name: "bad id", id: "a/b", self: failRead, wantErr: "cannot name a cgroup"},
		{name: "empty id", id: "", self: failRead, wantErr: "cannot name a cgroup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveV1(tt.id, tt.path, tt.self, tt.roots)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveV2(t *testing.T) {
	tests := []struct {
		name, path, self string
		roots            map[string]string
		want, wantErr    string
	}{
		{name: "empty", want: "/berth/abc"},
		{name: "absolute", path: "/kubepods/pod1/c", want: "/kubepods/pod1/c"},
		{name: "relative", path: "c1", self: "0::/user.slice/session-1.scope\n", want: "/user.slice/session-1.scope/c1"},
		{name: "relative under mount root", path: "c1", self: "0::/outer/inner\n", roots: map[string]string{"": "/outer"}, want: "/inner/c1"},
		{name: "relative without a v2 line", path: "c1", self: "4:memory:/\n", wantErr: "no cgroup v2 entry"},
		{name: "garbage self", path: "c1", self: "nonsense\n", wantErr: "parse own cgroup"},
		{name: "systemd's slice:prefix:name", path: "kubepods.slice:cri-containerd:abc", self: "0::/\n", wantErr: "systemd cgroup driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveV2("abc", tt.path, reader(tt.self), tt.roots)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestPathsOnlyEncodeDecode(t *testing.T) {
	per, err := resolveV1("abc", "a", reader(hybridSelf), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Without the memory hierarchy every path agrees: Path() is plain.
	if got := per.only([]string{"cpu", "pids", "systemd"}); got.per != nil || got.all != "/a" {
		t.Fatalf("only() without memory = %+v, want all=/a", got)
	}
	mixed := per.only([]string{"cpu", "memory", "unmounted"})
	enc := mixed.encode()
	if enc != "cpu:/a;memory:/process_api/b39e/a" {
		t.Fatalf("encode = %q", enc)
	}
	dec, err := decodePaths(enc)
	if err != nil || !reflect.DeepEqual(dec, mixed) {
		t.Fatalf("decode(%q) = %+v, %v; want %+v", enc, dec, err, mixed)
	}
	if p, err := dec.lookup("pids"); err == nil {
		t.Fatalf("lookup of a hierarchy without a path = %q, want an error", p)
	}
	for _, bad := range []string{"", "relative/path", "cpu", "cpu:relative", ":/x", "/a/../b", "/"} {
		if _, err := decodePaths(bad); err == nil {
			t.Errorf("decodePaths(%q) succeeded, want an error", bad)
		}
	}
	if dec, err := decodePaths("/berth/abc"); err != nil || dec.all != "/berth/abc" {
		t.Fatalf("decode plain = %+v, %v", dec, err)
	}
}

func TestLoadMissingIsErrNotExist(t *testing.T) {
	if !errors.Is(ErrNotExist, fs.ErrNotExist) {
		t.Fatal("ErrNotExist must match fs.ErrNotExist")
	}
	if _, err := loadV2(t.TempDir(), "/berth/gone"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("loadV2 of a missing group: %v, want ErrNotExist", err)
	}
	if _, err := loadV1(v1Config{root: fakeV1Root(t)}, cgroupPaths{all: "/berth/gone"}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("loadV1 of a missing cgroup: %v, want ErrNotExist", err)
	}
}
