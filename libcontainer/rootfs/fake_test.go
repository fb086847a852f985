package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fakeSys records the privileged calls a run makes, as readable lines.
// Targets given as /proc/self/fd/N are shown as the file they point at,
// with the test's root directory written as "{root}", so a line says where
// a mount would really have landed.
type fakeSys struct {
	t     *testing.T
	root  string // canonical path of the test's root directory
	calls []string
	// fail, when set, may return an error for a call line (before it is
	// recorded as done); a nil return lets the call succeed.
	fail func(line string) error

	mounts []*mountinfo.Info
	cgroup *cgroupHost
	kcore  bool
	procfs map[string]bool
	// procfsFiles are the files, as show writes them, that are on a
	// procfs.
	procfsFiles map[string]bool
	devNullOK   bool
}

func newFakeSys(t *testing.T, root string) *fakeSys {
	t.Helper()
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSys{t: t, root: real, devNullOK: true, cgroup: &cgroupHost{unified: true}}
}

func (f *fakeSys) system() *system {
	return &system{
		mnt:   fakeMounter{f},
		nodes: fakeNodes{f},
		roots: fakeRoots{f},
		mountTable: func(filter mountinfo.FilterFunc) ([]*mountinfo.Info, error) {
			var out []*mountinfo.Info
			for _, m := range f.mounts {
				skip, stop := false, false
				if filter != nil {
					skip, stop = filter(m)
				}
				if !skip {
					out = append(out, m)
				}
				if stop {
					break
				}
			}
			return out, nil
		},
		cgroups:      func() (*cgroupHost, error) { return f.cgroup, nil },
		hasKcore:     func() bool { return f.kcore },
		isProcfs:     func(p string) bool { return f.procfs[p] },
		isProcfsFile: func(file *os.File) bool { return f.procfsFiles[f.showFile(file)] },
		isDevNull:    func(*unix.Stat_t) bool { return f.devNullOK },
	}
}

// show renders a path for a call line.
func (f *fakeSys) show(p string) string {
	if strings.HasPrefix(p, "/proc/self/fd/") {
		if l, err := os.Readlink(p); err == nil {
			p = l
		}
	}
	if p == f.root || strings.HasPrefix(p, f.root+"/") {
		return "{root}" + strings.TrimPrefix(p, f.root)
	}
	return p
}

func (f *fakeSys) showFd(fd int) string { return f.show(fmt.Sprintf("/proc/self/fd/%d", fd)) }

func (f *fakeSys) showFile(file *os.File) string { return f.showFd(int(file.Fd())) }

func (f *fakeSys) record(line string) error {
	if f.fail != nil {
		if err := f.fail(line); err != nil {
			f.calls = append(f.calls, line+" = "+err.Error())
			return err
		}
	}
	f.calls = append(f.calls, line)
	return nil
}

