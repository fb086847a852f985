package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berthrt/berth/libcontainer/specdefault"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The real test re-runs the test binary as a "container init" in fresh
// namespaces (TestMain dispatches on childEnv), so the mounts it makes die
// with its mount namespace and never touch the host's.
const (
	childEnv       = "BERTH_ROOTFS_TEST_CHILD" // pivot, nopivot or userns
	childRootfsEnv = "BERTH_ROOTFS_TEST_ROOTFS"
	childVictimEnv = "BERTH_ROOTFS_TEST_VICTIM"
)

// realMode is one way of running the container.
type realMode struct {
	name     string
	noPivot  bool
	userns   bool
	cgroupns bool
	// fakeV2 replaces the child's /sys/fs/cgroup with a cgroup2 mount
	// before Prepare, to exercise the pure cgroup v2 code on a v1 host.
	fakeV2 bool
}

var realModes = []realMode{
	{name: "pivot", cgroupns: true},
	{name: "nopivot", noPivot: true, cgroupns: true},
	{name: "userns", userns: true, cgroupns: true},
	{name: "userns-no-cgroupns", userns: true},
	{name: "cgroup2", cgroupns: true, fakeV2: true},
	{name: "cgroup2-userns-no-cgroupns", userns: true, fakeV2: true},
}

func modeNamed(name string) realMode {
	for _, m := range realModes {
		if m.name == name {
			return m
		}
	}
	panic("unknown mode " + name)
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(modeNamed(mode)))
	}
	os.Exit(m.Run())
}

func TestRealRootfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs a static /bin/busybox (busybox-static)")
	}
	for _, mode := range realModes {
		t.Run(mode.name, func(t *testing.T) { runContainer(t, mode) })
	}
}

