package seccomp

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The ENOSYS stub: a few instructions put before libseccomp's program so
// that a syscall newer than the profile fails with ENOSYS instead of the
// default action, as runc's filter does. C libraries and language runtimes
// probe new syscalls and fall back to old ones on ENOSYS only (glibc's
// clone3 -> clone, statx -> fstatat, faccessat2, close_range...): a profile
// written before a syscall existed must make it look absent, not denied.
//
// "Newer than the profile" is, per architecture, a number above the
// highest syscall the profile names (whatever the rule's action) that
// libseccomp can resolve there: syscall numbers only grow, so everything
// above was unknown to whoever wrote the profile. Numbers at or below it
// get the profile's answer, so a known syscall that no rule allows still
// gets the default action.
//
// runc builds the same idea (libcontainer/seccomp/patchbpf); this is
// written from the kernel's seccomp_data layout and cBPF rules: the stub
// only jumps forward, and falls through to libseccomp's program, which
// checks the architecture again and does everything else.

// seccomp_data offsets: int nr; __u32 arch; ...
const (
	dataNr   = 0
	dataArch = 4
)

// x32SyscallBit marks the x32 ABI's syscalls, which share AUDIT_ARCH_X86_64
// with amd64's (see x86's __X32_SYSCALL_BIT).
const x32SyscallBit = 0x40000000

// auditArchs maps libseccomp's arches to the AUDIT_ARCH_* value the kernel
// puts in seccomp_data.arch. An arch missing here gets no stub.
var auditArchs = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchX86:         unix.AUDIT_ARCH_I386,
	libseccomp.ArchAMD64:       unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX32:         unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchARM:         unix.AUDIT_ARCH_ARM,
	libseccomp.ArchARM64:       unix.AUDIT_ARCH_AARCH64,
	libseccomp.ArchMIPS:        unix.AUDIT_ARCH_MIPS,
	libseccomp.ArchMIPS64:      unix.AUDIT_ARCH_MIPS64,
	libseccomp.ArchMIPS64N32:   unix.AUDIT_ARCH_MIPS64N32,
	libseccomp.ArchMIPSEL:      unix.AUDIT_ARCH_MIPSEL,
	libseccomp.ArchMIPSEL64:    unix.AUDIT_ARCH_MIPSEL64,
	libseccomp.ArchMIPSEL64N32: unix.AUDIT_ARCH_MIPSEL64N32,
	libseccomp.ArchPPC:         unix.AUDIT_ARCH_PPC,
	libseccomp.ArchPPC64:       unix.AUDIT_ARCH_PPC64,
	libseccomp.ArchPPC64LE:     unix.AUDIT_ARCH_PPC64LE,
	libseccomp.ArchS390:        unix.AUDIT_ARCH_S390,
	libseccomp.ArchS390X:       unix.AUDIT_ARCH_S390X,
	libseccomp.ArchPARISC:      unix.AUDIT_ARCH_PARISC,
	libseccomp.ArchPARISC64:    unix.AUDIT_ARCH_PARISC64,
	libseccomp.ArchRISCV64:     unix.AUDIT_ARCH_RISCV64,
	libseccomp.ArchLOONGARCH64: unix.AUDIT_ARCH_LOONGARCH64,
	libseccomp.ArchM68K:        unix.AUDIT_ARCH_M68K,
}

// stubArch is one AUDIT_ARCH value's thresholds: the highest syscall the
// profile names there, for the plain numbers and (x86_64 only) for the
// x32 ones; the has fields say whether there is one.
type stubArch struct {
	audit       uint32
	last, x32   uint32
	hasLast     bool
	hasX32      bool
	shareX32Bit bool // AUDIT_ARCH_X86_64: split on x32SyscallBit
}

// needsStub says whether a profile's default action is one a new syscall
// should be spared: not when the default lets it run (a deny list), nor
// when the default already answers ENOSYS.
func needsStub(s *specs.LinuxSeccomp) bool {
	switch s.DefaultAction {
	case specs.ActAllow, specs.ActLog:
		return false
	case specs.ActErrno:
		return s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != uint(unix.ENOSYS)
	}
	return true
}

// withEnosysStub returns prog with the stub for profile s in front.
func withEnosysStub(p *plan, s *specs.LinuxSeccomp, prog []unix.SockFilter) ([]unix.SockFilter, error) {
	var names []string
	for _, call := range s.Syscalls {
		names = append(names, call.Names...)
	}
	arches, err := stubArches(p, names)
	if err != nil {
		return nil, err
	}
	stub, err := enosysStub(arches)
	if err != nil {
		return nil, err
	}
	return append(stub, prog...), nil
}

