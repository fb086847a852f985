package seccomp

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// denyMkdir makes mkdir and mkdirat fail, everything else run.
func denyMkdir(errnoRet *uint) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet},
	}}
}

func TestLoadErrno(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name      string
		errnoRet  *uint
		onThreads bool
		want      syscall.Errno
	}{
		{"default errno is EPERM", nil, false, unix.EPERM},
		{"custom errnoRet", uintp(uint(unix.EXDEV)), false, unix.EXDEV},
		// errnoRet 0 fakes success: the call "works" and does nothing.
		{"errnoRet 0", uintp(0), false, 0},
		// Threads that existed before the load are filtered too (TSYNC).
		{"threads started before the load", nil, true, unix.EPERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			run := runChild(t, childReq{Profile: denyMkdir(tt.errnoRet), OnThreads: tt.onThreads,
				Probes: []probe{{Name: "mkdir", Path: dir}, {Name: "getppid"}}})
			res := run.mustResults(t, 2)
			if res[0].Errno != tt.want {
				t.Errorf("mkdir: errno %v (%d), want %v", res[0].Errno, res[0].Errno, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("mkdir was filtered but %s exists (stat: %v)", dir, err)
			}
			if res[1].Errno != 0 || res[1].Ret != uint64(os.Getpid()) {
				t.Errorf("getppid = %d, %v; want %d: other syscalls must still run", res[1].Ret, res[1].Errno, os.Getpid())
			}
		})
	}
}

