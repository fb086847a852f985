package procattr

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestScheduler(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    specs.Scheduler
		want string // "" accepted
	}{
		{"other with nice", specs.Scheduler{Policy: specs.SchedOther, Nice: -5}, ""},
		{"batch", specs.Scheduler{Policy: specs.SchedBatch, Nice: 19}, ""},
		{"idle", specs.Scheduler{Policy: specs.SchedIdle}, ""},
		{"fifo", specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99}, ""},
		{"rr", specs.Scheduler{Policy: specs.SchedRR, Priority: 1, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}, ""},
		{"deadline", specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10000, Deadline: 20000, Period: 30000}, ""},
		{"deadline period 0", specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10000, Deadline: 20000}, ""},
		{"no policy", specs.Scheduler{}, `policy ""`},
		{"iso", specs.Scheduler{Policy: specs.SchedISO}, "SCHED_ISO is not implemented"},
		{"unknown policy", specs.Scheduler{Policy: "SCHED_FAST"}, `"SCHED_FAST"`},
		{"nice too low", specs.Scheduler{Policy: specs.SchedOther, Nice: -21}, "nice -21"},
		{"nice too high", specs.Scheduler{Policy: specs.SchedOther, Nice: 20}, "nice 20"},
		{"fifo without priority", specs.Scheduler{Policy: specs.SchedFIFO}, "SCHED_FIFO wants 1 to 99"},
		{"rr priority 100", specs.Scheduler{Policy: specs.SchedRR, Priority: 100}, "SCHED_RR wants 1 to 99"},
		{"priority for other", specs.Scheduler{Policy: specs.SchedOther, Priority: 5}, "only SCHED_FIFO and SCHED_RR"},
		{"runtime for other", specs.Scheduler{Policy: specs.SchedOther, Runtime: 5}, "SCHED_DEADLINE only"},
		{"deadline runtime too small", specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10, Deadline: 20000}, "1024 ns <= runtime"},
		{"deadline runtime above deadline", specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 30000, Deadline: 20000}, "runtime (30000) <= deadline (20000)"},
		{"deadline above period", specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10000, Deadline: 20000, Period: 15000}, "period (15000)"},
		{"unknown flag", specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_FAST"}}, `"SCHED_FLAG_FAST"`},
	} {
		attr, err := Scheduler(&tc.s)
		expect(t, tc.name, err, tc.want)
		if err == nil && attr.Policy != schedPolicies[tc.s.Policy] {
			t.Errorf("%s: policy %d", tc.name, attr.Policy)
		}
	}
}

func TestIOPriority(t *testing.T) {
	for _, tc := range []struct {
		p     specs.LinuxIOPriority
		value int
		want  string
	}{
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 0}, 1 << 13, ""},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 7}, 2<<13 | 7, ""},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}, 3 << 13, ""},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}, 0, "priority 8"},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: -1}, 0, "priority -1"},
		{specs.LinuxIOPriority{Class: "IOPRIO_CLASS_NONE"}, 0, `class "IOPRIO_CLASS_NONE"`},
	} {
		v, err := IOPriority(&tc.p)
		expect(t, string(tc.p.Class), err, tc.want)
		if err == nil && v != tc.value {
			t.Errorf("%+v: value %#x, want %#x", tc.p, v, tc.value)
		}
	}
}

func TestPersonality(t *testing.T) {
	for _, tc := range []struct {
		p     specs.LinuxPersonality
		value uint
		want  string
	}{
		{specs.LinuxPersonality{Domain: specs.PerLinux}, 0, ""},
		{specs.LinuxPersonality{Domain: specs.PerLinux32}, 8, ""},
		{specs.LinuxPersonality{Domain: "LINUX64"}, 0, `domain "LINUX64"`},
		{specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}, 0, "defines no flags"},
	} {
		v, err := Personality(&tc.p)
		expect(t, string(tc.p.Domain), err, tc.want)
		if err == nil && v != tc.value {
			t.Errorf("%+v: value %#x, want %#x", tc.p, v, tc.value)
		}
	}
}

// TestApply sets what an unprivileged process may on a thread of its own
// (thrown away afterwards: it is never unlocked) and reads it back.
func TestApply(t *testing.T) {
	a, err := FromSpec(&specs.Process{
		Scheduler:  &specs.Scheduler{Policy: specs.SchedBatch, Nice: 19},
		IOPriority: &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 7},
	}, &specs.LinuxPersonality{Domain: specs.PerLinux32})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		policy      uint32
		nice        int32
		ioprio      int
		personality int
		machine     string
		err         error
	}
	done := make(chan seen)
	go func() {
		runtime.LockOSThread()
		var s seen
		if s.err = a.Apply(); s.err != nil {
			done <- s
			return
		}
		attr, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			s.err = err
			done <- s
			return
		}
		s.policy, s.nice = attr.Policy, attr.Nice
		r, _, _ := unix.RawSyscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
		s.ioprio = int(r)
		p, _, _ := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		s.personality = int(p)
		var u unix.Utsname
		unix.Uname(&u)
		s.machine = unix.ByteSliceToString(u.Machine[:])
		done <- s
	}()
	s := <-done
	if s.err != nil {
		t.Fatal(s.err)
	}
	if s.policy != unix.SCHED_BATCH || s.nice != 19 {
		t.Errorf("scheduler: policy %d nice %d, want SCHED_BATCH (%d) nice 19", s.policy, s.nice, unix.SCHED_BATCH)
	}
	if s.ioprio != 2<<13|7 {
		t.Errorf("ioprio %#x, want best-effort 7 (%#x)", s.ioprio, 2<<13|7)
	}
	if s.personality != perLinux32 {
		t.Errorf("personality %#x, want PER_LINUX32", s.personality)
	}
	if runtime.GOARCH == "amd64" && s.machine != "i686" {
		t.Errorf("uname machine %q under PER_LINUX32, want i686", s.machine)
	}
}

func expect(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: refused: %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: accepted, want an error with %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to contain %q", what, err, want)
	}
}

// TestExecLabelWrite reaches the thread's attr file through the verified
// procfs handle, falling back from attr/apparmor/exec to attr/exec. Without
// an LSM that takes the label, the kernel refuses the value itself
// (EINVAL): the file was found and opened for writing.
func TestExecLabelWrite(t *testing.T) {
	if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); len(b) > 0 && b[0] == 'Y' {
		t.Skip("AppArmor is enabled: a made-up profile would fail for another reason")
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- (&Attrs{AppArmor: "berth-test"}).Apply()
	}()
	err := <-errc
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), `AppArmor profile "berth-test"`) {
		t.Fatalf("apply a profile without AppArmor: %v, want EINVAL from the kernel", err)
	}
}
