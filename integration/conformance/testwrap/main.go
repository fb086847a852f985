// Command testwrap runs one runtime-tools validation binary for run.sh.
//
//	testwrap -timeout 60s -log FILE [-after 'shell command'] -- BINARY [ARGS...]
//
// It makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so that every
// process the test leaves behind (container init processes detached by the
// runtime, `unshare --fork sleep 10000` helpers started in their own process
// group, hook processes) is re-parented to it rather than to PID 1. It then:
//
//  1. runs BINARY in its own process group with stdout and stderr appended to
//     FILE (one file, so the TAP lines and the error text stay in order);
//  2. on timeout, SIGKILLs that process group and exits 124 in the end (on
//     SIGINT/SIGTERM/SIGHUP likewise, exiting 130);
//  3. runs the -after command (run.sh uses it to force-delete the
//     containers the test left in the runtime's state root) while it still
//     holds the orphans, so that the runtime sees them as its own;
//  4. SIGKILLs and reaps whatever descendants are still alive, and says so in
//     FILE.
//
// Its exit status is the test's (124 on timeout). Orphans are reaped as they
// die, so a runtime never sees a zombie it did not expect for long.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaper reaps every child of this process and hands the status of the
// processes it was asked about to their waiters.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	early   map[int]syscall.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan syscall.WaitStatus{}, early: map[int]syscall.WaitStatus{}}
	go r.loop()
	return r
}

func (r *reaper) loop() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing to reap yet.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			ch <- ws
			delete(r.waiters, pid)
		} else {
			r.early[pid] = ws
		}
		r.mu.Unlock()
	}
}

// wait returns a channel that receives pid's wait status.
func (r *reaper) wait(pid int) <-chan syscall.WaitStatus {
	ch := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		ch <- ws
		return ch
	}
	r.waiters[pid] = ch
	return ch
}

func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}

// descendants lists the live processes below pid, from /proc.
func descendants(root int) map[int]string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < 0 {
			continue
		}
		f := strings.Fields(s[close+1:])
		if len(f) < 2 {
			continue
		}
		if f[0] == "Z" { // a zombie we have not reaped yet; nothing to kill.
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
		comm[pid] = s[open+1 : close]
	}
	out := map[int]string{}
	for pid := range parent {
		for p, n := parent[pid], 0; p != 0 && n < 64; p, n = parent[p], n+1 {
			if p == root {
				out[pid] = comm[pid]
				break
			}
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "kill the test after this long")
	logPath := flag.String("log", "", "append the test's stdout and stderr to this file")
	after := flag.String("after", "", "shell command to run after the test, before leftover processes are killed")
	flag.Parse()
	if flag.NArg() == 0 || *logPath == "" {
		fmt.Fprintln(os.Stderr, "usage: testwrap -timeout D -log FILE [-after CMD] -- BINARY [ARGS...]")
		os.Exit(2)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "testwrap: PR_SET_CHILD_SUBREAPER: %v\n", err)
		os.Exit(2)
	}
	logf, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testwrap: %v\n", err)
		os.Exit(2)
	}
	note := func(format string, a ...any) {
		fmt.Fprintf(logf, "### testwrap: "+format+"\n", a...)
	}
	devnull, _ := os.Open(os.DevNull)
	rp := newReaper()

	bin, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		note("cannot find %s: %v", flag.Arg(0), err)
		os.Exit(127)
	}
	start := time.Now()
	proc, err := os.StartProcess(bin, flag.Args(), &os.ProcAttr{
		Files: []*os.File{devnull, logf, logf},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		note("cannot start %s: %v", bin, err)
		os.Exit(127)
	}
	// ^C or a kill of run.sh must still clean up: treat it as a timeout.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	code := 0
	select {
	case ws := <-rp.wait(proc.Pid):
		code = exitCode(ws)
		note("exit status %d after %.1fs", code, time.Since(start).Seconds())
	case <-time.After(*timeout):
		syscall.Kill(-proc.Pid, syscall.SIGKILL)
		<-rp.wait(proc.Pid)
		code = 124
		note("TIMEOUT: killed after %s", *timeout)
	case sig := <-sigs:
		syscall.Kill(-proc.Pid, syscall.SIGKILL)
		<-rp.wait(proc.Pid)
		code = 130
		note("INTERRUPTED by %v: test killed", sig)
	}
	// Processes of the test's own process group (not containers: runtimes
	// put those in sessions of their own) have no business outliving it.
	syscall.Kill(-proc.Pid, syscall.SIGKILL)

	if *after != "" {
		// Not exec.Cmd: its Wait would race with the reaper.
		p, err := os.StartProcess("/bin/bash", []string{"bash", "-c", *after}, &os.ProcAttr{
			Files: []*os.File{devnull, logf, logf}, Env: os.Environ(),
		})
		if err != nil {
			note("cannot run -after command: %v", err)
		} else {
			select {
			case ws := <-rp.wait(p.Pid):
				if ec := exitCode(ws); ec != 0 {
					note("-after command exit status %d", ec)
				}
			case <-time.After(2 * time.Minute):
				p.Kill()
				note("-after command timed out")
			}
		}
	}

	// Whatever is still below us was started by this test (or its runtime)
	// and survived the runtime's own delete: kill it and say so.
	self := os.Getpid()
	var killed []string
	for round := 0; round < 50; round++ {
		left := descendants(self)
		if len(left) == 0 {
			break
		}
		pids := make([]int, 0, len(left))
		for pid := range left {
			pids = append(pids, pid)
		}
		sort.Ints(pids)
		for _, pid := range pids {
			if round == 0 {
				killed = append(killed, fmt.Sprintf("%d(%s: %s)", pid, left[pid], cmdline(pid)))
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(killed) > 0 {
		note("LEFTOVER PROCESSES killed: %s", strings.Join(killed, ", "))
	}
	if left := descendants(self); len(left) > 0 {
		note("LEFTOVER PROCESSES still alive after SIGKILL (frozen cgroup?): %v", left)
	}
	logf.Close()
	os.Exit(code)
}
