package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestFinishFindsProcfsAgain: the masks and read-only paths inside /proc
// go on the procfs mounted for the container, found again at /proc, or
// Finish fails; what something sharing the rootfs put at /proc instead
// never gets them.
func TestFinishFindsProcfsAgain(t *testing.T) {
	recorded := func(root string, _ *fakeSys, cfg *Config) {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, "proc"), &st); err != nil {
			t.Fatal(err)
		}
		cfg.procMounts = []procMount{{dest: "/proc", dev: st.Dev, ino: st.Ino}}
	}
	// swap renames the procfs away and puts a fake in its place: a
	// directory, or a symlink back to the real one.
	swap := func(link bool) func(string, *fakeSys, *Config) {
		return func(root string, f *fakeSys, cfg *Config) {
			recorded(root, f, cfg)
			os.Rename(filepath.Join(root, "proc"), filepath.Join(root, "realproc"))
			f.procfsFiles = map[string]bool{"{root}/realproc": true}
			if link {
				os.Symlink("/realproc", filepath.Join(root, "proc"))
			} else {
				os.MkdirAll(filepath.Join(root, "proc/sys"), 0o755)
				os.WriteFile(filepath.Join(root, "proc/kcore"), nil, 0o400)
			}
		}
	}
	verifiedCalls := []string{
		"bind-over {root}/proc/sys {root}/proc/sys BIND|REC",
		"make-readonly {root}/proc/sys",
		"bind-over {root}/dev/null {root}/proc/kcore BIND",
	}
	for _, tc := range []struct {
		name    string
		masked  []string
		setup   func(root string, f *fakeSys, cfg *Config)
		wantErr string
	}{
		{name: "as mounted", setup: recorded},
		{name: "from the spec alone", setup: func(string, *fakeSys, *Config) {}},
		{name: "replaced by a directory", setup: swap(false), wantErr: "procfs at /proc: the mount point was replaced: it is no longer a procfs"},
		{name: "replaced by a symlink", setup: swap(true), wantErr: "procfs at /proc: the mount point was replaced by a link to /realproc"},
		{name: "another procfs", setup: func(root string, f *fakeSys, cfg *Config) {
			recorded(root, f, cfg)
			cfg.procMounts[0].ino++
		}, wantErr: "procfs at /proc: the mount point was replaced: it is not the procfs mounted for the container"},
		{name: "masked path through a symlink", masked: []string{"/link/kcore"}, setup: func(root string, f *fakeSys, _ *Config) {
			os.Symlink("/proc", filepath.Join(root, "link"))
			f.procfsFiles["{root}/proc/kcore"] = true
		}, wantErr: "masked path /link/kcore: it leads into a procfs other than through the procfs's mount point"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := finishProc(t, tc.masked, tc.setup)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, c := range f.calls {
					if strings.Contains(c, "kcore") {
						t.Fatalf("masked something before refusing: %q", f.calls)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, "calls", f.calls, verifiedCalls)
		})
	}
}

// finishProc runs Finish with a proc mount at /proc, whose directory the
// fake reports as a procfs until setup says otherwise.
func finishProc(t *testing.T, masked []string, setup func(root string, f *fakeSys, cfg *Config)) (*fakeSys, error) {
	t.Helper()
	root := tmpRoot(t)
	for _, d := range []string{"dev", "proc/sys"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "dev/null"), nil, 0o666)
	os.WriteFile(filepath.Join(root, "proc/kcore"), nil, 0o400)
	f := newFakeSys(t, root)
	f.procfsFiles = map[string]bool{"{root}/proc": true}
	if masked == nil {
		masked = []string{"/proc/kcore"}
	}
	cfg := &Config{Rootfs: "/x", Spec: &specs.Spec{
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux:  &specs.Linux{ReadonlyPaths: []string{"/proc/sys"}, MaskedPaths: masked},
	}}
	setup(root, f, cfg)
	return f, finish(cfg, f.system(), root)
}

// TestLateProc: with LateProc, Prepare leaves /proc to MountProc (only its
// mount point is made), which mounts it by fd with the spec's flags and
// options; a bind under /proc is refused there.
func TestLateProc(t *testing.T) {
	procMount := specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "hidepid=2"}}
	spec := mountsOnly(&specs.Spec{Mounts: []specs.Mount{
		procMount,
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
	}})
	f, cfg, err := prepareWith(t, spec, func(cfg *Config, _ *fakeSys) { cfg.LateProc = true })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.only("mount") {
		if strings.Contains(c, "/proc") {
			t.Errorf("Prepare mounted %q; with LateProc it is MountProc's", c)
		}
	}
	if fi, err := os.Stat(filepath.Join(cfg.Rootfs, "proc")); err != nil || !fi.IsDir() {
		t.Errorf("mount point /proc: %v, %v; want a directory made by Prepare", fi, err)
	}
	f.calls = nil
	f.procfsFiles = map[string]bool{"{root}/proc": true}
	if err := mountProc(cfg, f.system(), cfg.Rootfs); err != nil {
		t.Fatal(err)
	}
	diffLines(t, "MountProc", f.calls, []string{"mount-over proc {root}/proc NOSUID|NOEXEC hidepid=2"})

	cfg.Spec.Mounts = append(cfg.Spec.Mounts, specs.Mount{Destination: "/proc/uptime", Type: "bind", Source: "/proc/uptime", Options: []string{"bind"}})
	if err := mountProc(cfg, f.system(), cfg.Rootfs); err == nil || !strings.Contains(err.Error(), "takes only procfs mounts") {
		t.Errorf("bind under /proc after the root switch: %v, want a refusal", err)
	}
}
