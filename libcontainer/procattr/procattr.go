// Package procattr turns the attributes a spec gives the container's
// process, which the kernel keeps across exec, into their kernel values,
// and sets them on the calling thread just before it execs: the execution
// domain (personality), the scheduling policy, the I/O priority, and the
// LSM label to take on at exec (AppArmor profile or SELinux label).
//
// Each Parse function refuses what the kernel would refuse, so that create
// reports it (libcontainer/validate) before anything is made.
package procattr

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Execution domains (include/uapi/linux/personality.h); x/sys/unix does
// not define them.
const (
	perLinux   = 0x0000
	perLinux32 = 0x0008
)

// Personality is the personality(2) value for the spec's execution domain.
// The spec defines no flags yet, so any flag is refused rather than
// dropped.
func Personality(p *specs.LinuxPersonality) (uint, error) {
	if len(p.Flags) > 0 {
		return 0, fmt.Errorf("linux.personality.flags %v: the runtime spec defines no flags", p.Flags)
	}
	switch p.Domain {
	case specs.PerLinux:
		return perLinux, nil
	case specs.PerLinux32:
		return perLinux32, nil
	}
	return 0, fmt.Errorf("linux.personality.domain %q: want %s or %s", p.Domain, specs.PerLinux, specs.PerLinux32)
}

// I/O scheduling classes and the encoding of a priority
// (include/uapi/linux/ioprio.h).
const (
	ioprioClassShift = 13
	ioprioWhoProcess = 1
)

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

// IOPriority is the ioprio_set(2) value for the spec's class and level.
func IOPriority(p *specs.LinuxIOPriority) (int, error) {
	class, ok := ioprioClasses[p.Class]
	if !ok {
		return 0, fmt.Errorf("process.ioPriority.class %q: want IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return 0, fmt.Errorf("process.ioPriority.priority %d: want 0 (highest) to 7 (lowest)", p.Priority)
	}
	return class<<ioprioClassShift | p.Priority, nil
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: unix.SCHED_NORMAL, specs.SchedFIFO: unix.SCHED_FIFO, specs.SchedRR: unix.SCHED_RR,
	specs.SchedBatch: unix.SCHED_BATCH, specs.SchedIdle: unix.SCHED_IDLE, specs.SchedDeadline: unix.SCHED_DEADLINE,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork:  unix.SCHED_FLAG_RESET_ON_FORK,
	specs.SchedFlagReclaim:      unix.SCHED_FLAG_RECLAIM,
	specs.SchedFlagDLOverrun:    unix.SCHED_FLAG_DL_OVERRUN,
	specs.SchedFlagKeepPolicy:   unix.SCHED_FLAG_KEEP_POLICY,
	specs.SchedFlagKeepParams:   unix.SCHED_FLAG_KEEP_PARAMS,
	specs.SchedFlagUtilClampMin: unix.SCHED_FLAG_UTIL_CLAMP_MIN,
	specs.SchedFlagUtilClampMax: unix.SCHED_FLAG_UTIL_CLAMP_MAX,
}

// The bounds sched_setattr(2) puts on the values: the realtime priorities,
// and the smallest deadline runtime (2^DL_SCALE ns).
const (
	minRTPriority      = 1
	maxRTPriority      = 99
	minDeadlineRuntime = 1 << 10
)

// Scheduler is the sched_setattr(2) argument for the spec's scheduler.
func Scheduler(s *specs.Scheduler) (*unix.SchedAttr, error) {
	if s.Policy == specs.SchedISO {
		return nil, errors.New("process.scheduler.policy SCHED_ISO is not implemented by the Linux kernel")
	}
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		return nil, fmt.Errorf("process.scheduler.policy %q: want SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR or SCHED_DEADLINE", s.Policy)
	}
	attr := &unix.SchedAttr{Policy: policy, Nice: s.Nice, Priority: uint32(s.Priority),
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, fmt.Errorf("process.scheduler.nice %d: want -20 to 19", s.Nice)
	}
	realtime := s.Policy == specs.SchedFIFO || s.Policy == specs.SchedRR
	switch {
	case realtime && (s.Priority < minRTPriority || s.Priority > maxRTPriority):
		return nil, fmt.Errorf("process.scheduler.priority %d: %s wants %d to %d", s.Priority, s.Policy, minRTPriority, maxRTPriority)
	case !realtime && s.Priority != 0:
		return nil, fmt.Errorf("process.scheduler.priority %d: only SCHED_FIFO and SCHED_RR take a priority", s.Priority)
	}
	if err := deadline(s); err != nil {
		return nil, err
	}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("process.scheduler.flags: unknown flag %q", f)
		}
		attr.Flags |= v
	}
	return attr, nil
}

// deadline checks runtime <= deadline <= period for SCHED_DEADLINE (a
// period of 0 is the deadline), and that no other policy sets them.
func deadline(s *specs.Scheduler) error {
	if s.Policy != specs.SchedDeadline {
		if s.Runtime != 0 || s.Deadline != 0 || s.Period != 0 {
			return fmt.Errorf("process.scheduler runtime, deadline and period are for SCHED_DEADLINE only, not %s", s.Policy)
		}
		return nil
	}
	period := s.Period
	if period == 0 {
		period = s.Deadline
	}
	if s.Runtime < minDeadlineRuntime || s.Runtime > s.Deadline || s.Deadline > period {
		return fmt.Errorf("process.scheduler: SCHED_DEADLINE wants %d ns <= runtime (%d) <= deadline (%d) <= period (%d)", minDeadlineRuntime, s.Runtime, s.Deadline, s.Period)
	}
	return nil
}
