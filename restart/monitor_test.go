package restart

import (
	"context"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// queueWorker is a worker of m with events queued, as dispatch leaves it,
// without a goroutine draining it.
func queueWorker(m *Monitor, events ...event) *worker {
	w := &worker{key: containerKey{"ns", "c"}, wake: make(chan struct{}, 1), active: true}
	m.workers[w.key] = w
	w.queue = events
	if len(events) > 0 {
		w.wake <- struct{}{}
	}
	return w
}

func TestWaitBeforeRestart(t *testing.T) {
	exitedAt := time.Unix(100, 0)
	for _, tc := range []struct {
		name      string
		queued    []event
		want      bool
		wantQueue int
	}{
		{name: "nothing happens", want: true},
		{name: "the same exit reported again is dropped", queued: []event{{topic: topicExit, pid: 7, at: exitedAt}}, want: true},
		{name: "a reconcile waits its turn", queued: []event{{}}, want: true, wantQueue: 1},
		{name: "someone started the task", queued: []event{{topic: topicStart, pid: 8}}, want: false, wantQueue: 1},
		{name: "another task exited", queued: []event{{topic: topicExit, pid: 8, at: exitedAt.Add(time.Second)}}, want: false, wantQueue: 1},
		{name: "a start behind a reconcile", queued: []event{{}, {topic: topicStart, pid: 8}}, want: false, wantQueue: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMonitor(nil)
			w := queueWorker(m, tc.queued...)
			w.lastExit = exitID{7, exitedAt}
			start := time.Now()
			got := m.wait(context.Background(), w, 50*time.Millisecond)
			if got != tc.want || len(w.queue) != tc.wantQueue {
				t.Fatalf("wait = %v with %d queued, want %v with %d", got, len(w.queue), tc.want, tc.wantQueue)
			}
			if took := time.Since(start); got && took < 50*time.Millisecond {
				t.Errorf("wait returned after %v, before its delay", took)
			}
		})
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	m := NewMonitor(nil)
	w := queueWorker(m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m.wait(ctx, w, time.Hour) {
		t.Fatal("wait went on after its context ended")
	}
}

func TestQueueOrderAndForget(t *testing.T) {
	m := NewMonitor(nil)
	w := queueWorker(m, event{topic: topicStart, pid: 1}, event{topic: topicExit, pid: 1})
	for _, want := range []string{topicStart, topicExit} {
		ev, ok := m.next(w)
		if !ok || ev.topic != want {
			t.Fatalf("next = %+v, %v; want %s", ev, ok, want)
		}
	}
	if _, ok := m.next(w); ok || w.active {
		t.Fatalf("next of an empty queue: ok %v, active %v; want false, false", ok, w.active)
	}
	m.forget(w)
	if len(m.workers) != 0 {
		t.Fatalf("forget left %d workers", len(m.workers))
	}
}

// TestVolumeDataRoot checks that the monitor finds a volume's store only
// from a bind of exactly <DataRoot>/volumes/NAME/_data.
func TestVolumeDataRoot(t *testing.T) {
	bind := func(src string) specs.Mount { return specs.Mount{Type: "bind", Source: src, Destination: "/d"} }
	tests := []struct {
		name   string
		mounts []specs.Mount
		want   string
	}{
		{"the volume's bind", []specs.Mount{bind("/srv/x"), bind("/var/lib/berth/volumes/v1/_data")}, "/var/lib/berth"},
		{"another volume", []specs.Mount{bind("/var/lib/berth/volumes/v2/_data")}, ""},
		{"not under volumes", []specs.Mount{bind("/var/lib/berth/other/v1/_data")}, ""},
		{"not clean", []specs.Mount{bind("/var/lib/berth/volumes/../volumes/v1/_data/")}, ""},
		{"relative", []specs.Mount{bind("volumes/v1/_data")}, ""},
		{"a tmpfs", []specs.Mount{{Type: "tmpfs", Source: "/var/lib/berth/volumes/v1/_data"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := volumeDataRoot("v1", tc.mounts); got != tc.want {
				t.Fatalf("volumeDataRoot = %q, want %q", got, tc.want)
			}
		})
	}
}
