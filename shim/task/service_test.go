package task

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/shim/process"
	"github.com/berthrt/berth/shim/reaper"
	"github.com/berthrt/berth/shim/record"
)

// fakeReaper stands in for shim/reaper: a test reports the exits of
// tracked pids itself, in the order it wants to check.
type fakeReaper struct {
	mu      sync.Mutex
	tracked map[int]func(reaper.Exit)
	held    int
}

func newFakeReaper() *fakeReaper { return &fakeReaper{tracked: map[int]func(reaper.Exit){}} }

func (r *fakeReaper) Hold() func() {
	r.mu.Lock()
	r.held++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
	}
}

func (r *fakeReaper) Track(pid int, onExit func(reaper.Exit)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tracked[pid] = onExit
}

func (r *fakeReaper) Untrack(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tracked, pid)
}

// exit reports pid's exit as the reaper does: to its tracker, once.
func (r *fakeReaper) exit(t *testing.T, pid, status int) {
	t.Helper()
	r.mu.Lock()
	onExit, ok := r.tracked[pid]
	delete(r.tracked, pid)
	held := r.held
	r.mu.Unlock()
	if !ok {
		t.Fatalf("exit of pid %d, which is not tracked", pid)
	}
	if held != 0 {
		t.Fatalf("exit of pid %d reported while the reaper is held %d times", pid, held)
	}
	onExit(reaper.Exit{Pid: pid, Status: status, At: time.Now()})
}

// fakeProcess is an init or exec'd process that records its exit.
type fakeProcess struct {
	id       string
	pid      int
	startErr error
	// startPanics makes Start panic, as a bug in it would.
	startPanics bool
	mu          sync.Mutex
	exits       []process.Exit
	deleted     bool
	killAll     int
}

func (p *fakeProcess) ID() string { return p.id }

func (p *fakeProcess) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *fakeProcess) Start(context.Context) error {
	if p.startPanics {
		panic("test: start " + p.id)
	}
	return p.startErr
}

func (p *fakeProcess) SetExited(e process.Exit) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exits = append(p.exits, e)
	return !p.deleted
}

func (p *fakeProcess) KillAll() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killAll++
	return nil
}

// newTestService is a service with a fake reaper and container id with a
// fake init (pid 1) in bundle.
func newTestService(t *testing.T) (*service, *fakeReaper, *container, *fakeProcess) {
	r := newFakeReaper()
	s := &service{ctx: context.Background(), reaper: r, events: newEventQueue(), containers: map[string]*container{}}
	init := &fakeProcess{id: "c1", pid: 1}
	c := newContainerOf("c1", t.TempDir(), init)
	s.containers["c1"] = c
	r.Track(1, func(e reaper.Exit) { s.onInitExit(c, e) })
	return s, r, c, init
}

