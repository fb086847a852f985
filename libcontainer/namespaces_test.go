package libcontainer

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestPlanNamespaces(t *testing.T) {
	const path = "/proc/self/ns/net" // any path that exists
	ns := func(kind specs.LinuxNamespaceType, joined bool) specs.LinuxNamespace {
		if joined {
			return specs.LinuxNamespace{Type: kind, Path: path}
		}
		return specs.LinuxNamespace{Type: kind}
	}
	for _, tc := range []struct {
		name string
		list []specs.LinuxNamespace
		// what the plan must come to
		inChild, forks   bool
		lateFork         bool
		goFlags          uintptr
		env, threadKinds []string
	}{{
		name:    "all new: clone flags, no constructor work",
		list:    []specs.LinuxNamespace{ns(specs.PIDNamespace, false), ns(specs.MountNamespace, false), ns(specs.UserNamespace, false), ns(specs.TimeNamespace, false)},
		goFlags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUSER,
	}, {
		name:        "pod network: joined on a thread before clone",
		list:        []specs.LinuxNamespace{ns(specs.NetworkNamespace, true), ns(specs.PIDNamespace, false), ns(specs.MountNamespace, false)},
		goFlags:     unix.CLONE_NEWPID | unix.CLONE_NEWNS,
		threadKinds: []string{"network"},
	}, {
		name:    "joined pid namespace, new mount namespace: init forks into it after the root switch",
		list:    []specs.LinuxNamespace{ns(specs.PIDNamespace, true), ns(specs.MountNamespace, false), ns(specs.UTSNamespace, false)},
		inChild: true, lateFork: true,
		env: []string{"_BERTH_NSNEW=" + itoa(unix.CLONE_NEWNS|unix.CLONE_NEWUTS)},
	}, {
		name:    "joined pid namespace, host mount namespace: fork in the constructor",
		list:    []specs.LinuxNamespace{ns(specs.PIDNamespace, true), ns(specs.UTSNamespace, false)},
		inChild: true, forks: true,
		env: []string{"_BERTH_NSJOIN=pid:" + path, "_BERTH_NSNEW=" + itoa(unix.CLONE_NEWUTS)},
	}, {
		name:    "joined pid namespace in a new user namespace: fork in the constructor",
		list:    []specs.LinuxNamespace{ns(specs.PIDNamespace, true), ns(specs.MountNamespace, false), ns(specs.UserNamespace, false)},
		inChild: true, forks: true,
		env: []string{"_BERTH_NSJOIN=pid:" + path, "_BERTH_NSNEW=" + itoa(unix.CLONE_NEWNS|unix.CLONE_NEWUSER)},
	}, {
		name:    "joined user namespace: the new ones made inside it",
		list:    []specs.LinuxNamespace{ns(specs.UserNamespace, true), ns(specs.MountNamespace, false), ns(specs.UTSNamespace, false)},
		inChild: true,
		env:     []string{"_BERTH_NSJOIN=user:" + path, "_BERTH_NSNEW=" + itoa(unix.CLONE_NEWNS|unix.CLONE_NEWUTS)},
	}, {
		name:    "joined user namespace, new pid namespace: forks",
		list:    []specs.LinuxNamespace{ns(specs.UserNamespace, true), ns(specs.PIDNamespace, false)},
		inChild: true, forks: true,
		env: []string{"_BERTH_NSJOIN=user:" + path, "_BERTH_NSNEW=" + itoa(unix.CLONE_NEWPID)},
	}, {
		name:    "new user namespace beside a join: made after the join",
		list:    []specs.LinuxNamespace{ns(specs.UserNamespace, false), ns(specs.NetworkNamespace, true)},
		inChild: true,
		env:     []string{"_BERTH_NSJOIN=net:" + path, "_BERTH_NSNEW=" + itoa(unix.CLONE_NEWUSER)},
	}, {
		name: "exec: every namespace joined in the constructor",
		list: []specs.LinuxNamespace{ns(specs.UserNamespace, true), ns(specs.MountNamespace, true), ns(specs.PIDNamespace, true),
			ns(specs.NetworkNamespace, true), ns(specs.CgroupNamespace, true)},
		inChild: true, forks: true,
		env: []string{"_BERTH_NSJOIN=user:" + path + ",mnt:" + path + ",cgroup:" + path + ",pid:" + path + ",net:" + path},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planNamespaces(tc.list)
			if err != nil {
				t.Fatal(err)
			}
			if p.inChild != tc.inChild || p.forks() != tc.forks || p.lateFork() != tc.lateFork || p.goCloneFlags() != tc.goFlags {
				t.Errorf("inChild %v forks %v lateFork %v clone flags %#x, want %v %v %v %#x",
					p.inChild, p.forks(), p.lateFork(), p.goCloneFlags(), tc.inChild, tc.forks, tc.lateFork, tc.goFlags)
			}
			if env := p.childEnv(); !slices.Equal(env, tc.env) {
				t.Errorf("constructor env %q, want %q", env, tc.env)
			}
			var kinds []string
			for _, j := range p.threadJoins {
				kinds = append(kinds, string(j.kind))
			}
			if !slices.Equal(kinds, tc.threadKinds) {
				t.Errorf("thread joins %v, want %v", kinds, tc.threadKinds)
			}
		})
	}
}

func itoa(v uintptr) string { return strconv.FormatUint(uint64(v), 10) }

// The thread that joins the container's namespaces for clone is never the
// main thread: a locked goroutine that ends there leaves it parked in those
// namespaces, and /proc/self, which is the main thread's, would show them
// as the runtime's own ever after (a shim serves many creates and execs,
// and compares namespaces with its own). GOMAXPROCS=1, as the shim runs,
// makes the main thread the likely one.
func TestJoinedThreadLeavesProcessNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to join a namespace")
	}
	holder := exec.Command("sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	utsPath := fmt.Sprintf("/proc/%d/ns/uts", holder.Process.Pid)
	own, err := os.Readlink("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	plan := &nsPlan{threadJoins: []nsJoin{{specs.UTSNamespace, utsPath}}}
	for i := 0; i < 20; i++ {
		var joined string
		err := plan.onJoinedThread(func() error {
			var err error
			joined, err = os.Readlink("/proc/thread-self/ns/uts")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := os.Readlink(utsPath); joined != want {
			t.Fatalf("fn ran in uts namespace %s, want the joined %s", joined, want)
		}
		if now, _ := os.Readlink("/proc/self/ns/uts"); now != own {
			t.Fatalf("after onJoinedThread #%d, this process's uts namespace is %s, was %s: the main thread stayed in the joined one", i, now, own)
		}
	}
}
