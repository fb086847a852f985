package cgroups

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/cgroups/v3/cgroup1"
	"golang.org/x/sys/unix"
)

// NotifyOOM on v1 registers an eventfd for memory.oom_control through
// cgroup.event_control (the library's OOMEventFD). The kernel signals it
// each time the cgroup hits its limit and cannot reclaim, and once more
// when the cgroup is removed, which is told apart by memory.oom_control
// being gone.
func (m *v1Manager) NotifyOOM(ctx context.Context) (<-chan struct{}, error) {
	dir, ok := m.dir(cgroup1.Memory)
	if !ok {
		return nil, fmt.Errorf("cgroups: %s: OOM notification needs the memory controller: %w", m.Path(), ErrControllerMissing)
	}
	efd, err := m.cg.OOMEventFD()
	if err != nil {
		return nil, fmt.Errorf("cgroups: %s: register OOM eventfd: %w", m.Path(), err)
	}
	fd := int(efd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroups: %s: OOM eventfd: %w", m.Path(), err)
	}
	control := filepath.Join(dir, "memory.oom_control")
	check := func() (int, bool, error) {
		var buf [8]byte
		_, err := unix.Read(fd, buf[:])
		if errors.Is(err, unix.EAGAIN) {
			return 0, false, nil
		}
		if err != nil {
			return 0, true, fmt.Errorf("cgroups: read OOM eventfd of %s: %w", m.Path(), err)
		}
		if !exists(control) {
			return 0, true, nil // the cgroup was removed
		}
		// The counter adds up the notifications since the last read; one
		// burst of reclaim failures is one OOM for the caller.
		return 1, false, nil
	}
	return watchOOM(ctx, fd, check)
}

// NotifyOOM on v2 watches memory.events with inotify (the library's
// MemoryEventFD, which also watches cgroup.events) and reports each rise
// of its oom_kill counter: v2 has no event per OOM, only counters. The
// stream ends when the group has no process left or is removed.
func (m *v2Manager) NotifyOOM(ctx context.Context) (<-chan struct{}, error) {
	events := filepath.Join(m.dir, "memory.events")
	if !exists(events) {
		return nil, fmt.Errorf("cgroups: %s: OOM notification needs the memory controller (no memory.events): %w", m.dir, ErrControllerMissing)
	}
	// The baseline is read before the watch starts, so an OOM kill in
	// between is reported, not folded into it.
	last, _, err := readKey(events, "oom_kill")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", m.dir, err)
	}
	fd, _, err := m.lib.MemoryEventFD()
	if err != nil {
		return nil, fmt.Errorf("cgroups: %s: watch memory.events: %w", m.dir, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroups: %s: watch memory.events: %w", m.dir, err)
	}
	check := func() (int, bool, error) {
		drainInotify(fd)
		n, found, err := readKey(events, "oom_kill")
		if errors.Is(err, os.ErrNotExist) {
			return 0, true, nil
		}
		if err != nil {
			return 0, true, fmt.Errorf("cgroups: %s: %w", m.dir, err)
		}
		delta := 0
		if found && n > last {
			delta = int(n - last)
		}
		if found {
			last = n
		}
		populated, found, err := readKey(filepath.Join(m.dir, "cgroup.events"), "populated")
		return delta, err != nil || found && populated == 0, nil
	}
	return watchOOM(ctx, fd, check)
}

// drainInotify discards the queued events of a non-blocking inotify fd:
// which file changed does not matter, the counters are read again.
func drainInotify(fd int) {
	buf := make([]byte, 4096)
	for {
		if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
			return
		}
	}
}

// readKey reads one counter of a flat keyed file such as memory.events.
// found is false when the key is not there: kernels before 4.13 do not
// write oom_kill, and a file being rewritten can read empty.
func readKey(path, key string) (v uint64, found bool, err error) {
	kv, err := readKVFile(path)
	if err != nil {
		return 0, false, err
	}
	if kv == nil {
		return 0, false, fmt.Errorf("read %s: %w", path, os.ErrNotExist)
	}
	v, found = kv[key]
	return v, found, nil
}

// watchOOM turns a pollable fd into the channel NotifyOOM returns. check is
// called each time fd polls readable, and once more when ctx ends so that
// an OOM already signalled is not lost to the cancellation; it returns how
// many OOMs to report and whether the stream is over. The channel is
// closed at the end and must be drained: sends block, so that no event is
// dropped. fd is closed when the stream ends.
func watchOOM(ctx context.Context, fd int, check func() (int, bool, error)) (<-chan struct{}, error) {
	// An eventfd wakes the poll when ctx ends: a Go channel cannot.
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroups: OOM watch: eventfd: %w", err)
	}
	ch := make(chan struct{}, 1)
	loopDone, waiterDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(waiterDone)
		select {
		case <-ctx.Done():
			unix.Write(stop, binary.NativeEndian.AppendUint64(nil, 1))
		case <-loopDone:
		}
	}()
	go func() {
		defer close(ch)
		defer func() {
			// The waiter may still write to stop: close it only after.
			close(loopDone)
			<-waiterDone
			unix.Close(stop)
			unix.Close(fd)
		}()
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err != nil {
				if err == unix.EINTR {
					continue
				}
				return
			}
			n, done, err := check()
			for ; n > 0; n-- {
				ch <- struct{}{}
			}
			if done || err != nil || fds[1].Revents != 0 {
				return
			}
		}
	}()
	return ch, nil
}
