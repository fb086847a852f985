// Package seccomp compiles the runtime spec's linux.seccomp section into a
// BPF program and loads it into the container's init just before exec.
//
// The work is split in two so that a bad profile fails `create`: Compile
// validates every name against this package's tables and the running kernel
// and has libseccomp generate the program; Load is a single seccomp(2) call.
// Loading the program ourselves rather than through libseccomp's loader lets
// Berth choose the filter flags (TSYNC, LOG, SPEC_ALLOW, NEW_LISTENER,
// WAIT_KILLABLE_RECV) independently of the libseccomp version it is linked
// with, and keeps libseccomp's allocations out of the last steps before exec.
//
// Semantics follow runc: unknown syscall names are skipped, a rule whose
// action equals the default action is dropped, several comparisons on the
// same argument become separate rules (OR), SCMP_ACT_KILL kills the thread,
// errnoRet defaults to EPERM, a profile without flags gets
// SECCOMP_FILTER_FLAG_SPEC_ALLOW where the kernel supports it, and a
// syscall newer than the profile gets ENOSYS rather than a denying default
// action (enosys.go).
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// bpfMaxInsns is the kernel's BPF_MAXINSNS for classic BPF filters.
const bpfMaxInsns = 4096

// Filter is a compiled, validated profile, ready to load.
type Filter struct {
	prog    []unix.SockFilter
	flags   uintptr // for seccomp(SECCOMP_SET_MODE_FILTER)
	notify  bool    // some rule uses SCMP_ACT_NOTIFY: Load returns a listener fd
	skipped []string
}

// rule is one entry of linux.seccomp.syscalls, converted.
type rule struct {
	where string // "syscalls[3] (mkdir, mkdirat)", for errors
	names []string
	act   libseccomp.ScmpAction
	conds []libseccomp.ScmpCondition
	// split: several comparisons name the same argument. libseccomp
	// refuses that in one rule, and runc (whose behaviour profiles such as
	// Docker's are written for) adds one rule per comparison instead.
	split bool
}

type arch struct {
	name specs.Arch // for errors
	scmp libseccomp.ScmpArch
}

// plan is a profile checked against the tables and the kernel.
type plan struct {
	defAct libseccomp.ScmpAction
	arches []arch
	flags  uintptr
	notify bool
	rules  []rule
}

// Compile validates and compiles s (nil -> nil filter, nil error). Errors
// name the bad syscall/arch/action/operator and say what to fix. A profile
// with neither defaultAction nor syscalls is, as in runc, no profile at all.
// Syscall names this libseccomp does not know are skipped (see Skipped).
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if s == nil || (s.DefaultAction == "" && len(s.Syscalls) == 0) {
		return nil, nil
	}
	p, err := check(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	f := &Filter{flags: p.flags, notify: p.notify}
	ctx, err := build(p, &f.skipped)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	defer ctx.Release()
	if f.prog, err = exportBPF(ctx); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if needsStub(s) {
		if f.prog, err = withEnosysStub(p, s, f.prog); err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
	}
	if n := len(f.prog); n > bpfMaxInsns {
		return nil, fmt.Errorf("seccomp profile: it compiles to %d BPF instructions, more than the kernel's %d: "+
			"merge rules that share an action or drop some", n, bpfMaxInsns)
	}
	slog.Debug("seccomp filter compiled", "instructions", len(f.prog), "flags", fmt.Sprintf("%#x", f.flags),
		"skipped (unknown to libseccomp)", strings.Join(f.skipped, ","))
	return f, nil
}

// Notify says whether Load will return a notify fd for a listener.
func (f *Filter) Notify() bool { return f != nil && f.notify }

// Skipped lists the syscall names of the profile that this libseccomp does
// not know and that were therefore left out (runc logs them at debug level).
func (f *Filter) Skipped() []string {
	if f == nil {
		return nil
	}
	return f.skipped
}

