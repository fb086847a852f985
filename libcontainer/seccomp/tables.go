package seccomp

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The runtime spec's names, mapped to libseccomp and kernel values. They are
// tables rather than switches so that an error can list every valid name.

// maxErrno is the kernel's MAX_ERRNO: SECCOMP_RET_ERRNO clamps larger data
// to it, so a larger errnoRet would silently return a different errno.
const maxErrno = 4095

// flagTsync is accepted by runc and crun but is not in specs-go: Berth
// always loads with TSYNC (see Filter.Load), so it changes nothing.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

type actionInfo struct {
	scmp  libseccomp.ScmpAction
	ret   uint32 // SECCOMP_RET_*, to ask the kernel whether it knows the action
	errno bool   // the action carries errnoRet
}

var actions = map[specs.LinuxSeccompAction]actionInfo{
	specs.ActAllow: {scmp: libseccomp.ActAllow, ret: unix.SECCOMP_RET_ALLOW},
	specs.ActErrno: {scmp: libseccomp.ActErrno, ret: unix.SECCOMP_RET_ERRNO, errno: true},
	// SCMP_ACT_KILL has always meant "kill the thread" in libseccomp and runc.
	specs.ActKill:        {scmp: libseccomp.ActKillThread, ret: unix.SECCOMP_RET_KILL_THREAD},
	specs.ActKillThread:  {scmp: libseccomp.ActKillThread, ret: unix.SECCOMP_RET_KILL_THREAD},
	specs.ActKillProcess: {scmp: libseccomp.ActKillProcess, ret: unix.SECCOMP_RET_KILL_PROCESS},
	specs.ActTrap:        {scmp: libseccomp.ActTrap, ret: unix.SECCOMP_RET_TRAP},
	// The errno of TRACE is what the tracer reads as the event message.
	specs.ActTrace:  {scmp: libseccomp.ActTrace, ret: unix.SECCOMP_RET_TRACE, errno: true},
	specs.ActLog:    {scmp: libseccomp.ActLog, ret: unix.SECCOMP_RET_LOG},
	specs.ActNotify: {scmp: libseccomp.ActNotify, ret: unix.SECCOMP_RET_USER_NOTIF},
}

