package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthrt/berth/libcontainer/specdefault"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// prepareWith runs Prepare against a fake system over a fresh directory.
func prepareWith(t *testing.T, spec *specs.Spec, setup func(cfg *Config, f *fakeSys)) (*fakeSys, *Config, error) {
	t.Helper()
	root := tmpRoot(t)
	cfg := &Config{Rootfs: root, BundleDir: filepath.Dir(root), Spec: spec}
	f := newFakeSys(t, root)
	if setup != nil {
		setup(cfg, f)
	}
	return f, cfg, prepare(cfg, f.system())
}

func mountsOnly(spec *specs.Spec) *specs.Spec {
	spec.Linux = &specs.Linux{}
	return spec
}

func v1Host() *cgroupHost {
	return &cgroupHost{v1: []cgroupHierarchy{
		{name: "cpu,cpuacct", options: "cpu,cpuacct", source: "/sys/fs/cgroup/cpu,cpuacct/c1"},
		{name: "systemd", options: "name=systemd", source: "/sys/fs/cgroup/systemd/c1"},
	}}
}

func TestPrepareDefaultSpec(t *testing.T) {
	f, cfg, err := prepareWith(t, specdefault.Spec(), func(_ *Config, f *fakeSys) { f.cgroup = v1Host() })
	if err != nil {
		t.Fatal(err)
	}
	const cgFlags = "RDONLY|NOSUID|NODEV|NOEXEC|RELATIME"
	diffLines(t, "mounts", f.only("mount"), []string{
		"mount - / - REC|SLAVE",
		"mount {root} {root} - BIND|REC",
		"mount proc {root}/proc proc 0",
		"mount tmpfs {root}/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
		"mount devpts {root}/dev/pts devpts NOSUID|NOEXEC newinstance,ptmxmode=0666,mode=0620,gid=5",
		"mount shm {root}/dev/shm tmpfs NOSUID|NODEV|NOEXEC mode=1777,size=65536k",
		"mount mqueue {root}/dev/mqueue mqueue NOSUID|NODEV|NOEXEC",
		"mount sysfs {root}/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC",
		"mount tmpfs {root}/sys/fs/cgroup tmpfs NOSUID|NODEV|NOEXEC mode=755",
		"mount cgroup {root}/sys/fs/cgroup/cpu,cpuacct cgroup " + cgFlags + " cpu,cpuacct",
		"mount cgroup {root}/sys/fs/cgroup/systemd cgroup " + cgFlags + " name=systemd",
		"mount - {root}/sys/fs/cgroup - RDONLY|NOSUID|NODEV|NOEXEC|REMOUNT|BIND",
	})
	diffLines(t, "devices", f.only("mknod"), []string{
		"mknod {root}/dev/null c 1:3 0666",
		"mknod {root}/dev/zero c 1:5 0666",
		"mknod {root}/dev/full c 1:7 0666",
		"mknod {root}/dev/random c 1:8 0666",
		"mknod {root}/dev/urandom c 1:9 0666",
		"mknod {root}/dev/tty c 5:0 0666",
	})
	if got := len(f.only("chown")); got != 6 {
		t.Errorf("%d chowns, want 6", got)
	}
	fi, err := os.Stat(filepath.Join(cfg.Rootfs, "dev/null"))
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("dev/null: %v, %v; want mode 0666 despite the umask", fi, err)
	}
	for _, link := range []string{"cpu", "cpuacct"} {
		l, err := os.Readlink(filepath.Join(cfg.Rootfs, "sys/fs/cgroup", link))
		if err != nil || l != "cpu,cpuacct" {
			t.Errorf("cgroup link %s = %q, %v", link, l, err)
		}
	}
}

