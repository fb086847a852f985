package seccomp

import (
	"runtime"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// runStub interprets the stub alone for one (arch, nr): "enosys", or
// "program" when it hands the syscall to libseccomp's program, which
// follows it. It knows the instructions the stub uses, and checks that
// every jump stays inside the stub or lands exactly on the program.
func runStub(t *testing.T, stub []unix.SockFilter, arch, nr uint32) string {
	t.Helper()
	var acc uint32
	for pc := 0; pc < len(stub); pc++ {
		ins := stub[pc]
		jump := func(off uint32) {
			pc += int(off)
			if pc >= len(stub) {
				t.Fatalf("jump past the stub to %d (program at %d)", pc+1, len(stub))
			}
		}
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = map[uint32]uint32{dataNr: nr, dataArch: arch}[ins.K]
		case unix.BPF_JMP | unix.BPF_JA:
			if pc+int(ins.K)+1 == len(stub) {
				return "program"
			}
			jump(ins.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			cond := map[uint16]bool{
				unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K: acc == ins.K,
				unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K: acc > ins.K,
				unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K: acc >= ins.K,
			}[ins.Code]
			off := uint32(ins.Jf)
			if cond {
				off = uint32(ins.Jt)
			}
			if pc+int(off)+1 == len(stub) {
				return "program"
			}
			jump(off)
		case unix.BPF_RET | unix.BPF_K:
			if ins.K != unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS) {
				t.Fatalf("stub returns %#x", ins.K)
			}
			return "enosys"
		default:
			t.Fatalf("instruction %d: unexpected code %#x", pc, ins.Code)
		}
	}
	return "program"
}

func TestEnosysStub(t *testing.T) {
	x86_64 := stubArch{audit: unix.AUDIT_ARCH_X86_64, shareX32Bit: true, last: 450, hasLast: true, x32: x32SyscallBit | 440, hasX32: true}
	i386 := stubArch{audit: unix.AUDIT_ARCH_I386, last: 460, hasLast: true}
	amd64Only := x86_64
	amd64Only.hasX32 = false
	tests := []struct {
		name   string
		arches []stubArch
		arch   uint32
		nr     uint32
		want   string
	}{
		{"amd64 known", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_X86_64, 1, "program"},
		{"amd64 the highest named", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_X86_64, 450, "program"},
		{"amd64 above", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_X86_64, 451, "enosys"},
		{"amd64 -1 (no syscall)", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_X86_64, 0xffffffff, "enosys"},
		{"x32 known", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_X86_64, x32SyscallBit | 440, "program"},
		{"x32 above", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_X86_64, x32SyscallBit | 441, "enosys"},
		{"x32 not in the filter: libseccomp's answer", []stubArch{amd64Only}, unix.AUDIT_ARCH_X86_64, x32SyscallBit | 1000, "program"},
		{"i386 uses its own threshold", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_I386, 455, "program"},
		{"i386 above", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_I386, 461, "enosys"},
		{"an arch not in the filter", []stubArch{x86_64, i386}, unix.AUDIT_ARCH_AARCH64, 5000, "program"},
		{"an arch the profile names nothing for", []stubArch{{audit: unix.AUDIT_ARCH_I386}}, unix.AUDIT_ARCH_I386, 5000, "program"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub, err := enosysStub(tt.arches)
			if err != nil {
				t.Fatal(err)
			}
			if got := runStub(t, stub, tt.arch, tt.nr); got != tt.want {
				t.Errorf("arch %#x nr %#x: %s, want %s", tt.arch, tt.nr, got, tt.want)
			}
		})
	}
}

func TestNeedsStub(t *testing.T) {
	enosys, eperm := uint(unix.ENOSYS), uint(unix.EPERM)
	for _, tt := range []struct {
		s    specs.LinuxSeccomp
		want bool
	}{
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, true},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm}, true},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &enosys}, false},
		{specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}, true},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, false},
		{specs.LinuxSeccomp{DefaultAction: specs.ActLog}, false},
	} {
		if got := needsStub(&tt.s); got != tt.want {
			t.Errorf("default %s errno %v: stub %v, want %v", tt.s.DefaultAction, tt.s.DefaultErrnoRet, got, tt.want)
		}
	}
}

// TestLoadUnknownSyscallENOSYS loads Docker's profile (default EPERM) in a
// child: a syscall number above everything the profile names gets ENOSYS,
// so a C library falls back as it does on an older kernel, while a known
// syscall that no rule allows still gets EPERM.
func TestLoadUnknownSyscallENOSYS(t *testing.T) {
	needRoot(t)
	p, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	const unknown = 1000 // above every syscall of every arch's table today
	ps := []probe{
		{Name: "syscall", Args: []uint64{unknown}},
		{Name: "unshare", Args: []uint64{0}},
		{Name: "getppid"},
	}
	want := []syscall.Errno{unix.ENOSYS, unix.EPERM, 0}
	if runtime.GOARCH == "amd64" {
		// x32's numbers reach the filter under AUDIT_ARCH_X86_64 too.
		x32Unshare, err := libseccomp.GetSyscallFromNameByArch("unshare", libseccomp.ArchX32)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, probe{Name: "syscall", Args: []uint64{x32SyscallBit | unknown}},
			probe{Name: "syscall", Args: []uint64{uint64(x32Unshare) | x32SyscallBit}})
		want = append(want, unix.ENOSYS, unix.EPERM)
	}
	res := runChild(t, childReq{Profile: p, Probes: ps}).mustResults(t, len(ps))
	for i, w := range want {
		if res[i].Errno != w {
			t.Errorf("%s %v: errno %v (%d), want %v", ps[i].Name, ps[i].Args, res[i].Errno, res[i].Errno, w)
		}
	}
}