// check converts and validates the whole profile, reporting every problem
// at once so that one round of edits can fix them all.
func check(s *specs.LinuxSeccomp) (*plan, error) {
	var errs []error
	p := &plan{}
	def, err := checkDefault(s)
	if err != nil {
		errs = append(errs, err)
	}
	p.defAct = def
	for _, a := range s.Architectures {
		scmp, err := convertArch(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("architectures: %w", err))
			continue
		}
		p.arches = append(p.arches, arch{name: a, scmp: scmp})
	}
	used := map[specs.LinuxSeccompAction]uint32{s.DefaultAction: actions[s.DefaultAction].ret}
	for i, call := range s.Syscalls {
		r, err := checkRule(i, call, s.ListenerPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		used[call.Action] = actions[call.Action].ret
		p.notify = p.notify || call.Action == specs.ActNotify
		if r.act != def { // redundant with the default; libseccomp refuses it
			p.rules = append(p.rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for a, ret := range used {
		if err := kernelActionAvail(a, ret); err != nil {
			errs = append(errs, err)
		}
	}
	flags, err := checkFlags(s.Flags, p.notify)
	if err != nil {
		errs = append(errs, err)
	}
	p.flags = flags
	return p, errors.Join(errs...)
}

// checkDefault validates defaultAction and defaultErrnoRet.
func checkDefault(s *specs.LinuxSeccomp) (libseccomp.ScmpAction, error) {
	switch s.DefaultAction {
	case "":
		return 0, errors.New("defaultAction is empty: set it (SCMP_ACT_ERRNO denies what no rule allows)")
	case specs.ActNotify:
		// Every syscall of init after the load, write(2) to report an
		// error included, would wait for an agent that has no fd yet.
		return 0, errors.New("defaultAction SCMP_ACT_NOTIFY is not allowed: use it in syscalls rules only")
	}
	act, err := convertAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return 0, fmt.Errorf("defaultAction: %w", err)
	}
	return act, nil
}

// checkRule converts one syscalls entry.
func checkRule(i int, call specs.LinuxSyscall, listenerPath string) (rule, error) {
	r := rule{where: fmt.Sprintf("syscalls[%d] (%s)", i, strings.Join(call.Names, ", ")), names: call.Names}
	fail := func(err error) (rule, error) { return r, fmt.Errorf("%s: %w", r.where, err) }
	if len(call.Names) == 0 {
		return fail(errors.New("names is empty: list at least one syscall"))
	}
	for _, n := range call.Names {
		if n == "" {
			return fail(errors.New("names has an empty string: remove it"))
		}
	}
	act, err := convertAction(call.Action, call.ErrnoRet)
	if err != nil {
		return fail(err)
	}
	r.act = act
	if call.Action == specs.ActNotify {
		if listenerPath == "" {
			return fail(errors.New("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, " +
				"the socket the runtime sends the notify fd to: set it"))
		}
		for _, n := range call.Names {
			// init writes to its parent after the load; a notified write
			// would deadlock before any agent has the fd (runc refuses it too).
			if n == "write" {
				return fail(errors.New("SCMP_ACT_NOTIFY cannot be used for write: remove write from this rule"))
			}
		}
	}
	var seen [6]bool
	for _, arg := range call.Args {
		cond, err := convertArg(arg)
		if err != nil {
			return fail(err)
		}
		r.split = r.split || seen[arg.Index]
		seen[arg.Index] = true
		r.conds = append(r.conds, cond)
	}
	return r, nil
}

// checkFlags turns the spec's flags into seccomp(2) flags for Load. TSYNC
// is always set: a filter is per thread, Go's runtime has several, and the
// goroutine that loads the filter may call execve from another thread,
// whose program would then run unfiltered.
func checkFlags(list []specs.LinuxSeccompFlag, notify bool) (uintptr, error) {
	f := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC)
	if notify {
		// TSYNC with NEW_LISTENER is only accepted with TSYNC_ESRCH, as
		// both would otherwise use the return value (Linux 5.7).
		f |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		if err := kernelFlagsAvail(f); err != nil {
			return 0, fmt.Errorf("SCMP_ACT_NOTIFY with a multi-threaded init: %w (it needs Linux 5.7)", err)
		}
	}
	if list == nil {
		// runc (1.2+) and crun default to SPEC_ALLOW: the speculative store
		// bypass mitigation costs a lot and the spec leaves the choice open.
		if kernelFlagsAvail(f|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW) == nil {
			f |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		}
		return f, nil
	}
	var errs []error
	for _, name := range list {
		v, ok := flags[name]
		if !ok {
			errs = append(errs, fmt.Errorf("flags: unknown flag %q: use one of %s", name, names(flags)))
			continue
		}
		if v == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
			if !notify {
				continue // it only changes how notifications wait, as in libseccomp
			}
		}
		if err := kernelFlagsAvail(f | v); err != nil {
			errs = append(errs, fmt.Errorf("flags: %s: %w: remove it or use a newer kernel", name, err))
			continue
		}
		f |= v
	}
	return f, errors.Join(errs...)
}