// only returns the recorded lines starting with prefix.
func (f *fakeSys) only(prefix string) []string {
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

type fakeMounter struct{ f *fakeSys }

func (m fakeMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	line := fmt.Sprintf("mount %s %s %s %s", orDash(m.f.show(source)), m.f.show(target), orDash(fstype), flagString(flags))
	if data != "" {
		line += " " + data
	}
	return m.f.record(line)
}

func (m fakeMounter) Unmount(target string, flags int) error {
	return m.f.record(fmt.Sprintf("umount %s %#x", m.f.show(target), flags))
}

func (m fakeMounter) SetAttrRecursive(target string, attr *unix.MountAttr) error {
	return m.f.record(fmt.Sprintf("setattr %s set=%#x clr=%#x", m.f.show(target), attr.Attr_set, attr.Attr_clr))
}

func (m fakeMounter) MoveMount(f *os.File, target string) error {
	return m.f.record(fmt.Sprintf("move_mount %s %s", f.Name(), m.f.show(target)))
}

func (m fakeMounter) BindOver(src, target *os.File, rec bool) error {
	flags := uintptr(unix.MS_BIND)
	if rec {
		flags |= unix.MS_REC
	}
	return m.f.record(fmt.Sprintf("bind-over %s %s %s", m.f.showFile(src), m.f.showFile(target), flagString(flags)))
}

func (m fakeMounter) MountOver(fstype string, flags uintptr, data string, target *os.File) error {
	line := fmt.Sprintf("mount-over %s %s %s", fstype, m.f.showFile(target), flagString(flags))
	if data != "" {
		line += " " + data
	}
	return m.f.record(line)
}

func (m fakeMounter) MakeReadonly(target *os.File) error {
	return m.f.record("make-readonly " + m.f.showFile(target))
}

type fakeNodes struct{ f *fakeSys }

// Mknodat leaves a regular file behind so that the code after it (open,
// chmod) has something to work on without CAP_MKNOD.
func (n fakeNodes) Mknodat(dirfd int, name string, mode uint32, dev int) error {
	kind := map[uint32]string{unix.S_IFCHR: "c", unix.S_IFBLK: "b", unix.S_IFIFO: "p"}[mode&unix.S_IFMT]
	line := fmt.Sprintf("mknod %s/%s %s %d:%d %#o", n.f.showFd(dirfd), name, kind,
		unix.Major(uint64(dev)), unix.Minor(uint64(dev)), mode&0o7777)
	if err := n.f.record(line); err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func (n fakeNodes) Chown(fd int, uid, gid int) error {
	return n.f.record(fmt.Sprintf("chown %s %d:%d", n.f.showFd(fd), uid, gid))
}

type fakeRoots struct{ f *fakeSys }

func (r fakeRoots) PivotRoot(newroot, putold string) error {
	return r.f.record("pivot_root " + newroot + " " + putold)
}
func (r fakeRoots) Chroot(path string) error { return r.f.record("chroot " + path) }
func (r fakeRoots) Fchdir(fd int) error      { return r.f.record("fchdir " + r.f.showFd(fd)) }
func (r fakeRoots) Chdir(path string) error  { return r.f.record("chdir " + r.f.show(path)) }

// specMounts returns the mount-table calls after Prepare's first two (root
// propagation and the rootfs self-bind), i.e. those for spec.Mounts;
// device bind mounts (user namespaces) are left out.
func (f *fakeSys) specMounts() []string {
	var out []string
	for i, c := range f.calls {
		f := strings.Fields(c)
		deviceBind := len(f) == 5 && strings.HasPrefix(f[1], "/dev/") && f[2] == "{root}"+f[1] && f[4] == "BIND"
		if i >= 2 && !deviceBind && (f[0] == "mount" || f[0] == "umount" || f[0] == "setattr" || f[0] == "move_mount") {
			out = append(out, c)
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var flagNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "RDONLY"}, {unix.MS_NOSUID, "NOSUID"}, {unix.MS_NODEV, "NODEV"},
	{unix.MS_NOEXEC, "NOEXEC"}, {unix.MS_SYNCHRONOUS, "SYNC"}, {unix.MS_REMOUNT, "REMOUNT"},
	{unix.MS_MANDLOCK, "MANDLOCK"}, {unix.MS_DIRSYNC, "DIRSYNC"}, {unix.MS_NOSYMFOLLOW, "NOSYMFOLLOW"},
	{unix.MS_NOATIME, "NOATIME"}, {unix.MS_NODIRATIME, "NODIRATIME"}, {unix.MS_BIND, "BIND"},
	{unix.MS_MOVE, "MOVE"}, {unix.MS_REC, "REC"}, {unix.MS_SILENT, "SILENT"},
	{unix.MS_UNBINDABLE, "UNBINDABLE"}, {unix.MS_PRIVATE, "PRIVATE"}, {unix.MS_SLAVE, "SLAVE"},
	{unix.MS_SHARED, "SHARED"}, {unix.MS_RELATIME, "RELATIME"}, {unix.MS_I_VERSION, "I_VERSION"},
	{unix.MS_STRICTATIME, "STRICTATIME"}, {unix.MS_LAZYTIME, "LAZYTIME"},
}

// flagString writes MS_* flags as "NOSUID|NODEV", "0" for none.
func flagString(flags uintptr) string {
	var names []string
	for _, n := range flagNames {
		if flags&n.flag != 0 {
			names = append(names, n.name)
			flags &^= n.flag
		}
	}
	if flags != 0 {
		names = append(names, fmt.Sprintf("%#x", flags))
	}
	if names == nil {
		return "0"
	}
	return strings.Join(names, "|")
}

// tmpRoot makes a directory to act as a rootfs.
func tmpRoot(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
}
