package seccomp

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func call(act specs.LinuxSeccompAction, names ...string) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: act}
}

// compileErrCase is a profile Compile must refuse, and what the error must say.
type compileErrCase struct {
	name string
	s    specs.LinuxSeccomp
	want []string // all must be in the error
}

func TestCompileErrors(t *testing.T) {
	withArgs := func(args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		r := call(specs.ActErrno, "getpgid")
		r.Args = args
		return r
	}
	notify := call(specs.ActNotify, "getppid")
	tests := []compileErrCase{
		{"unknown default action", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"},
			[]string{"defaultAction", `unknown action "SCMP_ACT_NOPE"`, "use one of", "SCMP_ACT_KILL_PROCESS"}},
		{"rules without default action", specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{call(specs.ActErrno, "mkdir")}},
			[]string{"defaultAction is empty"}},
		{"notify as default", specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/x"},
			[]string{"defaultAction SCMP_ACT_NOTIFY is not allowed"}},
		{"defaultErrnoRet without errno action",
			specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uintp(1)},
			[]string{"defaultAction", "errnoRet is set but action SCMP_ACT_ALLOW returns no errno"}},
		{"unknown rule action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{call("SCMP_ACT_DENY", "mkdir", "mkdirat")}},
			[]string{"syscalls[0] (mkdir, mkdirat)", `unknown action "SCMP_ACT_DENY"`}},
		{"errnoRet on kill", specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActKillProcess, ErrnoRet: uintp(1)}}},
			[]string{"syscalls[0] (mkdir)", "errnoRet is set but action SCMP_ACT_KILL_PROCESS"}},
		{"errnoRet out of range", specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(70000)}}},
			[]string{"syscalls[0] (mkdir)", "errnoRet 70000 is out of range", "0 to 4095"}},
		{"unknown architecture", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}},
			[]string{"architectures", `unknown architecture "SCMP_ARCH_Z80"`, "SCMP_ARCH_X86_64"}},
		{"unknown operator", specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{withArgs(specs.LinuxSeccompArg{Op: "SCMP_CMP_ABOUT", Value: 1})}},
			[]string{"syscalls[0] (getpgid)", `unknown operator "SCMP_CMP_ABOUT"`, "SCMP_CMP_MASKED_EQ"}},
		{"argument index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{withArgs(specs.LinuxSeccompArg{Index: 6, Op: specs.OpEqualTo})}},
			[]string{"syscalls[0] (getpgid)", "argument index 6 is out of range"}},
		{"unknown flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}},
			[]string{"flags", `unknown flag "SECCOMP_FILTER_FLAG_FAST"`, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}},
		{"notify without listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{notify}},
			[]string{"syscalls[0] (getppid)", "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"}},
		{"notify on write", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x",
			Syscalls: []specs.LinuxSyscall{call(specs.ActNotify, "read", "write")}},
			[]string{"syscalls[0] (read, write)", "SCMP_ACT_NOTIFY cannot be used for write"}},
		{"no names", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{call(specs.ActErrno)}},
			[]string{"syscalls[0] ()", "names is empty"}},
		{"empty name", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{call(specs.ActErrno, "mkdir", "")}},
			[]string{"syscalls[0]", "names has an empty string"}},
		{"every problem at once", specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{"SCMP_ARCH_Z80"},
			Syscalls: []specs.LinuxSyscall{call(specs.ActErrno, "mkdir"), call("SCMP_ACT_DENY", "rmdir"),
				withArgs(specs.LinuxSeccompArg{Op: "SCMP_CMP_ABOUT"})}},
			[]string{`"SCMP_ARCH_Z80"`, "syscalls[1] (rmdir)", "syscalls[2] (getpgid)"}},
	}
	for _, tt := range append(tests, archErrCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(&tt.s)
			if err == nil {
				t.Fatalf("Compile succeeded (%+v), want an error", f)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// archErrCases are the architectures libseccomp refuses here: one of
// another byte order, one newer than the library.
func archErrCases() []compileErrCase {
	var cases []compileErrCase
	if runtime.GOARCH == "amd64" {
		cases = append(cases, compileErrCase{"architecture of another byte order",
			specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}},
			[]string{"architectures: SCMP_ARCH_S390X", "byte order", "remove it"}})
	}
	if maj, min, _ := libseccomp.GetLibraryVersion(); maj == 2 && min < 6 {
		cases = append(cases, compileErrCase{"architecture newer than libseccomp",
			specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchM68K}},
			[]string{"SCMP_ARCH_M68K is not supported by libseccomp 2."}})
	}
	return cases
}

func TestCompileNothing(t *testing.T) {
	for name, s := range map[string]*specs.LinuxSeccomp{
		"nil":   nil,
		"empty": {},
		// As runc: no default action and no rules is no profile.
		"flags only": {Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}},
	} {
		f, err := Compile(s)
		if f != nil || err != nil {
			t.Errorf("%s: Compile = %v, %v; want nil, nil", name, f, err)
		}
		if fd, err := f.Load(); fd != -1 || err != nil {
			t.Errorf("%s: nil Filter.Load = %d, %v; want -1, nil", name, fd, err)
		}
	}
}