func TestPrepareRootPropagation(t *testing.T) {
	tests := []struct {
		prop, optional string
		want           []string
	}{
		{"", "master:3", []string{"mount - / - REC|SLAVE", "mount {root} {root} - BIND|REC"}},
		{"rshared", "shared:7 master:2", []string{"mount - / - REC|SHARED", "mount - {parent} - PRIVATE", "mount {root} {root} - BIND|REC"}},
		{"unbindable", "unbindable", []string{"mount - / - UNBINDABLE", "mount - {parent} - PRIVATE", "mount {root} {root} - BIND|REC"}},
		{"private", "", []string{"mount - / - PRIVATE", "mount {root} {root} - BIND|REC"}},
	}
	for _, tt := range tests {
		spec := mountsOnly(&specs.Spec{})
		spec.Linux.RootfsPropagation = tt.prop
		f, cfg, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
			f.mounts = []*mountinfo.Info{
				{Mountpoint: "/", Optional: "shared:1"},
				{Mountpoint: filepath.Dir(cfg.Rootfs), Optional: tt.optional},
				{Mountpoint: "/unrelated", Optional: "shared:9"},
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Split(strings.ReplaceAll(strings.Join(tt.want, "\n"), "{parent}", filepath.Dir(cfg.Rootfs)), "\n")
		diffLines(t, "rootfsPropagation "+tt.prop, f.only("mount"), want)
	}
}

func TestPrepareBadConfig(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil spec":        {Rootfs: "/x"},
		"relative rootfs": {Rootfs: "x", Spec: &specs.Spec{}},
		"unclean rootfs":  {Rootfs: "/x/../y", Spec: &specs.Spec{}},
		"root as rootfs":  {Rootfs: "/", Spec: &specs.Spec{}},
		"bad propagation": {Rootfs: "/x", Spec: &specs.Spec{Linux: &specs.Linux{RootfsPropagation: "sideways"}}},
	} {
		f := newFakeSys(t, t.TempDir())
		if err := prepare(cfg, f.system()); err == nil {
			t.Errorf("%s: no error", name)
		}
		if len(f.calls) != 0 {
			t.Errorf("%s: calls made: %q", name, f.calls)
		}
	}
}

func TestMountBind(t *testing.T) {
	bundle := t.TempDir()
	os.WriteFile(filepath.Join(bundle, "file"), nil, 0o644)
	os.Mkdir(filepath.Join(bundle, "dir"), 0o755)
	tests := []struct {
		name  string
		m     specs.Mount
		want  []string
		isDir bool
	}{
		{name: "file source makes a file",
			m:    specs.Mount{Destination: "/etc/hosts", Source: bundle + "/file", Options: []string{"bind"}},
			want: []string{"mount " + bundle + "/file {root}/etc/hosts - BIND"}},
		{name: "dir source makes a dir, relative to the bundle",
			m:     specs.Mount{Destination: "/data", Source: "dir", Options: []string{"rbind"}},
			want:  []string{"mount " + bundle + "/dir {root}/data - BIND|REC"},
			isDir: true},
		{name: "bind type",
			m:     specs.Mount{Destination: "/data", Type: "bind", Source: bundle + "/dir"},
			want:  []string{"mount " + bundle + "/dir {root}/data - BIND"},
			isDir: true},
		{name: "flags need a remount, propagation and recursive attributes their own calls",
			m: specs.Mount{Destination: "/data", Type: "none", Source: bundle + "/dir",
				Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec", "noatime", "rslave", "runbindable", "rro"}},
			want: []string{
				"mount " + bundle + "/dir {root}/data - BIND|REC",
				"mount - {root}/data - RDONLY|NOSUID|NODEV|NOEXEC|REMOUNT|NOATIME|BIND",
				"mount - {root}/data - REC|SLAVE",
				"mount - {root}/data - REC|UNBINDABLE",
				"setattr {root}/data set=0x1 clr=0x0",
			},
			isDir: true},
		{name: "rw on a bind still remounts",
			m:     specs.Mount{Destination: "/data", Source: bundle + "/dir", Options: []string{"bind", "rw"}},
			want:  []string{"mount " + bundle + "/dir {root}/data - BIND", "mount - {root}/data - REMOUNT|BIND"},
			isDir: true},
		{name: "bind remount of an existing mount",
			m:     specs.Mount{Destination: "/existing", Options: []string{"bind", "remount", "ro"}},
			want:  []string{"mount - {root}/existing - RDONLY|REMOUNT|BIND"},
			isDir: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{tt.m}})
			f, cfg, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) {
				cfg.BundleDir = bundle
				os.Mkdir(filepath.Join(cfg.Rootfs, "existing"), 0o755)
			})
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "calls", f.specMounts(), tt.want)
			fi, err := os.Lstat(filepath.Join(cfg.Rootfs, tt.m.Destination))
			if err != nil || fi.IsDir() != tt.isDir {
				t.Errorf("destination: %v, %v; want dir=%v", fi, err, tt.isDir)
			}
		})
	}
}