// archs maps the spec's names to libseccomp-golang's. A name libseccomp
// itself lacks (M68K and SH before 2.6) is reported when it is added.
var archs = map[specs.Arch]string{
	specs.ArchX86:         "x86",
	specs.ArchX86_64:      "amd64",
	specs.ArchX32:         "x32",
	specs.ArchARM:         "arm",
	specs.ArchAARCH64:     "arm64",
	specs.ArchMIPS:        "mips",
	specs.ArchMIPS64:      "mips64",
	specs.ArchMIPS64N32:   "mips64n32",
	specs.ArchMIPSEL:      "mipsel",
	specs.ArchMIPSEL64:    "mipsel64",
	specs.ArchMIPSEL64N32: "mipsel64n32",
	specs.ArchPPC:         "ppc",
	specs.ArchPPC64:       "ppc64",
	specs.ArchPPC64LE:     "ppc64le",
	specs.ArchS390:        "s390",
	specs.ArchS390X:       "s390x",
	specs.ArchPARISC:      "parisc",
	specs.ArchPARISC64:    "parisc64",
	specs.ArchRISCV64:     "riscv64",
	specs.ArchLOONGARCH64: "loong64",
	specs.ArchM68K:        "m68k",
	specs.ArchSH:          "sh",
	specs.ArchSHEB:        "sheb",
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

var flags = map[specs.LinuxSeccompFlag]uintptr{
	flagTsync:                              unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// names lists a table's keys for "use one of" in errors.
func names[K ~string, V any](m map[K]V) string {
	keys := slices.Sorted(maps.Keys(m))
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// convertAction turns an action and its optional errnoRet into libseccomp's
// value. Without errnoRet, ERRNO and TRACE carry EPERM, as in the spec.
func convertAction(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	info, ok := actions[a]
	if !ok {
		return 0, fmt.Errorf("unknown action %q: use one of %s", a, names(actions))
	}
	if !info.errno {
		if errnoRet != nil {
			return 0, fmt.Errorf("errnoRet is set but action %s returns no errno: "+
				"remove errnoRet or use SCMP_ACT_ERRNO or SCMP_ACT_TRACE", a)
		}
		return info.scmp, nil
	}
	code := uint(unix.EPERM)
	if errnoRet != nil {
		code = *errnoRet
	}
	if code > maxErrno {
		return 0, fmt.Errorf("errnoRet %d is out of range: use an errno from 0 to %d", code, maxErrno)
	}
	return info.scmp.SetReturnCode(int16(code)), nil
}

// convertArch resolves one spec architecture for libseccomp.
func convertArch(a specs.Arch) (libseccomp.ScmpArch, error) {
	name, ok := archs[a]
	if !ok {
		return 0, fmt.Errorf("unknown architecture %q: use one of %s", a, names(archs))
	}
	arch, err := libseccomp.GetArchFromString(name)
	if err != nil {
		return 0, fmt.Errorf("architecture %s: %w", a, err)
	}
	return arch, nil
}

// convertArg turns one argument comparison into a libseccomp condition. For
// SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the expected result,
// which is the order libseccomp takes them in.
func convertArg(arg specs.LinuxSeccompArg) (libseccomp.ScmpCondition, error) {
	op, ok := operators[arg.Op]
	if !ok {
		return libseccomp.ScmpCondition{}, fmt.Errorf("unknown operator %q: use one of %s", arg.Op, names(operators))
	}
	if arg.Index > 5 {
		return libseccomp.ScmpCondition{}, fmt.Errorf("argument index %d is out of range: "+
			"a syscall has arguments 0 to 5", arg.Index)
	}
	cond, err := libseccomp.MakeCondition(arg.Index, op, arg.Value, arg.ValueTwo)
	if err != nil {
		return cond, fmt.Errorf("argument %d %s: %w", arg.Index, arg.Op, err)
	}
	return cond, nil
}

// kernelActionAvail asks the kernel (SECCOMP_GET_ACTION_AVAIL) whether it
// knows an action, so that a profile needing a newer kernel fails at create
// with the action's name rather than at load with EINVAL.
func kernelActionAvail(a specs.LinuxSeccompAction, ret uint32) error {
	// The pointer conversion stays inside the Syscall call expression so
	// that ret is kept alive and in place for the call.
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&ret)))
	var err error
	if errno != 0 {
		err = errno
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("action %s is not supported by this kernel: use another action or a newer kernel", a)
	case errors.Is(err, unix.ENOSYS):
		return errNoSeccomp
	default:
		// Refused for another reason (say, a filter of our own parent's
		// blocks seccomp(2)): leave the verdict to Load.
		return nil
	}
}

var errNoSeccomp = errors.New("this kernel has no seccomp(2) (it needs CONFIG_SECCOMP_FILTER)")

// kernelFlagsAvail asks the kernel whether it accepts a set of filter
// flags. SECCOMP_SET_MODE_FILTER with a NULL program checks the flags first
// and then fails to copy the program with EFAULT, so EFAULT means "known"
// and nothing is ever installed (runc probes flags the same way).
func kernelFlagsAvail(f uintptr) error {
	err := seccompSyscall(unix.SECCOMP_SET_MODE_FILTER, f, 0)
	switch {
	case errors.Is(err, unix.EFAULT):
		return nil
	case errors.Is(err, unix.EINVAL):
		return errFlagUnsupported
	case errors.Is(err, unix.ENOSYS):
		return errNoSeccomp
	case err == nil:
		// Cannot happen with a NULL program; never report success blindly.
		return fmt.Errorf("seccomp(SET_MODE_FILTER, %#x, NULL) unexpectedly succeeded", f)
	default:
		return nil // see kernelActionAvail
	}
}

var errFlagUnsupported = errors.New("not supported by this kernel")