// stubArches works out the thresholds of every arch in the filter (the
// native one and the profile's) from every name the profile lists.
func stubArches(p *plan, names []string) ([]stubArch, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	arches := []libseccomp.ScmpArch{native}
	for _, a := range p.arches {
		if !slices.Contains(arches, a.scmp) {
			arches = append(arches, a.scmp)
		}
	}
	var out []stubArch
	find := func(audit uint32) *stubArch {
		for i := range out {
			if out[i].audit == audit {
				return &out[i]
			}
		}
		out = append(out, stubArch{audit: audit, shareX32Bit: audit == unix.AUDIT_ARCH_X86_64})
		return &out[len(out)-1]
	}
	for _, a := range arches {
		audit, ok := auditArchs[a]
		if !ok {
			continue
		}
		sa := find(audit)
		for _, name := range names {
			nr, err := libseccomp.GetSyscallFromNameByArch(name, a)
			if err != nil || nr < 0 { // unknown there, or a libseccomp pseudo-syscall
				continue
			}
			n := uint32(nr)
			switch {
			case a == libseccomp.ArchX32:
				n |= x32SyscallBit // libseccomp's x32 numbers may come without it
				if !sa.hasX32 || n > sa.x32 {
					sa.x32, sa.hasX32 = n, true
				}
			case !sa.hasLast || n > sa.last:
				sa.last, sa.hasLast = n, true
			}
		}
	}
	return out, nil
}

// jump targets of the stub's instructions
type target int

const (
	nextInsn  target = iota // fall through
	skipOne                 // the instruction after the next
	nextArch                // the next arch's check
	retEnosys               // return ENOSYS
	toProgram               // libseccomp's program
)

type stubInsn struct {
	code   uint16
	k      uint32
	jt, jf target
}

// enosysStub returns the instructions to put before libseccomp's program.
// Layout: one block per arch, then "ja +1", "ret ERRNO(ENOSYS)"; the
// program follows, so that an arch no block matches runs it unchanged.
func enosysStub(arches []stubArch) ([]unix.SockFilter, error) {
	var blocks [][]stubInsn
	for _, a := range arches {
		if b := archBlock(a); b != nil {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	n := 2
	for _, b := range blocks {
		n += len(b)
	}
	enosys, program := n-1, n
	out := make([]unix.SockFilter, 0, n)
	for _, b := range blocks {
		next := len(out) + len(b)
		for _, ins := range b {
			at := len(out)
			jt, err := jumpOffset(at, ins.jt, next, enosys, program)
			if err != nil {
				return nil, err
			}
			jf, err := jumpOffset(at, ins.jf, next, enosys, program)
			if err != nil {
				return nil, err
			}
			f := unix.SockFilter{Code: ins.code, K: ins.k}
			if ins.code == unix.BPF_JMP|unix.BPF_JA {
				f.K = uint32(jt) // an unconditional jump's offset is k
			} else {
				f.Jt, f.Jf = uint8(jt), uint8(jf)
			}
			out = append(out, f)
		}
	}
	out = append(out,
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: 1},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	return out, nil
}

// archBlock checks one AUDIT_ARCH value: "if arch matches, return ENOSYS
// for a number above its threshold, else run the program".
func archBlock(a stubArch) []stubInsn {
	if !a.hasLast && !a.hasX32 {
		return nil
	}
	ldArch := stubInsn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: dataArch}
	isArch := stubInsn{code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, k: a.audit, jt: nextInsn, jf: nextArch}
	ldNr := stubInsn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: dataNr}
	above := func(ok bool, last uint32) stubInsn {
		if !ok { // the profile names none of these: leave them to the program
			return stubInsn{code: unix.BPF_JMP | unix.BPF_JA, jt: toProgram}
		}
		return stubInsn{code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, k: last, jt: retEnosys, jf: toProgram}
	}
	if !a.shareX32Bit {
		return []stubInsn{ldArch, isArch, ldNr, above(a.hasLast, a.last)}
	}
	// x86_64: numbers with the x32 bit are checked against x32's threshold.
	isX32 := stubInsn{code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, k: x32SyscallBit, jt: skipOne, jf: nextInsn}
	return []stubInsn{ldArch, isArch, ldNr, isX32, above(a.hasLast, a.last), above(a.hasX32, a.x32)}
}

// jumpOffset resolves a target for the instruction at index at. cBPF
// jumps are forward only, and a conditional one reaches 255 instructions.
func jumpOffset(at int, t target, next, enosys, program int) (int, error) {
	var to int
	switch t {
	case nextInsn:
		return 0, nil
	case skipOne:
		return 1, nil
	case nextArch:
		to = next
	case retEnosys:
		to = enosys
	case toProgram:
		to = program
	}
	off := to - at - 1
	if off < 0 || off > 255 {
		return 0, fmt.Errorf("ENOSYS stub: jump of %d instructions does not fit cBPF", off)
	}
	return off, nil
}