func TestMountDestinationStaysInsideRootfs(t *testing.T) {
	host := t.TempDir() // stands for the host's /etc
	tests := []struct {
		name  string
		link  [2]string // name in the rootfs, symlink target
		m     specs.Mount
		want  string
		isDir bool
	}{
		{name: "absolute symlink in the path",
			link: [2]string{"evil", host},
			m:    specs.Mount{Destination: "/evil/x", Type: "tmpfs", Source: "tmpfs"},
			want: "mount tmpfs {root}" + host + "/x tmpfs 0", isDir: true},
		{name: "dot-dot in the destination",
			m:    specs.Mount{Destination: "/../../etc", Type: "tmpfs", Source: "tmpfs"},
			want: "mount tmpfs {root}/etc tmpfs 0", isDir: true},
		{name: "relative symlink climbing out",
			link: [2]string{"rel", "../../../../../../.." + host},
			m:    specs.Mount{Destination: "/rel/y", Type: "tmpfs", Source: "tmpfs"},
			want: "mount tmpfs {root}" + host + "/y tmpfs 0", isDir: true},
		{name: "symlink as the last component",
			link: [2]string{"last", host},
			m:    specs.Mount{Destination: "/last", Type: "tmpfs", Source: "tmpfs"},
			want: "mount tmpfs {root}" + host + " tmpfs 0", isDir: true},
		{name: "file mount point through a symlink",
			link: [2]string{"f", host + "/passwd"},
			m:    specs.Mount{Destination: "/f", Source: "/dev/null", Options: []string{"bind"}},
			want: "mount /dev/null {root}" + host + "/passwd - BIND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{tt.m}})
			f, cfg, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) {
				if tt.link[0] != "" {
					if err := os.Symlink(tt.link[1], filepath.Join(cfg.Rootfs, tt.link[0])); err != nil {
						t.Fatal(err)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "calls", f.specMounts(), []string{tt.want})
			if entries, _ := os.ReadDir(host); len(entries) != 0 {
				t.Errorf("host directory was written to: %v", entries)
			}
			inside := filepath.Join(cfg.Rootfs, strings.TrimPrefix(strings.Fields(tt.want)[2], "{root}"))
			if fi, err := os.Lstat(inside); err != nil || fi.IsDir() != tt.isDir {
				t.Errorf("mount point %s: %v, %v; want dir=%v", inside, fi, err, tt.isDir)
			}
		})
	}
}

func TestMountProcChecks(t *testing.T) {
	tests := []struct {
		name    string
		link    [2]string
		m       specs.Mount
		procfs  bool
		wantErr string
	}{
		{name: "proc on /proc", m: specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}},
		{name: "proc through a symlink", link: [2]string{"proc", "/elsewhere"},
			m:       specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"},
			wantErr: "must not be reached through a symlink"},
		{name: "sysfs through a symlink", link: [2]string{"sys", "/elsewhere"},
			m:       specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
			wantErr: "must not be reached through a symlink"},
		{name: "tmpfs over /proc", m: specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"},
			wantErr: "only a procfs may be mounted on /proc"},
		{name: "procfs bind over /proc", procfs: true,
			m: specs.Mount{Destination: "/proc", Source: "/proc", Options: []string{"rbind"}}},
		{name: "lxcfs file", m: specs.Mount{Destination: "/proc/cpuinfo", Source: "/dev/null", Options: []string{"bind"}}},
		{name: "other file in /proc", m: specs.Mount{Destination: "/proc/sys/x", Source: "/dev/null", Options: []string{"bind"}},
			wantErr: "/proc/sys/x is inside /proc"},
		{name: "into /proc through a symlink", link: [2]string{"p", "/proc/sys"},
			m:       specs.Mount{Destination: "/p/kernel", Type: "tmpfs", Source: "tmpfs"},
			wantErr: "/proc/sys/kernel is inside /proc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{tt.m}})
			_, _, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
				f.procfs = map[string]bool{"/proc": tt.procfs}
				if tt.link[0] != "" {
					os.Symlink(tt.link[1], filepath.Join(cfg.Rootfs, tt.link[0]))
				}
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestMountErrorNamesTheMount(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}}})
	_, cfg, err := prepareWith(t, spec, func(_ *Config, f *fakeSys) {
		f.fail = func(line string) error {
			if strings.HasPrefix(line, "mount tmpfs {root}/dev ") {
				return unix.EINVAL
			}
			return nil
		}
	})
	want := `mount tmpfs from "tmpfs" on /dev (rootfs ` + cfg.Rootfs + `): invalid argument`
	if err == nil || err.Error() != want || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("err = %v\nwant %s (wrapping EINVAL)", err, want)
	}
}

