package task

import (
	"context"
	"sync"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
)

// blockingPublisher records what it publishes; while gate is not closed,
// Publish blocks (containerd restarting).
type blockingPublisher struct {
	gate   chan struct{}
	mu     sync.Mutex
	got    []string
	closed bool
}

func (p *blockingPublisher) Publish(ctx context.Context, topic string, e events.Event) error {
	<-p.gate
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, e.(*eventstypes.TaskExit).ID)
	return nil
}

func (p *blockingPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// The queue never blocks the one who queues, even while containerd does
// not take events; it hands them over in order, and on close publishes
// what is queued before it closes the publisher. What comes after close
// is dropped.
func TestEventQueue(t *testing.T) {
	q := newEventQueue()
	pub := &blockingPublisher{gate: make(chan struct{})}
	go q.forward(context.Background(), pub)
	var want []string
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for i := range 100 {
			id := string(rune('a'+i%26)) + string(rune('0'+i/26))
			want = append(want, id)
			q.push(&eventstypes.TaskExit{ID: id})
		}
	}()
	select {
	case <-pushed:
	case <-time.After(10 * time.Second):
		t.Fatal("push blocked while the publisher did")
	}
	close(pub.gate)
	q.close()
	select {
	case <-q.done:
	case <-time.After(10 * time.Second):
		t.Fatal("forward did not return after close")
	}
	q.push(&eventstypes.TaskExit{ID: "late"})
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if !pub.closed {
		t.Error("the publisher was not closed")
	}
	if !sameEvents(pub.got, want) {
		t.Errorf("published %v, want %v", pub.got, want)
	}
	if len(q.items) != 0 {
		t.Errorf("%d events queued after close", len(q.items))
	}
}