// queued describes the events queued so far, in order.
func queued(q *eventQueue) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, e := range q.items {
		switch e := e.(type) {
		case *eventstypes.TaskExit:
			out = append(out, fmt.Sprintf("exit %s %d", e.ID, e.ExitStatus))
		case *eventstypes.TaskExecStarted:
			out = append(out, "exec-started "+e.ExecID)
		case *eventstypes.TaskOOM:
			out = append(out, "oom")
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return out
}

func sameEvents(got, want []string) bool { return fmt.Sprint(got) == fmt.Sprint(want) }

// The init's TaskExit is the container's last: held back while execs
// run, published after the last exec's exit, and after any OOM.
func TestExitOrdering(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *service, r *fakeReaper, c *container)
		want []string
	}{
		{"init alone", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			r.exit(t, 1, 3)
		}, []string{"exit c1 3"}},
		{"init exits while an exec runs", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			startTestExec(t, s, c, "e1", 10)
			r.exit(t, 1, 0)
			if got := queued(s.events); !sameEvents(got, []string{"exec-started e1"}) {
				t.Errorf("with an exec running, the init's exit was published: %v", got)
			}
			r.exit(t, 10, 5)
		}, []string{"exec-started e1", "exit e1 5", "exit c1 0"}},
		{"two execs, the init between", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			startTestExec(t, s, c, "e1", 10)
			startTestExec(t, s, c, "e2", 11)
			r.exit(t, 10, 1)
			r.exit(t, 1, 0)
			r.exit(t, 11, 2)
		}, []string{"exec-started e1", "exec-started e2", "exit e1 1", "exit e2 2", "exit c1 0"}},
		{"an exec that never started releases the held exit", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			startTestExec(t, s, c, "e1", 10)
			r.exit(t, 1, 0)
			failed := &fakeProcess{id: "e2", startErr: errors.New("no such program")}
			// beginExec refuses it: the init has exited.
			if err := s.startExec(context.Background(), c, failed); !errdefs.IsFailedPrecondition(err) {
				t.Errorf("exec started after the init exited: %v, want failed precondition", err)
			}
			r.exit(t, 10, 0)
		}, []string{"exec-started e1", "exit e1 0", "exit c1 0"}},
		{"an exec that fails to start", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			failed := &fakeProcess{id: "e1", startErr: errors.New("no such program")}
			if err := s.startExec(context.Background(), c, failed); err == nil {
				t.Error("a failed exec start succeeded")
			}
			r.exit(t, 1, 0)
		}, []string{"exit c1 0"}},
		{"an exec whose start panics", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			func() {
				defer func() {
					if recover() == nil {
						t.Error("the exec's start did not panic")
					}
				}()
				s.startExec(context.Background(), c, &fakeProcess{id: "e1", startPanics: true})
			}()
			r.exit(t, 1, 0)
		}, []string{"exit c1 0"}},
		{"OOM before the exit it caused", func(t *testing.T, s *service, r *fakeReaper, c *container) {
			// What the OOM watch drains when it stops.
			c.oomStop = func() { s.send(&eventstypes.TaskOOM{ContainerID: c.id}) }
			r.exit(t, 1, 137)
		}, []string{"oom", "exit c1 137"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r, c, init := newTestService(t)
			tc.run(t, s, r, c)
			if got := queued(s.events); !sameEvents(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
			if len(init.exits) != 1 {
				t.Errorf("the init's exit was recorded %d times, want once", len(init.exits))
			}
			if e, err := record.ReadExit(c.bundle); err != nil || e.Pid != 1 {
				t.Errorf("the init's exit in the bundle: %+v, %v", e, err)
			}
		})
	}
}

func startTestExec(t *testing.T, s *service, c *container, id string, pid int) *fakeProcess {
	t.Helper()
	e := &fakeProcess{id: id, pid: pid}
	if err := s.startExec(context.Background(), c, e); err != nil {
		t.Fatalf("start exec %s: %v", id, err)
	}
	return e
}

// A container sharing its pid namespace has what is left killed when its
// init exits; a deleted init's exit is not published.
func TestInitExitSideEffects(t *testing.T) {
	s, r, c, init := newTestService(t)
	c.killAllOnExit = true
	init.deleted = true
	r.exit(t, 1, 0)
	if init.killAll != 1 {
		t.Errorf("KillAll called %d times after the init of a shared pid namespace exited, want 1", init.killAll)
	}
	if got := queued(s.events); len(got) != 0 {
		t.Errorf("events after a deleted init exited: %v, want none", got)
	}
}

// fakeClock collects what the service schedules; a test fires it.
type fakeClock struct {
	mu     sync.Mutex
	timers []fakeTimer
}

type fakeTimer struct {
	d time.Duration
	f func()
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, fakeTimer{d, f})
}

// fire runs the timers scheduled so far, in order, and returns their
// durations.
func (c *fakeClock) fire() []time.Duration {
	c.mu.Lock()
	timers := c.timers
	c.timers = nil
	c.mu.Unlock()
	var ds []time.Duration
	for _, tm := range timers {
		ds = append(ds, tm.d)
		tm.f()
	}
	return ds
}

// fakeSlots is a shared shim's slot: members says whether a container is
// on its way to the shim.
type fakeSlots struct {
	members   int
	vacateErr error
	vacated   int
}

func (f *fakeSlots) Release(int, string, func(string) bool) error { return nil }

func (f *fakeSlots) Vacate(int) (bool, error) {
	if f.vacateErr != nil {
		return false, f.vacateErr
	}
	if f.members > 0 {
		return false, nil
	}
	f.vacated++
	return true, nil
}