func runContainer(t *testing.T, mode realMode) {
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	victim := t.TempDir() // a host directory the image points a symlink at
	makeBusyboxRootfs(t, rootfs, victim)
	if err := os.WriteFile(filepath.Join(bundle, "hostname"), []byte("from-the-bundle\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+mode.name, childRootfsEnv+"="+rootfs, childVictimEnv+"="+victim)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		Pdeathsig:  unix.SIGKILL,
	}
	if mode.cgroupns {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWCGROUP
	}
	if mode.userns {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	}
	err := cmd.Run()
	t.Logf("container output:\n%s", out.String())
	if err != nil {
		t.Fatalf("container: %v", err)
	}
	// From the host, afterwards: nothing landed outside the rootfs and no
	// mount stayed behind.
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Errorf("host directory %s was written to: %v", victim, entries)
	}
	if _, err := os.Stat(filepath.Join(rootfs, victim, "x")); err != nil {
		t.Errorf("escape mount point not created inside the rootfs: %v", err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(bundle)) {
		t.Errorf("mounts leaked into the host namespace:\n%s", mi)
	}
}

func makeBusyboxRootfs(t *testing.T, rootfs, victim string) {
	t.Helper()
	for _, d := range []string{"bin", "opt/sub", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in, err := os.Open("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(rootfs, "bin/busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	must(t, os.Symlink("busybox", filepath.Join(rootfs, "bin/sh")))
	must(t, os.WriteFile(filepath.Join(rootfs, "opt/sub/hello"), []byte("hello\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(rootfs, "etc/hostname"), nil, 0o644))
	must(t, os.Symlink(victim, filepath.Join(rootfs, "evil")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// childSpec is the default spec plus mounts that exercise the escapes,
// binds and copy-up.
func childSpec(mode realMode) *specs.Spec {
	spec := specdefault.Spec()
	if !mode.cgroupns {
		spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
			return ns.Type == specs.CgroupNamespace
		})
	}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/evil/x", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/../../escape2", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: "hostname", Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/opt", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "mode=755"}},
	)
	// /proc/kcore of the default list is missing on some kernels.
	spec.Linux.MaskedPaths = append(spec.Linux.MaskedPaths, "/proc/cmdline")
	if !mode.userns { // bound from the host in a user namespace, where there is none
		spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 7}}
	}
	return spec
}

// runChild is the container init: build the rootfs, enter it, check it.
func runChild(mode realMode) int {
	runtime.LockOSThread()
	rootfs := os.Getenv(childRootfsEnv)
	if mode.fakeV2 {
		if err := fakeCgroupV2(); err != nil {
			fmt.Printf("FAIL set up cgroup v2: %v\n", err)
			return 1
		}
	}
	var st unix.Statfs_t
	_ = unix.Statfs("/sys/fs/cgroup", &st)
	cgroupV2 := st.Type == unix.CGROUP2_SUPER_MAGIC
	cfg := &Config{
		Rootfs:    rootfs,
		BundleDir: filepath.Dir(rootfs),
		Spec:      childSpec(mode),
		NoPivot:   mode.noPivot,
		UserNS:    mode.userns,
	}
	for _, step := range []struct {
		name string
		fn   func(*Config) error
	}{{"Prepare", Prepare}, {"Enter", Enter}, {"Finish", Finish}} {
		if err := step.fn(cfg); err != nil {
			fmt.Printf("FAIL %s: %v\n", step.name, err)
			return 1
		}
	}
	failed := 0
	for _, c := range childChecks(os.Getenv(childVictimEnv), cgroupV2, mode) {
		if err := c.fn(); err != nil {
			fmt.Printf("FAIL %s: %v\n", c.name, err)
			failed++
		} else {
			fmt.Printf("ok   %s\n", c.name)
		}
	}
	if failed > 0 || os.Getenv("BERTH_ROOTFS_TEST_DUMP") != "" {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		fmt.Printf("mountinfo:\n%s", mi)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// fakeCgroupV2 makes this mount namespace look like a pure cgroup v2 host.
func fakeCgroupV2() error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nil // it is one
	}
	// Stack the hybrid host's cgroup2 over the v1 tree: the v1 mounts are
	// locked in a user namespace, so they cannot be unmounted.
	return unix.Mount("/sys/fs/cgroup/unified", "/sys/fs/cgroup", "", unix.MS_BIND, "")
}

type check struct {
	name string
	fn   func() error
}

func childChecks(victim string, cgroupV2 bool, mode realMode) []check {
	checks := []check{
		{"/proc is a procfs", func() error { return fsType("/proc", unix.PROC_SUPER_MAGIC) }},
		{"/proc/self is us", func() error { return wantLink("/proc/self", "1") }},
		{"/dev is a tmpfs", func() error { return fsType("/dev", unix.TMPFS_MAGIC) }},
		{"/dev/pts is a devpts", func() error { return fsType("/dev/pts", unix.DEVPTS_SUPER_MAGIC) }},
		{"/dev/mqueue is an mqueue", func() error { return fsType("/dev/mqueue", mqueueMagic) }},
		{"/sys is a sysfs", func() error { return fsType("/sys", unix.SYSFS_MAGIC) }},
		{"/dev/null is the null device", func() error { return charDev("/dev/null", 1, 3) }},
		{"/dev/tty is a char device", func() error { return charDev("/dev/tty", 5, 0) }},
		{"/dev/zero has mode 0666", func() error { return wantPerm("/dev/zero", 0o666) }},
		{"/dev/ptmx -> pts/ptmx", func() error { return wantLink("/dev/ptmx", "pts/ptmx") }},
		{"/dev/fd -> /proc/self/fd", func() error { return wantLink("/dev/fd", "/proc/self/fd") }},
		{"/dev/stderr -> /proc/self/fd/2", func() error { return wantLink("/dev/stderr", "/proc/self/fd/2") }},
		{"masked file is /dev/null", func() error { return charDev("/proc/cmdline", 1, 3) }},
		{"masked file reads empty", func() error { return readsEmpty("/proc/cmdline") }},
		{"masked dir is an empty read-only tmpfs", maskedDir},
		{"readonly path refuses writes", func() error { return wantErrno(writeFile("/proc/sys/kernel/hostname"), unix.EROFS) }},
		{"root is read-only", func() error { return wantErrno(writeFile("/newfile"), unix.EROFS) }},
		{"symlinked destination landed inside", func() error { return fsType(filepath.Join(victim, "x"), unix.TMPFS_MAGIC) }},
		{"dot-dot destination landed inside", func() error { return fsType("/escape2", unix.TMPFS_MAGIC) }},
		{"relative bind source from the bundle, read-only", bindFromBundle},
		{"tmpcopyup copied the image's files", copiedUp},
		{"cgroups are mounted read-only", func() error { return cgroupsMounted(cgroupV2) }},
		{"busybox runs in the rootfs", busyboxRuns},
	}
	if !mode.userns {
		checks = append(checks, check{"linux.devices created", func() error { return charDev("/dev/mydev", 1, 7) }})
	}
	return checks
}

// mqueueMagic is MQUEUE_MAGIC from <linux/magic.h>.
const mqueueMagic = 0x19800202

func fsType(path string, magic int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return err
	}
	if st.Type != magic {
		return fmt.Errorf("%s: file system %#x, want %#x", path, st.Type, magic)
	}
	return nil
}

func charDev(path string, major, minor uint32) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != minor {
		return fmt.Errorf("%s: mode %#o rdev %d:%d", path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return nil
}

func wantPerm(path string, want os.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != want {
		return fmt.Errorf("%s: %v, %v; want mode %#o", path, fi, err, want)
	}
	return nil
}

func wantLink(path, want string) error {
	got, err := os.Readlink(path)
	if err != nil || got != want {
		return fmt.Errorf("%s -> %q (%v), want %q", path, got, err, want)
	}
	return nil
}

func readsEmpty(path string) error {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 0 {
		return fmt.Errorf("%s: read %d bytes, %v", path, len(b), err)
	}
	return nil
}

func writeFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err == nil {
		f.Close()
	}
	return err
}

func wantErrno(err error, want unix.Errno) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("got %v, want %v", err, want)
	}
	return nil
}

func maskedDir() error {
	if err := fsType("/sys/firmware", unix.TMPFS_MAGIC); err != nil {
		return err
	}
	if entries, err := os.ReadDir("/sys/firmware"); err != nil || len(entries) != 0 {
		return fmt.Errorf("entries %v, %v", entries, err)
	}
	return wantErrno(writeFile("/sys/firmware/x"), unix.EROFS)
}

func bindFromBundle() error {
	b, err := os.ReadFile("/etc/hostname")
	if err != nil || string(b) != "from-the-bundle\n" {
		return fmt.Errorf("content %q, %v", b, err)
	}
	return wantErrno(writeFile("/etc/hostname"), unix.EROFS)
}

func copiedUp() error {
	if err := fsType("/opt", unix.TMPFS_MAGIC); err != nil {
		return err
	}
	b, err := os.ReadFile("/opt/sub/hello")
	if err != nil || string(b) != "hello\n" {
		return fmt.Errorf("content %q, %v", b, err)
	}
	return nil
}

func cgroupsMounted(v2 bool) error {
	if v2 {
		if err := fsType("/sys/fs/cgroup", unix.CGROUP2_SUPER_MAGIC); err != nil {
			return err
		}
		return wantErrno(os.Mkdir("/sys/fs/cgroup/x", 0o755), unix.EROFS)
	}
	if err := fsType("/sys/fs/cgroup/memory", unix.CGROUP_SUPER_MAGIC); err != nil {
		return err
	}
	if err := wantErrno(os.Mkdir("/sys/fs/cgroup/memory/x", 0o755), unix.EROFS); err != nil {
		return err
	}
	return wantErrno(os.Mkdir("/sys/fs/cgroup/x", 0o755), unix.EROFS)
}

func busyboxRuns() error {
	out, err := exec.Command("/bin/sh", "-c", "test -c /dev/null && test -L /dev/ptmx && cat /opt/sub/hello").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		return fmt.Errorf("output %q, %v", out, err)
	}
	return nil
}
