package seccomp

import (
	"slices"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set: no CAP_SYS_ADMIN.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// allows reports whether some unconditional rule of p allows name.
func allows(p *specs.LinuxSeccomp, name string) bool {
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow && len(s.Args) == 0 && slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}

func TestDefaultProfile(t *testing.T) {
	plain, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := DefaultProfile(append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.DefaultAction != specs.ActErrno || plain.DefaultErrnoRet == nil || *plain.DefaultErrnoRet != uint(unix.EPERM) {
		t.Errorf("default action %s errno %v, want SCMP_ACT_ERRNO EPERM", plain.DefaultAction, plain.DefaultErrnoRet)
	}
	if want := nativeArches(); want != nil && !slices.Equal(plain.Architectures, want) {
		t.Errorf("architectures %v, want %v", plain.Architectures, want)
	}
	for _, name := range []string{"read", "write", "openat", "execve"} {
		if !allows(plain, name) {
			t.Errorf("%s not allowed", name)
		}
	}
	for _, name := range []string{"mount", "unshare", "setns"} {
		if allows(plain, name) {
			t.Errorf("%s allowed without CAP_SYS_ADMIN", name)
		}
		if !allows(admin, name) {
			t.Errorf("%s not allowed with CAP_SYS_ADMIN", name)
		}
	}
	for _, p := range []*specs.LinuxSeccomp{plain, admin} {
		f, err := Compile(p)
		if err != nil {
			t.Fatalf("Docker's profile does not compile: %v", err)
		}
		t.Logf("%d BPF instructions; skipped as unknown to this libseccomp: %v", len(f.prog), f.Skipped())
	}
}

// TestLoadDefaultProfile loads Docker's profile in a child: what it denies
// fails with EPERM (or the defaultErrnoRet set), the rest runs.
func TestLoadDefaultProfile(t *testing.T) {
	needRoot(t)
	const missing = "/nonexistent/berth-seccomp-test" // mount's target: ENOENT if it runs
	ok := syscall.Errno(0)
	tests := []struct {
		name     string
		caps     []string
		errnoRet *uint
		want     []syscall.Errno
	}{
		{"docker caps", dockerCaps, nil, []syscall.Errno{unix.EPERM, unix.EPERM, unix.EPERM, unix.EPERM, ok, ok, ok}},
		{"with CAP_SYS_ADMIN", append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN"), nil,
			[]syscall.Errno{ok, unix.EPERM, unix.EPERM, unix.ENOENT, ok, ok, ok}},
		{"defaultErrnoRet", dockerCaps, uintp(uint(unix.EXDEV)),
			[]syscall.Errno{unix.EXDEV, unix.EXDEV, unix.EXDEV, unix.EXDEV, ok, ok, ok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DefaultProfile(tt.caps)
			if err != nil {
				t.Fatal(err)
			}
			if tt.errnoRet != nil {
				p.DefaultErrnoRet = tt.errnoRet
			}
			ps := []probe{
				{Name: "unshare", Args: []uint64{0}},
				{Name: "keyctl", Args: []uint64{unix.KEYCTL_GET_KEYRING_ID, 0xfffffffd, 0}}, // session keyring
				{Name: "add_key"},
				{Name: "mount", Path: missing},
				{Name: "getppid"},
				{Name: "personality", Args: []uint64{0xffffffff}}, // a query: allowed
				{Name: "mkdir", Path: t.TempDir() + "/d"},
			}
			res := runChild(t, childReq{Profile: p, Probes: ps}).mustResults(t, len(ps))
			for i, w := range tt.want {
				if res[i].Errno != w {
					t.Errorf("%s: errno %v (%d), want %v", ps[i].Name, res[i].Errno, res[i].Errno, w)
				}
			}
		})
	}
}
