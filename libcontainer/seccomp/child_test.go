package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Behaviour tests never filter the test process itself: each loads its
// profile in a child, this test binary re-executed with childEnv set, which
// runs a list of probes (syscalls) after the load and prints what they
// returned as JSON.

const childEnv = "BERTH_SECCOMP_TEST_CHILD"

// childReq is what the parent asks of the child.
type childReq struct {
	Profile *specs.LinuxSeccomp
	Probes  []probe
	// OnThreads runs each probe on an OS thread started before the load, to
	// show that TSYNC filtered the threads that already existed.
	OnThreads bool
	// State, for a NOTIFY profile, is sent with the fd to the listenerPath.
	State *specs.ContainerProcessState
	// DropSysAdmin and NoNewPrivs set up the loading thread the way init
	// may be: without CAP_SYS_ADMIN, with no_new_privs.
	DropSysAdmin, NoNewPrivs bool
}

type probe struct {
	Name string   // a key of probes
	Args []uint64 // its syscall arguments
	Path string   // for the probes that take a path
}

type result struct {
	Ret   uint64
	Errno syscall.Errno
	// Vanished: the thread that ran the probe never came back (KILL_THREAD).
	Vanished bool
}

// probes are the syscalls a child can try. They are raw syscalls so that the
// number tried is exactly the one the profile names.
var probes = map[string]func(p probe) (uintptr, syscall.Errno){
	"mkdir": func(p probe) (uintptr, syscall.Errno) {
		// os.Mkdir is mkdirat(2) on every Linux port; profiles name both.
		return 0, errnoOf(os.Mkdir(p.Path, 0o755))
	},
	// syscall: Args[0] is the number, the rest its arguments.
	"syscall": func(p probe) (uintptr, syscall.Errno) {
		var a [7]uintptr
		for i, v := range p.Args {
			a[i] = uintptr(v)
		}
		r, _, e := unix.Syscall6(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
		return r, e
	},
	"getppid":     rawProbe(unix.SYS_GETPPID),
	"getpgid":     rawProbe(unix.SYS_GETPGID),
	"getpriority": rawProbe(unix.SYS_GETPRIORITY),
	"personality": rawProbe(unix.SYS_PERSONALITY),
	"unshare":     rawProbe(unix.SYS_UNSHARE),
	"keyctl":      rawProbe(unix.SYS_KEYCTL),
	"add_key": func(p probe) (uintptr, syscall.Errno) {
		id, err := unix.AddKey("user", "berth-seccomp-test", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		return uintptr(id), errnoOf(err)
	},
	"mount": func(p probe) (uintptr, syscall.Errno) {
		// A missing target: ENOENT if the kernel ran it, so nothing mounts.
		return 0, errnoOf(unix.Mount("none", p.Path, "tmpfs", 0, ""))
	},
}

func rawProbe(nr uintptr) func(p probe) (uintptr, syscall.Errno) {
	return func(p probe) (uintptr, syscall.Errno) {
		var a [6]uintptr
		for i, v := range p.Args {
			a[i] = uintptr(v)
		}
		r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		return r, e
	}
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err == nil || !errors.As(err, &e) {
		return 0
	}
	return e
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain loads the profile and runs the probes; its output is the JSON
// results on stdout, or an error on stderr and exit status 3.
func childMain() int {
	var req childReq
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &req); err != nil {
		fmt.Fprintln(os.Stderr, "child: decode request:", err)
		return 3
	}
	var threads []chan probe
	var waits []func() result
	if req.OnThreads {
		threads, waits = startThreads(len(req.Probes))
	}
	f, err := Compile(req.Profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	// Credentials and no_new_privs are per thread: keep the load on the
	// thread that gets them.
	runtime.LockOSThread()
	if err := setPrivileges(req); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	fd, err := f.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	if req.State != nil {
		st := *req.State
		st.Pid = os.Getpid()
		if err := SendNotifyFd(req.Profile.ListenerPath, fd, &st); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
	}
	res := make([]result, len(req.Probes))
	for i, p := range req.Probes {
		if req.OnThreads {
			threads[i] <- p
			res[i] = waits[i]()
		} else {
			res[i] = runOnThread(p)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 3
	}
	return 0
}

func setPrivileges(req childReq) error {
	if req.DropSysAdmin {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capget: %w", err)
		}
		data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capset: %w", err)
		}
	}
	if req.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	return nil
}

// runOnThread runs a probe on a thread of its own so that a probe whose
// thread is killed (KILL_THREAD) leaves the child able to report it.
func runOnThread(p probe) result {
	in, out, tid := make(chan probe, 1), make(chan result, 1), make(chan int, 1)
	go probeThread(in, out, tid)
	in <- p
	return waitResult(out, <-tid)
}

// startThreads starts n locked threads before the filter is loaded.
func startThreads(n int) (ins []chan probe, wait []func() result) {
	for range n {
		in, out, tid := make(chan probe, 1), make(chan result, 1), make(chan int, 1)
		go probeThread(in, out, tid)
		id := <-tid
		ins = append(ins, in)
		wait = append(wait, func() result { return waitResult(out, id) })
	}
	return ins, wait
}

// probeThread runs one probe on a locked thread, first reporting the
// thread's id so that its death can be seen.
func probeThread(in chan probe, out chan result, tid chan int) {
	runtime.LockOSThread() // never unlocked: a probe may have changed the thread
	tid <- unix.Gettid()
	out <- runProbe(<-in)
}

// waitResult waits for a probe's result or for its thread to vanish.
func waitResult(out chan result, tid int) result {
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case r := <-out:
			return r
		case <-time.After(10 * time.Millisecond):
		}
		if threadGone(task) {
			// A probe that finished sends its result before its
			// thread exits: a result may have come in since the
			// timer fired, and then the thread did not vanish early.
			select {
			case r := <-out:
				return r
			default:
			}
			return result{Vanished: true}
		}
	}
	return result{Errno: unix.ETIMEDOUT}
}

// threadGone: a dead thread leaves /proc, or stays a zombie while it is
// the thread group's leader.
func threadGone(task string) bool {
	b, err := os.ReadFile(task + "/stat")
	if err != nil {
		return os.IsNotExist(err) || errors.Is(err, unix.ESRCH)
	}
	// The state follows the command name, which is in parentheses.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func runProbe(p probe) result {
	fn, ok := probes[p.Name]
	if !ok {
		return result{Errno: unix.ENOTSUP}
	}
	r, e := fn(p)
	return result{Ret: uint64(r), Errno: e}
}

// childRun is a finished child.
type childRun struct {
	results []result
	state   *os.ProcessState
	stderr  string
}

// runChild runs req in a child and returns how it ended. A child that
// prints no results is returned as is: some tests expect it to be killed.
func runChild(t *testing.T, req childReq) childRun {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	run := childRun{state: cmd.ProcessState, stderr: stderr.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run child: %v", err)
		}
		return run
	}
	if err := json.Unmarshal(stdout.Bytes(), &run.results); err != nil {
		t.Fatalf("child output %q: %v (stderr: %s)", stdout.String(), err, run.stderr)
	}
	return run
}

// mustResults fails the test unless the child ran every probe.
func (r childRun) mustResults(t *testing.T, n int) []result {
	t.Helper()
	if len(r.results) != n {
		t.Fatalf("child ended with %v, %d results, want %d; stderr:\n%s",
			r.state, len(r.results), n, strings.TrimSpace(r.stderr))
	}
	return r.results
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading a filter without no_new_privs needs CAP_SYS_ADMIN: run as root")
	}
}
