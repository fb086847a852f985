package rootfs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestParseProcCgroup(t *testing.T) {
	in := "9:name=systemd:/c1\n4:memory:/c1/mem\n2:cpuacct,cpu:/c1\n0::/c1\n"
	got, err := parseProcCgroup(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name=systemd": "/c1", "memory": "/c1/mem", "cpu,cpuacct": "/c1", "": "/c1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseProcCgroup(strings.NewReader("garbage\n")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestCgroupFromMounts(t *testing.T) {
	own := map[string]string{"cpu,cpuacct": "/c1", "memory": "/c1", "name=systemd": "/c1", "": "/c1", "pids": "/"}
	mounts := []*mountinfo.Info{
		{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup", Root: "/", VFSOptions: "rw,cpuacct,cpu"},
		{Mountpoint: "/sys/fs/cgroup/memory", FSType: "cgroup", Root: "/c1", VFSOptions: "rw,memory"},
		{Mountpoint: "/sys/fs/cgroup/systemd", FSType: "cgroup", Root: "/..", VFSOptions: "rw,xattr,release_agent=/x,name=systemd"},
		{Mountpoint: "/sys/fs/cgroup/pids", FSType: "cgroup", Root: "/", VFSOptions: "rw,pids,clone_children"},
		{Mountpoint: "/sys/fs/cgroup/unified", FSType: "cgroup2", Root: "/", VFSOptions: "rw"},
		{Mountpoint: "/elsewhere/cpu", FSType: "cgroup", Root: "/", VFSOptions: "rw,cpu"},
	}
	got := cgroupFromMounts(mounts, own)
	want := &cgroupHost{
		v2Source: "/sys/fs/cgroup/unified/c1",
		v1: []cgroupHierarchy{
			{name: "cpu,cpuacct", options: "cpuacct,cpu", source: "/sys/fs/cgroup/cpu,cpuacct/c1"},
			{name: "memory", options: "memory", source: "/sys/fs/cgroup/memory"},
			{name: "systemd", options: "name=systemd", source: "/sys/fs/cgroup/systemd"},
			{name: "pids", options: "pids", source: "/sys/fs/cgroup/pids"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// cgroup2 on /sys/fs/cgroup itself wins, wherever it is listed.
	mounts = append(mounts, &mountinfo.Info{Mountpoint: "/sys/fs/cgroup", FSType: "cgroup2", Root: "/", VFSOptions: "rw"})
	if got := cgroupFromMounts(mounts, own).v2Source; got != "/sys/fs/cgroup/c1" {
		t.Errorf("v2Source = %q, want the unified mount's", got)
	}
}

func TestReadCgroupHost(t *testing.T) {
	host, err := readCgroupHost()
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	if !host.unified && len(host.v1) == 0 && host.v2Source == "" {
		t.Errorf("found no cgroup mounts: %+v", host)
	}
	for _, h := range host.v1 {
		if h.name == "" || h.options == "" || !strings.HasPrefix(h.source, cgroupRoot+"/") {
			t.Errorf("bad hierarchy %+v", h)
		}
	}
}
