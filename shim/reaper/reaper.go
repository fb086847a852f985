// Package reaper is the shim's one owner of child exit statuses.
//
// The shim is a child subreaper: container processes are its children
// (libcontainer starts them with exec.Cmd), and so is every orphan a
// container leaves behind. Other code in the same process also starts
// children and waits for them itself: libcontainer's OCI hooks, mount
// helpers, the logging binary. A plain wait4(-1) loop would steal their
// exit statuses (containerd #9828, #10651 are what racing reapers cost), and
// exec.Cmd.Wait on container processes would race the loop.
//
// So one goroutine reaps, on SIGCHLD, in two steps:
//
//  1. every tracked pid (a container process, or a child registered with a
//     callback) is reaped with wait4(pid, WNOHANG);
//  2. only while no Hold is outstanding, wait4(-1, WNOHANG) reaps the rest:
//     orphans reparented to the shim.
//
// Every operation that starts or waits for children it does not track (a
// create, an exec, a delete that runs hooks) holds the reaper for its
// duration. While it does, an untracked zombie stays a zombie: its pid
// cannot be reused, so a process that exits before the caller has tracked
// it is reaped when Track is called, with its own status, and a hook's
// exec.Cmd.Wait gets its own child's status.
package reaper

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is one reaped process.
type Exit struct {
	Pid int
	// Status is the exit code as a shell reports it: the status, or
	// 128+signal.
	Status int
	At     time.Time
}

// UnknownStatus is reported for a tracked process that someone else
// reaped first: its real status is lost, but its waiters must not hang.
const UnknownStatus = 255

// Reaper reaps the shim's children. The zero value is not usable: use New.
type Reaper struct {
	mu      sync.Mutex
	holds   int
	tracked map[int]func(Exit)
	kick    chan struct{}
	stop    chan struct{}
	sigs    chan os.Signal
}

// New starts the reaper's goroutine, woken by SIGCHLD.
func New() *Reaper {
	r := &Reaper{
		tracked: map[int]func(Exit){},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		sigs:    make(chan os.Signal, 32),
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

// Close stops the reaper.
func (r *Reaper) Close() {
	signal.Stop(r.sigs)
	close(r.stop)
}

func (r *Reaper) loop() {
	for {
		select {
		case <-r.sigs:
		case <-r.kick:
		case <-r.stop:
			return
		}
		r.pass()
	}
}

// Kick asks for a reaping pass soon, as a SIGCHLD would.
func (r *Reaper) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Hold keeps the reaper off untracked children until the returned
// function is called (once). Call it before starting a child that is not
// tracked yet, and release it after Track.
func (r *Reaper) Hold() (release func()) {
	r.mu.Lock()
	r.holds++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.holds--
			r.mu.Unlock()
			// Orphans that died meanwhile, and a tracked child that was
			// already a zombie, are reaped now.
			r.Kick()
		})
	}
}

// Track has onExit called, once and from the reaper's goroutine, when pid
// exits; if it already has, soon. onExit must not block on an operation
// that holds the reaper.
func (r *Reaper) Track(pid int, onExit func(Exit)) {
	r.mu.Lock()
	r.tracked[pid] = onExit
	r.mu.Unlock()
	r.Kick()
}

// Untrack forgets pid without reaping it. A caller that untracks a child
// must hold the reaper until it tracks it again, or the child's exit may
// be reaped as an orphan's.
func (r *Reaper) Untrack(pid int) {
	r.mu.Lock()
	delete(r.tracked, pid)
	r.mu.Unlock()
}

// pass reaps what it may and then calls the callbacks, outside the lock.
func (r *Reaper) pass() {
	type delivery struct {
		fn func(Exit)
		e  Exit
	}
	var out []delivery
	r.mu.Lock()
	now := time.Now()
	for pid, fn := range r.tracked {
		status, done := reapPid(pid)
		if !done {
			continue
		}
		delete(r.tracked, pid)
		out = append(out, delivery{fn, Exit{Pid: pid, Status: status, At: now}})
	}
	if r.holds == 0 {
		for _, e := range reapAny(now) {
			// A tracked child that became a zombie since step 1.
			if fn, ok := r.tracked[e.Pid]; ok {
				delete(r.tracked, e.Pid)
				out = append(out, delivery{fn, e})
			}
		}
	}
	r.mu.Unlock()
	for _, d := range out {
		d.fn(d.e)
	}
}

// reapPid reaps pid if it has exited. A pid that is no child of ours (any
// more) counts as exited with an unknown status.
func reapPid(pid int) (int, bool) {
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return UnknownStatus, true
		case err != nil || got != pid:
			return 0, false
		}
		return ExitCode(ws), true
	}
}

// reapAny reaps every child that has exited.
func reapAny(now time.Time) []Exit {
	var exits []Exit
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return exits
		}
		exits = append(exits, Exit{Pid: pid, Status: ExitCode(ws), At: now})
	}
}

// ExitCode is a wait status as a shell reports it.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