// fakeShutdown counts the shim's shutdowns.
type fakeShutdown struct {
	mu sync.Mutex
	n  int
}

func (f *fakeShutdown) Shutdown() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}
func (f *fakeShutdown) RegisterCallback(func(context.Context) error) {}
func (f *fakeShutdown) Done() <-chan struct{}                        { return nil }
func (f *fakeShutdown) Err() error                                   { return nil }

func (f *fakeShutdown) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// A shim asked to shut down: one with containers stays; a shared one
// lingers, then leaves unless a container came or another shutdown was
// asked for meanwhile; it leaves its slot only when no container is on
// its way to it, and looks again later otherwise.
func TestShutdownLingerAndVacate(t *testing.T) {
	const linger = 2 * time.Second
	for _, tc := range []struct {
		name   string
		packed bool
		linger time.Duration
		run    func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots)
		want   int // shutdowns at the end
	}{
		{"own shim, no container: at once", false, linger, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			shutdownNow(s)
			if ds := clock.fire(); len(ds) != 0 {
				t.Errorf("an unshared shim scheduled %v", ds)
			}
		}, 1},
		{"containers left: stays", true, linger, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			s.containers["c1"] = newContainerOf("c1", t.TempDir(), &fakeProcess{})
			shutdownNow(s)
			clock.fire()
		}, 0},
		{"shared: lingers, then leaves", true, linger, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			shutdownNow(s)
			if n := s.shutdown.(*fakeShutdown).count(); n != 0 {
				t.Errorf("a lingering shim left at once")
			}
			if ds := clock.fire(); len(ds) != 1 || ds[0] != linger {
				t.Errorf("lingered %v, want [%s]", ds, linger)
			}
			if packs.vacated != 1 {
				t.Errorf("the slot was vacated %d times, want 1", packs.vacated)
			}
		}, 1},
		{"shared: a container created while it lingers", true, linger, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			shutdownNow(s)
			s.mu.Lock()
			s.containers["c2"] = newContainerOf("c2", t.TempDir(), &fakeProcess{})
			s.lingerGen++ // as create does
			s.mu.Unlock()
			clock.fire()
		}, 0},
		{"shared: a later shutdown outdates the first wait", true, linger, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			shutdownNow(s)
			clock.mu.Lock()
			first := clock.timers[0].f
			clock.timers = nil
			clock.mu.Unlock()
			shutdownNow(s)
			first()
			if n := s.shutdown.(*fakeShutdown).count(); n != 0 {
				t.Errorf("an outdated linger ended the shim")
			}
			clock.fire()
		}, 1},
		{"shared, ShimLinger 0s: a member on its way keeps it", true, 0, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			packs.members = 1
			shutdownNow(s)
			if ds := clock.fire(); len(ds) != 1 || ds[0] != vacateRetry {
				t.Errorf("with a member on its way, scheduled %v, want a look again after %s", ds, vacateRetry)
			}
			if n := s.shutdown.(*fakeShutdown).count(); n != 0 {
				t.Errorf("the shim left while a container was on its way")
			}
			packs.members = 0 // containerd gave up on it; shim delete released it
			clock.fire()
		}, 1},
		{"shared: the slot cannot be read: leaves anyway", true, 0, func(t *testing.T, s *service, clock *fakeClock, packs *fakeSlots) {
			packs.vacateErr = errors.New("lock: permission denied")
			shutdownNow(s)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock, packs, sd := &fakeClock{}, &fakeSlots{}, &fakeShutdown{}
			s := &service{
				ctx: context.Background(), reaper: newFakeReaper(), events: newEventQueue(), shutdown: sd,
				afterFunc: clock.afterFunc, packed: tc.packed, packs: packs, containers: map[string]*container{},
				linger: tc.linger,
			}
			tc.run(t, s, clock, packs)
			if n := sd.count(); n != tc.want {
				t.Errorf("shut down %d times, want %d", n, tc.want)
			}
		})
	}
}

func shutdownNow(s *service) {
	s.Shutdown(context.Background(), &taskAPI.ShutdownRequest{})
}