func TestMountRequestErrors(t *testing.T) {
	for name, m := range map[string]specs.Mount{
		"idmap":                   {Destination: "/x", Source: "/tmp", Options: []string{"rbind", "idmap"}},
		"relative without bundle": {Destination: "/x", Source: "data", Options: []string{"bind"}},
		"missing source":          {Destination: "/x", Source: "/nonexistent/src", Options: []string{"bind"}},
		"empty bind source":       {Destination: "/x", Options: []string{"rbind"}},
	} {
		spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{m}})
		_, _, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) { cfg.BundleDir = "" })
		if err == nil || !strings.Contains(err.Error(), "on /x (rootfs ") {
			t.Errorf("%s: err = %v", name, err)
		}
		if name == "idmap" && !strings.Contains(fmt.Sprint(err), "the runtime made no idmapped mount for it") {
			t.Errorf("idmap: err = %v, want the missing detached mount named", err)
		}
	}
}

func TestSysfsFallsBackToBindInUserNS(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}})
	f, _, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
		cfg.UserNS = true
		f.fail = func(line string) error {
			if strings.HasPrefix(line, "mount sysfs") {
				return unix.EPERM
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.specMounts(), []string{
		"mount sysfs {root}/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC = operation not permitted",
		"mount /sys {root}/sys - BIND|REC",
		"mount - {root}/sys - RDONLY|NOSUID|NODEV|NOEXEC|REMOUNT|BIND",
	})
}

func TestBindRemountRetriesWithLockedFlags(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Source: "/", Options: []string{"rbind", "nodev"}},
	}})
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	current := statfsToMountFlags(st.Flags)
	retry := unix.MS_NODEV | unix.MS_REMOUNT | unix.MS_BIND | current&(lockedFlags|atimeFlags)
	f, _, err := prepareWith(t, spec, func(_ *Config, f *fakeSys) {
		f.fail = func(line string) error {
			if line == "mount - {root}/data - NODEV|REMOUNT|BIND" {
				return unix.EPERM
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.specMounts(), []string{
		"mount / {root}/data - BIND|REC",
		"mount - {root}/data - NODEV|REMOUNT|BIND = operation not permitted",
		"mount - {root}/data - " + flagString(retry),
	})
}

func TestReadonlyDevIsRemountedAfterDevices(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "ro", "mode=755"}},
	}})
	f, _, err := prepareWith(t, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.specMounts(), []string{
		"mount tmpfs {root}/dev tmpfs NOSUID mode=755",
		"mount - {root}/dev - RDONLY|NOSUID|REMOUNT|BIND",
	})
	if last := f.calls[len(f.calls)-1]; !strings.Contains(last, "{root}/dev - RDONLY") {
		t.Errorf("last call %q, want the read-only remount of /dev after the devices", last)
	}
}

func TestDevBindMountSkipsDeviceSetup(t *testing.T) {
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/dev", Source: "/dev", Options: []string{"rbind"}},
	}})
	f, cfg, err := prepareWith(t, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.only("mknod"); len(n) != 0 {
		t.Errorf("devices created over a bind-mounted /dev: %q", n)
	}
	if _, err := os.Lstat(filepath.Join(cfg.Rootfs, "dev/ptmx")); err == nil {
		t.Error("/dev/ptmx created over a bind-mounted /dev")
	}
}

