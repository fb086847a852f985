package procattr

import (
	"fmt"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Attrs are the attributes to set on the process, as kernel values; nil or
// "" leaves one as the process has it.
type Attrs struct {
	Personality  *uint
	Scheduler    *unix.SchedAttr
	IOPriority   *int
	AppArmor     string // profile to change to at exec
	SELinuxLabel string // label to take on at exec
}

// FromSpec reads the attributes of p and of the container's personality
// (nil: none).
func FromSpec(p *specs.Process, pers *specs.LinuxPersonality) (*Attrs, error) {
	a := &Attrs{AppArmor: p.ApparmorProfile, SELinuxLabel: p.SelinuxLabel}
	if pers != nil {
		v, err := Personality(pers)
		if err != nil {
			return nil, err
		}
		a.Personality = &v
	}
	if p.Scheduler != nil {
		attr, err := Scheduler(p.Scheduler)
		if err != nil {
			return nil, err
		}
		a.Scheduler = attr
	}
	if p.IOPriority != nil {
		v, err := IOPriority(p.IOPriority)
		if err != nil {
			return nil, err
		}
		a.IOPriority = &v
	}
	return a, nil
}

// Apply sets the attributes on the calling thread, which must be locked to
// its OS thread and exec next: each of them is per thread, and the kernel
// keeps it across exec. It runs before the credentials drop (a realtime
// policy, the RT I/O class and the LSM label need privilege) and before
// the seccomp filter, which may not allow these calls.
func (a *Attrs) Apply() error {
	if a.Personality != nil {
		// x/sys/unix has no wrapper for personality(2).
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(*a.Personality), 0, 0); e != 0 {
			return fmt.Errorf("set linux.personality %#x: %w", *a.Personality, e)
		}
	}
	if a.Scheduler != nil {
		if err := unix.SchedSetAttr(0, a.Scheduler, 0); err != nil {
			return fmt.Errorf("set process.scheduler (policy %d, priority %d, nice %d; a realtime policy needs CAP_SYS_NICE and realtime time in the cgroup): %w",
				a.Scheduler.Policy, a.Scheduler.Priority, a.Scheduler.Nice, err)
		}
	}
	if a.IOPriority != nil {
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(*a.IOPriority)); e != 0 {
			return fmt.Errorf("set process.ioPriority (class %d, level %d): %w", *a.IOPriority>>ioprioClassShift, *a.IOPriority&7, e)
		}
	}
	if a.AppArmor != "" {
		// The LSM-specific file first: with several LSMs stacked, attr/exec
		// belongs to the first of them.
		if err := writeExecAttr([]string{"attr/apparmor/exec", "attr/exec"}, "exec "+a.AppArmor); err != nil {
			return fmt.Errorf("apply AppArmor profile %q (is it loaded?): %w", a.AppArmor, err)
		}
	}
	if a.SELinuxLabel != "" {
		if err := writeExecAttr([]string{"attr/selinux/exec", "attr/exec"}, a.SELinuxLabel); err != nil {
			return fmt.Errorf("apply SELinux label %q: %w", a.SELinuxLabel, err)
		}
	}
	return nil
}

// writeExecAttr writes to the first of the thread's attr files that exists,
// through a procfs handle that pathrs-lite has verified to be a real,
// un-overmounted procfs: after pivot_root, /proc is the container's, and a
// path through it could be redirected (the CVE-2025-52881 class).
func writeExecAttr(names []string, value string) error {
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("open procfs: %w", err)
	}
	defer proc.Close()
	var lastErr error
	for _, name := range names {
		f, closer, err := proc.OpenThreadSelf(name)
		if err != nil {
			lastErr = err
			continue
		}
		err = writeReopened(f, value)
		f.Close()
		closer()
		return err
	}
	return lastErr
}

func writeReopened(handle *os.File, value string) error {
	f, err := pathrs.Reopen(handle, unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(value))
	return err
}
