package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// finishWith runs Finish against a fake system, with a directory standing
// in for the container's "/".
func finishWith(t *testing.T, linux *specs.Linux, readonly bool, setup func(root string, f *fakeSys)) (*fakeSys, string, error) {
	t.Helper()
	root := tmpRoot(t)
	for _, d := range []string{"dev", "proc/sys", "proc/bus", "sys/firmware", "escape"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "dev/null"), nil, 0o666)
	os.WriteFile(filepath.Join(root, "proc/kcore"), nil, 0o400)
	f := newFakeSys(t, root)
	if setup != nil {
		setup(root, f)
	}
	cfg := &Config{Rootfs: "/x", Spec: &specs.Spec{Root: &specs.Root{Readonly: readonly}, Linux: linux}}
	return f, root, finish(cfg, f.system(), root)
}

// remountFlags is what a read-only remount of a directory of the test's
// file system asks for: its current flags plus MS_RDONLY.
func remountFlags(t *testing.T, dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return flagString(statfsToMountFlags(st.Flags) | unix.MS_RDONLY | unix.MS_REMOUNT | unix.MS_BIND)
}

func TestFinish(t *testing.T) {
	linux := &specs.Linux{
		ReadonlyPaths:     []string{"/proc/sys", "/proc/missing", "/proc/bus"},
		MaskedPaths:       []string{"/proc/kcore", "/sys/firmware", "/proc/nothere"},
		RootfsPropagation: "rslave",
	}
	f, root, err := finishWith(t, linux, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	ro := remountFlags(t, root)
	diffLines(t, "calls", f.calls, []string{
		"bind-over {root}/proc/sys {root}/proc/sys BIND|REC",
		"make-readonly {root}/proc/sys",
		"bind-over {root}/proc/bus {root}/proc/bus BIND|REC",
		"make-readonly {root}/proc/bus",
		"bind-over {root}/dev/null {root}/proc/kcore BIND",
		"mount-over tmpfs {root}/sys/firmware RDONLY|NOSUID|NODEV|NOEXEC",
		"mount - {root} - " + ro,
		"mount - {root} - REC|SLAVE",
	})
}

func TestFinishPathsStayInside(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), nil, 0o644)
	linux := &specs.Linux{MaskedPaths: []string{"/link/secret", "/../../" + outside}, ReadonlyPaths: []string{"/link"}}
	f, _, err := finishWith(t, linux, false, func(root string, _ *fakeSys) {
		os.Symlink(outside, filepath.Join(root, "link"))
		// The same names inside the root, where the paths must land.
		os.MkdirAll(filepath.Join(root, outside), 0o755)
		os.WriteFile(filepath.Join(root, outside, "secret"), nil, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	in := "{root}" + outside
	diffLines(t, "calls", f.calls, []string{
		"bind-over " + in + " " + in + " BIND|REC",
		"make-readonly " + in,
		"bind-over {root}/dev/null " + in + "/secret BIND",
		"mount-over tmpfs " + in + " RDONLY|NOSUID|NODEV|NOEXEC",
	})
}

func TestFinishRefusesFakeDevNull(t *testing.T) {
	linux := &specs.Linux{MaskedPaths: []string{"/proc/kcore"}}
	_, _, err := finishWith(t, linux, false, func(_ string, f *fakeSys) { f.devNullOK = false })
	if err == nil || !strings.Contains(err.Error(), "/dev/null is not the null device") {
		t.Fatalf("err = %v", err)
	}
}

func TestFinishNothingToDo(t *testing.T) {
	f, _, err := finishWith(t, nil, false, nil)
	if err != nil || len(f.calls) != 0 {
		t.Fatalf("calls %q, err %v", f.calls, err)
	}
}

func TestFinishErrorsNameThePath(t *testing.T) {
	linux := &specs.Linux{ReadonlyPaths: []string{"/proc/sys"}}
	_, _, err := finishWith(t, linux, false, func(_ string, f *fakeSys) {
		f.fail = func(string) error { return unix.EACCES }
	})
	if err == nil || !strings.Contains(err.Error(), "readonly path /proc/sys") {
		t.Fatalf("err = %v", err)
	}
}

func TestUniquePaths(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{in: nil, want: []string{}},
		{in: []string{"/a", "/b"}, want: []string{"/a", "/b"}},
		{in: []string{"/testdir", "/proc/kcore", "/testdir"}, want: []string{"/testdir", "/proc/kcore"}},
		{in: []string{"/testdir/", "/testdir", "//testdir"}, want: []string{"/testdir/"}},
	} {
		if got := uniquePaths(tc.in); strings.Join(got, ",") != strings.Join(tc.want, ",") || len(got) != len(tc.want) {
			t.Errorf("uniquePaths(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A path listed twice is masked (or made read-only) once.
func TestFinishDuplicatePathsOnce(t *testing.T) {
	linux := &specs.Linux{
		ReadonlyPaths: []string{"/proc/sys", "/proc/sys/"},
		MaskedPaths:   []string{"/proc/kcore", "/sys/firmware", "/proc/kcore", "/sys/firmware"},
	}
	f, _, err := finishWith(t, linux, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.calls, []string{
		"bind-over {root}/proc/sys {root}/proc/sys BIND|REC",
		"make-readonly {root}/proc/sys",
		"bind-over {root}/dev/null {root}/proc/kcore BIND",
		"mount-over tmpfs {root}/sys/firmware RDONLY|NOSUID|NODEV|NOEXEC",
	})
}

// The masked directories share one read-only tmpfs: the first gets it, the
// others a bind mount of it.
func TestFinishMaskedDirsShareTmpfs(t *testing.T) {
	linux := &specs.Linux{MaskedPaths: []string{"/sys/firmware", "/proc/kcore", "/proc/bus", "/proc/sys"}}
	f, _, err := finishWith(t, linux, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "calls", f.calls, []string{
		"mount-over tmpfs {root}/sys/firmware RDONLY|NOSUID|NODEV|NOEXEC",
		"bind-over {root}/dev/null {root}/proc/kcore BIND",
		"bind-over {root}/sys/firmware {root}/proc/bus BIND",
		"bind-over {root}/sys/firmware {root}/proc/sys BIND",
	})
}

// A bind of the shared tmpfs that fails falls back to a tmpfs per
// directory, for the rest too.
func TestFinishMaskedDirsBindFails(t *testing.T) {
	linux := &specs.Linux{MaskedPaths: []string{"/sys/firmware", "/proc/bus", "/proc/sys"}}
	f, _, err := finishWith(t, linux, false, func(_ string, f *fakeSys) {
		f.fail = func(line string) error {
			if strings.HasPrefix(line, "bind-over {root}/sys/firmware ") {
				return unix.EPERM
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	const tmpfs = " RDONLY|NOSUID|NODEV|NOEXEC"
	diffLines(t, "calls", f.calls, []string{
		"mount-over tmpfs {root}/sys/firmware" + tmpfs,
		"bind-over {root}/sys/firmware {root}/proc/bus BIND = operation not permitted",
		"mount-over tmpfs {root}/proc/bus" + tmpfs,
		"mount-over tmpfs {root}/proc/sys" + tmpfs,
	})
}