func TestTmpCopyUp(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "ro", "mode=755"}},
	}})
	var copied []byte
	f, _, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
		os.MkdirAll(filepath.Join(cfg.Rootfs, "etc/sub"), 0o755)
		os.WriteFile(filepath.Join(cfg.Rootfs, "etc/sub/hosts"), []byte("127.0.0.1 x\n"), 0o644)
		f.fail = func(line string) error {
			if strings.Contains(line, " MOVE") { // the copy is complete by now
				copied, _ = os.ReadFile(filepath.Join(strings.Fields(line)[1], "sub/hosts"))
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := f.specMounts()
	tmp := strings.Fields(got[0])[1]
	if !strings.Contains(tmp, "berth-copyup-") {
		t.Fatalf("first call %q does not use a temporary directory", got[0])
	}
	diffLines(t, "calls", got, []string{
		"mount " + tmp + " " + tmp + " - BIND",
		"mount - " + tmp + " - PRIVATE",
		"mount tmpfs " + tmp + " tmpfs 0 mode=755",
		"mount " + tmp + " {root}/etc - MOVE",
		"umount " + tmp + " 0x2",
		"mount - {root}/etc - RDONLY|REMOUNT|BIND",
	})
	if string(copied) != "127.0.0.1 x\n" {
		t.Errorf("copied content %q", copied)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary directory left behind: %v", err)
	}
}

func TestMountCgroup(t *testing.T) {
	eperm := func(prefix string) func(string) error {
		return func(line string) error {
			if strings.HasPrefix(line, prefix) {
				return unix.EPERM
			}
			return nil
		}
	}
	const sub = "RDONLY|NOSUID|NODEV|NOEXEC"
	tests := []struct {
		name   string
		host   *cgroupHost
		ns     bool
		userns bool
		fail   func(string) error
		want   []string
	}{
		{name: "v1 without cgroup namespace binds our cgroups", host: v1Host(), want: []string{
			"mount tmpfs {root}/sys/fs/cgroup tmpfs NOSUID|NODEV|NOEXEC mode=755",
			"mount /sys/fs/cgroup/cpu,cpuacct/c1 {root}/sys/fs/cgroup/cpu,cpuacct - BIND|REC",
			"mount - {root}/sys/fs/cgroup/cpu,cpuacct - " + sub + "|REMOUNT|BIND",
			"mount /sys/fs/cgroup/systemd/c1 {root}/sys/fs/cgroup/systemd - BIND|REC",
			"mount - {root}/sys/fs/cgroup/systemd - " + sub + "|REMOUNT|BIND",
			"mount - {root}/sys/fs/cgroup - " + sub + "|REMOUNT|BIND",
		}},
		{name: "v1 in a user namespace falls back to binds", host: v1Host(), ns: true, userns: true,
			fail: eperm("mount cgroup "), want: []string{
				"mount tmpfs {root}/sys/fs/cgroup tmpfs NOSUID|NODEV|NOEXEC mode=755",
				"mount cgroup {root}/sys/fs/cgroup/cpu,cpuacct cgroup " + sub + " cpu,cpuacct = operation not permitted",
				"mount /sys/fs/cgroup/cpu,cpuacct/c1 {root}/sys/fs/cgroup/cpu,cpuacct - BIND|REC",
				"mount - {root}/sys/fs/cgroup/cpu,cpuacct - " + sub + "|REMOUNT|BIND",
				"mount cgroup {root}/sys/fs/cgroup/systemd cgroup " + sub + " name=systemd = operation not permitted",
				"mount /sys/fs/cgroup/systemd/c1 {root}/sys/fs/cgroup/systemd - BIND|REC",
				"mount - {root}/sys/fs/cgroup/systemd - " + sub + "|REMOUNT|BIND",
				"mount - {root}/sys/fs/cgroup - " + sub + "|REMOUNT|BIND",
			}},
		{name: "v2", host: &cgroupHost{unified: true, v2Source: "/sys/fs/cgroup/c1"}, ns: true, want: []string{
			"mount cgroup2 {root}/sys/fs/cgroup cgroup2 " + sub,
		}},
		{name: "v2 refused binds our cgroup", host: &cgroupHost{unified: true, v2Source: "/sys/fs/cgroup/c1"},
			userns: true, fail: eperm("mount cgroup2 "), want: []string{
				"mount cgroup2 {root}/sys/fs/cgroup cgroup2 " + sub + " = operation not permitted",
				"mount /sys/fs/cgroup/c1 {root}/sys/fs/cgroup - BIND|REC",
				"mount - {root}/sys/fs/cgroup - " + sub + "|REMOUNT|BIND",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{{Destination: "/sys/fs/cgroup", Type: "cgroup",
				Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "ro"}}}})
			if tt.ns {
				spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.CgroupNamespace}}
			}
			f, _, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
				f.cgroup, f.fail, cfg.UserNS = tt.host, tt.fail, tt.userns
			})
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "calls", f.specMounts(), tt.want)
		})
	}
}

