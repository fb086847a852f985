package rootfs

import (
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestEnterPivotRoot(t *testing.T) {
	root := tmpRoot(t)
	f := newFakeSys(t, root)
	if err := enter(&Config{Rootfs: root, Spec: &specs.Spec{}}, f.system()); err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.calls, []string{
		"fchdir {root}",
		"pivot_root . .",
		"fchdir /",
		"mount - . - REC|SLAVE",
		"umount . 0x2",
		"chdir /",
	})
}

func TestEnterNoPivot(t *testing.T) {
	root := tmpRoot(t)
	f := newFakeSys(t, root)
	f.mounts = []*mountinfo.Info{
		{Mountpoint: "/", FSType: "ext4"},
		{Mountpoint: "/proc", FSType: "proc"},
		{Mountpoint: "/sys", FSType: "sysfs"},
		{Mountpoint: "/sys/fs/cgroup", FSType: "tmpfs"},
		{Mountpoint: "/gone", FSType: "proc"},
		{Mountpoint: "/locked", FSType: "sysfs"},
		{Mountpoint: root + "/proc", FSType: "proc"},
		{Mountpoint: root + "x/proc", FSType: "proc"}, // a sibling, not inside the rootfs
	}
	f.fail = func(line string) error {
		switch {
		case strings.HasPrefix(line, "mount - /gone "):
			return unix.ENOENT
		case strings.HasPrefix(line, "umount /locked "):
			return unix.EINVAL
		}
		return nil
	}
	if err := enter(&Config{Rootfs: root, Spec: &specs.Spec{}, NoPivot: true}, f.system()); err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.calls, []string{
		"mount - " + root + "x/proc - REC|SLAVE",
		"umount " + root + "x/proc 0x2",
		"mount - /locked - REC|SLAVE",
		"umount /locked 0x2 = invalid argument",
		"mount tmpfs /locked tmpfs 0",
		"mount - /gone - REC|SLAVE = no such file or directory",
		"mount - /sys - REC|SLAVE",
		"umount /sys 0x2",
		"mount - /proc - REC|SLAVE",
		"umount /proc 0x2",
		"chdir {root}",
		"mount {root} / - MOVE",
		"chroot .",
		"chdir /",
	})
}

func TestEnterErrors(t *testing.T) {
	root := tmpRoot(t)
	f := newFakeSys(t, root)
	f.fail = func(line string) error {
		if strings.HasPrefix(line, "pivot_root") {
			return unix.EINVAL
		}
		return nil
	}
	err := enter(&Config{Rootfs: root, Spec: &specs.Spec{}}, f.system())
	if err == nil || !strings.Contains(err.Error(), "pivot_root into "+root) {
		t.Fatalf("err = %v", err)
	}
}