// TestLoadActions runs getppid under every action.
func TestLoadActions(t *testing.T) {
	needRoot(t)
	me := uint64(os.Getpid())
	tests := []struct {
		act  specs.LinuxSeccompAction
		want result // for a child that reports
		sig  syscall.Signal
		exit string // in stderr of a child that dies by exit
	}{
		{act: specs.ActAllow, want: result{Ret: me}},
		{act: specs.ActLog, want: result{Ret: me}}, // runs, and is logged
		{act: specs.ActErrno, want: result{Ret: ^uint64(0), Errno: unix.EPERM}},
		// No tracer is attached: the kernel fails the call with ENOSYS.
		{act: specs.ActTrace, want: result{Ret: ^uint64(0), Errno: unix.ENOSYS}},
		{act: specs.ActKillProcess, sig: unix.SIGSYS},
		// TRAP sends SIGSYS to the thread, which Go's runtime treats as fatal.
		{act: specs.ActTrap, exit: "SIGSYS"},
		// The thread dies; the child lives on to report it.
		{act: specs.ActKillThread, want: result{Vanished: true}},
		{act: specs.ActKill, want: result{Vanished: true}},
	}
	for _, tt := range tests {
		t.Run(string(tt.act), func(t *testing.T) {
			run := runChild(t, childReq{Probes: []probe{{Name: "getppid"}},
				Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
					Syscalls: []specs.LinuxSyscall{call(tt.act, "getppid")}}})
			ws := run.state.Sys().(syscall.WaitStatus)
			switch {
			case tt.sig != 0:
				if !ws.Signaled() || ws.Signal() != tt.sig {
					t.Errorf("child ended with %v, want killed by %v", run.state, tt.sig)
				}
			case tt.exit != "":
				if run.state.Success() || !strings.Contains(run.stderr, tt.exit) {
					t.Errorf("child ended with %v, stderr %q; want a failure naming %s", run.state, run.stderr, tt.exit)
				}
			default:
				if got := run.mustResults(t, 1)[0]; got != tt.want {
					t.Errorf("getppid: %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

// TestLoadArgs checks each operator on getpgid's argument: a filtered call
// fails with EXDEV, one that runs fails with ESRCH (no such pid) or works.
func TestLoadArgs(t *testing.T) {
	needRoot(t)
	const v = 5_000_000 // above any pid_max: getpgid(v±k) that runs fails with ESRCH
	arg := func(op specs.LinuxSeccompOperator, value, two uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: 0, Value: value, ValueTwo: two, Op: op}
	}
	tried := []uint64{v - 200, v - 1, v, v + 1, v + 256}
	tests := []struct {
		name     string
		args     []specs.LinuxSeccompArg
		filtered []uint64
	}{
		{"NE", []specs.LinuxSeccompArg{arg(specs.OpNotEqual, v, 0)}, []uint64{v - 200, v - 1, v + 1, v + 256}},
		{"LT", []specs.LinuxSeccompArg{arg(specs.OpLessThan, v, 0)}, []uint64{v - 200, v - 1}},
		{"LE", []specs.LinuxSeccompArg{arg(specs.OpLessEqual, v, 0)}, []uint64{v - 200, v - 1, v}},
		{"EQ", []specs.LinuxSeccompArg{arg(specs.OpEqualTo, v, 0)}, []uint64{v}},
		{"GE", []specs.LinuxSeccompArg{arg(specs.OpGreaterEqual, v, 0)}, []uint64{v, v + 1, v + 256}},
		{"GT", []specs.LinuxSeccompArg{arg(specs.OpGreaterThan, v, 0)}, []uint64{v + 1, v + 256}},
		// value is the mask, valueTwo what the masked argument must equal.
		{"MASKED_EQ", []specs.LinuxSeccompArg{arg(specs.OpMaskedEqual, 0xff, v&0xff)}, []uint64{v, v + 256}},
		// Two comparisons on one argument are two rules, either matching
		// (runc's semantics, which Docker's profile relies on).
		{"same argument twice is OR", []specs.LinuxSeccompArg{arg(specs.OpLessThan, v-100, 0),
			arg(specs.OpGreaterThan, v+100, 0)}, []uint64{v - 200, v + 256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []probe
			for _, x := range tried {
				ps = append(ps, probe{Name: "getpgid", Args: []uint64{x}})
			}
			res := runChild(t, childReq{Probes: ps, Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActErrno,
					ErrnoRet: uintp(uint(unix.EXDEV)), Args: tt.args}}}}).mustResults(t, len(ps))
			for i, x := range tried {
				want := syscall.Errno(unix.ESRCH)
				for _, f := range tt.filtered {
					if f == x {
						want = unix.EXDEV
					}
				}
				if res[i].Errno != want {
					t.Errorf("getpgid(v%+d): %v, want %v", int64(x)-v, res[i].Errno, want)
				}
			}
		})
	}
}

// perLinux32 is PER_LINUX32 from <sys/personality.h>.
const perLinux32 = 0x0008

// TestLoadArgsAnd: comparisons on different arguments must all match.
func TestLoadArgsAnd(t *testing.T) {
	needRoot(t)
	const who = 5_000_000
	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.PRIO_PROCESS, Op: specs.OpEqualTo},
				{Index: 1, Value: who, Op: specs.OpEqualTo}}},
		// Deny personality only for one value; querying it must still work.
		{Names: []string{"personality"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: perLinux32, Op: specs.OpEqualTo}}},
	}}
	res := runChild(t, childReq{Profile: profile, Probes: []probe{
		{Name: "getpriority", Args: []uint64{unix.PRIO_PROCESS, who}},
		{Name: "getpriority", Args: []uint64{unix.PRIO_PGRP, who}},
		{Name: "getpriority", Args: []uint64{unix.PRIO_PROCESS, 0}},
		{Name: "personality", Args: []uint64{perLinux32}},
		{Name: "personality", Args: []uint64{0xffffffff}},
	}}).mustResults(t, 5)
	want := []syscall.Errno{unix.EXDEV, unix.ESRCH, 0, unix.EPERM, 0}
	for i, w := range want {
		if res[i].Errno != w {
			t.Errorf("probe %d: errno %v, want %v", i, res[i].Errno, w)
		}
	}
}

// TestLoadPrivileges: the kernel takes a filter from a thread with
// no_new_privs or CAP_SYS_ADMIN; init has one or the other (see Load).
func TestLoadPrivileges(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name          string
		drop, nnp     bool
		wantLoadError string
	}{
		{"CAP_SYS_ADMIN without no_new_privs", false, false, ""},
		{"no_new_privs without CAP_SYS_ADMIN", true, true, ""},
		{"neither", true, false, "set no_new_privs first or keep CAP_SYS_ADMIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			run := runChild(t, childReq{Profile: denyMkdir(nil), DropSysAdmin: tt.drop, NoNewPrivs: tt.nnp,
				Probes: []probe{{Name: "mkdir", Path: dir}}})
			if tt.wantLoadError != "" {
				if run.state.Success() || !strings.Contains(run.stderr, tt.wantLoadError) {
					t.Errorf("child ended with %v, stderr %q; want a load error with %q",
						run.state, run.stderr, tt.wantLoadError)
				}
				return
			}
			if res := run.mustResults(t, 1); res[0].Errno != unix.EPERM {
				t.Errorf("mkdir: errno %v, want EPERM", res[0].Errno)
			}
		})
	}
}