func TestMountPointSwappedDuringMount(t *testing.T) {
	outside := t.TempDir()
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Source: "/", Options: []string{"rbind", "ro"}},
	}})
	f, _, err := prepareWith(t, spec, func(cfg *Config, f *fakeSys) {
		f.fail = func(line string) error {
			if strings.HasPrefix(line, "mount / {root}/data ") {
				// An attacker with access to the rootfs swaps the mount
				// point for a symlink to the host right at the mount.
				dir := filepath.Join(cfg.Rootfs, "data")
				must(t, os.Rename(dir, dir+".old"))
				must(t, os.Symlink(outside, dir))
			}
			return nil
		}
	})
	if err == nil || !strings.Contains(err.Error(), "replaced after mounting") {
		t.Fatalf("err = %v", err)
	}
	for _, c := range f.calls {
		if strings.Contains(c, " "+outside) {
			t.Errorf("call reached outside the rootfs: %s", c)
		}
	}
	// The mount itself went to the directory held open, not the symlink.
	diffLines(t, "calls", f.specMounts(), []string{"mount / {root}/data - BIND|REC"})
}

func TestDevicesThroughDanglingDevSymlink(t *testing.T) {
	f, cfg, err := prepareWith(t, &specs.Spec{}, func(cfg *Config, _ *fakeSys) {
		must(t, os.Symlink("/nonexistent/devdir", filepath.Join(cfg.Rootfs, "dev")))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.only("mknod {root}/nonexistent/devdir/null "); len(got) != 1 {
		t.Errorf("mknod calls %q", f.only("mknod"))
	}
	if _, err := os.Lstat(filepath.Join(cfg.Rootfs, "nonexistent/devdir/ptmx")); err != nil {
		t.Errorf("ptmx: %v", err)
	}
}

// A tmpfs without mode= takes the mode of the directory it covers, special
// bits included; one with mode=, or on a mount point made for it, does not.
func TestTmpfsKeepsMountPointMode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    os.FileMode // of the existing directory; 0: none
		options []string
		want    string
	}{
		{name: "existing 0710", mode: 0o710, options: nil, want: "mode=0710"},
		{name: "existing with special bits", mode: 0o777 | os.ModeSetuid | os.ModeSetgid | os.ModeSticky, options: []string{"noexec", "size=1m"}, want: "mode=7777,size=1m"},
		{name: "mode given", mode: 0o710, options: []string{"mode=0410"}, want: "mode=0410"},
		{name: "made by the runtime", options: []string{"size=1m"}, want: "size=1m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{{Destination: "/tmp/test", Type: "tmpfs", Source: "tmpfs", Options: tc.options}}})
			f, _, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) {
				if tc.mode == 0 {
					return
				}
				dir := filepath.Join(cfg.Rootfs, "tmp/test")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				// chmod, not the umask-filtered mkdir mode.
				if err := os.Chmod(dir, tc.mode); err != nil {
					t.Fatal(err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			got := f.specMounts()
			if len(got) != 1 || !strings.HasPrefix(got[0], "mount tmpfs {root}/tmp/test tmpfs ") {
				t.Fatalf("calls %q, want one tmpfs mount", got)
			}
			fields := strings.Fields(got[0])
			data := ""
			if len(fields) > 5 {
				data = fields[5]
			}
			if data != tc.want {
				t.Fatalf("tmpfs data %q, want %q (call %q)", data, tc.want, got[0])
			}
		})
	}
}