func TestCompileSkipsUnknownSyscalls(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		call(specs.ActAllow, "read", "berth_no_such_syscall", "write"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Skipped(); !slices.Equal(got, []string{"berth_no_such_syscall"}) {
		t.Errorf("Skipped() = %q, want [berth_no_such_syscall]", got)
	}
}

// TestCompileAccepts: every action, operator and native architecture of
// the spec compiles, as do the rules runc accepts without complaint.
func TestCompileAccepts(t *testing.T) {
	profiles := map[string][]specs.LinuxSyscall{
		"errnoRet 0 and 4095": {
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uintp(0)},
			{Names: []string{"rmdir"}, Action: specs.ActTrace, ErrnoRet: uintp(4095)}},
		"two comparisons on one argument": {{Names: []string{"getsid"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpLessThan},
				{Index: 0, Value: 20, Op: specs.OpGreaterThan}}}},
		"comparisons on every argument": {{Names: []string{"mmap"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 1, Op: specs.OpEqualTo},
				{Index: 2, Op: specs.OpEqualTo}, {Index: 3, Op: specs.OpEqualTo}, {Index: 4, Op: specs.OpEqualTo},
				{Index: 5, Op: specs.OpEqualTo}}}},
		"the default action again": {call(specs.ActAllow, "getuid")}, // dropped, as in runc
	}
	for act := range actions {
		profiles[string(act)] = []specs.LinuxSyscall{call(act, "getppid")}
	}
	for op := range operators {
		profiles[string(op)] = []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 7, ValueTwo: 7, Op: op}}}}
	}
	for name, rules := range profiles {
		t.Run(name, func(t *testing.T) {
			f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock",
				Architectures: nativeArches(), Syscalls: rules})
			if err != nil {
				t.Fatal(err)
			}
			if len(f.prog) == 0 || len(f.Skipped()) != 0 {
				t.Errorf("%d instructions, skipped %v", len(f.prog), f.Skipped())
			}
		})
	}
}

// nativeArches lists the native architecture and its companions, as the
// Docker profile does.
func nativeArches() []specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	return nil
}

func TestCompileFlags(t *testing.T) {
	const base = unix.SECCOMP_FILTER_FLAG_TSYNC
	const listener = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	tests := []struct {
		name   string
		flags  []specs.LinuxSeccompFlag
		notify bool
		want   uintptr
	}{
		{"unset: SPEC_ALLOW as runc", nil, false, base | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"empty: none", []specs.LinuxSeccompFlag{}, false, base},
		{"TSYNC", []specs.LinuxSeccompFlag{flagTsync}, false, base},
		{"LOG", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, false, base | unix.SECCOMP_FILTER_FLAG_LOG},
		{"SPEC_ALLOW", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}, false,
			base | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"notify", []specs.LinuxSeccompFlag{}, true, base | listener},
		{"WAIT_KILLABLE_RECV with notify", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, true,
			base | listener | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
		{"WAIT_KILLABLE_RECV alone is moot", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, false, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tt.flags, ListenerPath: "/x",
				Syscalls: []specs.LinuxSyscall{call(specs.ActErrno, "mkdir")}}
			if tt.notify {
				s.Syscalls = append(s.Syscalls, call(specs.ActNotify, "getppid"))
			}
			f, err := Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			if f.flags != tt.want || f.notify != tt.notify {
				t.Errorf("flags %#x notify %v, want %#x %v", f.flags, f.notify, tt.want, tt.notify)
			}
		})
	}
}

// The kernel check is what turns a flag this kernel lacks into a create error.
func TestKernelFlagsAvail(t *testing.T) {
	if err := kernelFlagsAvail(unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
		t.Errorf("TSYNC: %v", err)
	}
	if err := kernelFlagsAvail(1 << 30); !errors.Is(err, errFlagUnsupported) {
		t.Errorf("bit 30: %v, want errFlagUnsupported", err)
	}
	// The kernel only takes WAIT_KILLABLE_RECV with a listener; checkFlags
	// must therefore probe it together with NEW_LISTENER.
	if err := kernelFlagsAvail(unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV); !errors.Is(err, errFlagUnsupported) {
		t.Errorf("WAIT_KILLABLE_RECV alone: %v, want errFlagUnsupported", err)
	}
	if err := kernelActionAvail(specs.ActKillProcess, unix.SECCOMP_RET_KILL_PROCESS); err != nil {
		t.Errorf("KILL_PROCESS: %v", err)
	}
	if err := kernelActionAvail("SCMP_ACT_FUTURE", 0x7ff80000); err == nil ||
		!strings.Contains(err.Error(), "SCMP_ACT_FUTURE is not supported by this kernel") {
		t.Errorf("unknown action value: %v", err)
	}
}