// build has libseccomp generate the filter for a checked plan. Names that
// libseccomp cannot resolve are skipped, as in runc: a profile written for
// a newer kernel (Docker's) names syscalls this one cannot have.
func build(p *plan, skipped *[]string) (*libseccomp.ScmpFilter, error) {
	ctx, err := libseccomp.NewFilter(p.defAct)
	if err != nil {
		return nil, fmt.Errorf("create libseccomp filter: %w", err)
	}
	for _, a := range p.arches {
		if err := ctx.AddArch(a.scmp); err != nil {
			ctx.Release()
			return nil, archError(a.name, err)
		}
	}
	// A binary tree keeps long profiles (Docker's has hundreds of names)
	// from costing a linear scan per syscall. libseccomp <= 2.5.4
	// misbehaves with it on empty filters, hence runc's threshold of 32.
	n := 0
	for _, r := range p.rules {
		n += len(r.names)
	}
	if n > 32 {
		_ = ctx.SetOptimize(2) // older libseccomp: the default order is correct, just slower
	}
	for _, r := range p.rules {
		for _, name := range r.names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				*skipped = append(*skipped, name)
				continue
			}
			if err := addRule(ctx, nr, r); err != nil {
				ctx.Release()
				return nil, fmt.Errorf("%s: syscall %s: %w", r.where, name, err)
			}
		}
	}
	return ctx, nil
}

func addRule(ctx *libseccomp.ScmpFilter, nr libseccomp.ScmpSyscall, r rule) error {
	if !r.split {
		return ctx.AddRuleConditional(nr, r.act, r.conds)
	}
	for _, c := range r.conds {
		if err := ctx.AddRuleConditional(nr, r.act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

func archError(arch specs.Arch, err error) error {
	native, _ := libseccomp.GetNativeArch()
	if errors.Is(err, unix.EDOM) {
		return fmt.Errorf("architectures: %s cannot share a filter with this machine's %s "+
			"(different byte order or word size): remove it: %w", arch, native, err)
	}
	maj, min, mic := libseccomp.GetLibraryVersion()
	return fmt.Errorf("architectures: %s is not supported by libseccomp %d.%d.%d: remove it: %w",
		arch, maj, min, mic, err)
}

// exportBPF has libseccomp write the program into a memfd (it only writes
// to file descriptors before 2.6) and decodes it.
func exportBPF(ctx *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("berth-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export BPF: memfd_create: %w", err)
	}
	file := os.NewFile(uintptr(fd), "memfd:berth-seccomp")
	defer file.Close()
	if err := ctx.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("export BPF: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("export BPF: %w", err)
	}
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("export BPF: %w", err)
	}
	const insn = int(unsafe.Sizeof(unix.SockFilter{}))
	n := len(raw) / insn
	if len(raw)%insn != 0 || n == 0 {
		return nil, fmt.Errorf("export BPF: libseccomp wrote %d bytes, not whole instructions", len(raw))
	}
	prog := make([]unix.SockFilter, n)
	for i := range prog {
		b := raw[i*insn:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}

// Load installs the filter on the calling process: TSYNC puts it on every
// thread, since Go's runtime has several. For a profile with SCMP_ACT_NOTIFY
// rules it returns the notify fd (close-on-exec, so the container's program
// never holds it), else -1. A nil filter loads nothing.
//
// It does not set no_new_privs: the caller sets it first when the spec asks
// for it, and otherwise still holds CAP_SYS_ADMIN, which the kernel then
// requires.
func (f *Filter) Load() (notifyFd int, err error) {
	if f == nil {
		return -1, nil
	}
	fprog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f.flags,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(f)
	switch {
	case errno == unix.EACCES:
		return -1, fmt.Errorf("load seccomp filter: %w: set no_new_privs first or keep CAP_SYS_ADMIN", errno)
	case errno == unix.ESRCH:
		return -1, fmt.Errorf("load seccomp filter: %w: another thread could not take the filter (TSYNC)", errno)
	case errno != 0:
		return -1, fmt.Errorf("load seccomp filter (flags %#x): %w", f.flags, errno)
	case f.notify:
		return int(r), nil
	case r != 0:
		// Without TSYNC_ESRCH the kernel reports a thread it could not
		// synchronise by returning its id, and installs nothing.
		return -1, fmt.Errorf("load seccomp filter: thread %d could not take the filter (TSYNC)", r)
	}
	return -1, nil
}

// seccompSyscall is seccomp(2), returning only its error.
func seccompSyscall(op, flags, arg uintptr) error {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, op, flags, arg)
	if errno != 0 {
		return errno
	}
	return nil
}
