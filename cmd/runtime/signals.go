package main

import (
	"os"
	"os/signal"
	"syscall"
)

// forwarded are the signals `run` and `exec` pass on to the container's
// process: all that a process can catch, but SIGCHLD (ours) and SIGURG
// (the Go runtime's).
var forwarded = func() []os.Signal {
	var list []os.Signal
	for s := syscall.Signal(1); s <= 31; s++ {
		switch s {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG,
			syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGPROF:
			continue
		}
		list = append(list, s)
	}
	return list
}()

// catchSignals starts catching the forwarded signals. Registering costs a
// thread handoff per signal in Go's runtime (about 1 ms for all of them),
// so it runs in the background: call ready before the container's process
// can run, and stop when done.
func catchSignals(detach bool) (sigs <-chan os.Signal, ready, stop func()) {
	c := make(chan os.Signal, 32)
	if detach {
		return c, func() {}, func() {}
	}
	registered := make(chan struct{})
	go func() { signal.Notify(c, forwarded...); close(registered) }()
	return c, func() { <-registered }, func() { <-registered; signal.Stop(c) }
}

// forward relays signals to pid until done closes.
func forward(pid int, sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case s := <-sigs:
			syscall.Kill(pid, s.(syscall.Signal))
		case <-done:
			return
		}
	}
}

// waiter is a process the runtime started and reaps: a container's init
// or an exec'd process.
type waiter interface {
	Wait() (int, error)
	Pid() int
}

// waitForwarding waits for w, relaying the caught signals to it.
func waitForwarding(w waiter, sigs <-chan os.Signal) (int, error) {
	done := make(chan struct{})
	go forward(w.Pid(), sigs, done)
	defer close(done)
	return w.Wait()
}
