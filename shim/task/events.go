package task

import (
	"context"
	"sync"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/log"

	"github.com/containerd/containerd/v2/pkg/shim"
)

// eventQueue hands events to containerd in the order they were queued.
// It never blocks the caller: the reaper queues TaskExit from its own
// goroutine and must not wait for containerd (which may be restarting).
type eventQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []any
	closed bool
	done   chan struct{}
}

func newEventQueue() *eventQueue {
	q := &eventQueue{done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *eventQueue) push(e any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.items = append(q.items, e)
	q.cond.Signal()
}

// close makes forward publish what is queued and return.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Signal()
	q.mu.Unlock()
}

// next waits for an event; ok is false once the queue is closed and empty.
func (q *eventQueue) next() (e any, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return nil, false
	}
	e = q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return e, true
}

// forward publishes events one by one until the queue is closed and
// drained, then closes the publisher.
func (q *eventQueue) forward(ctx context.Context, publisher shim.Publisher) {
	defer close(q.done)
	defer publisher.Close()
	ctx = context.WithoutCancel(ctx)
	for {
		e, ok := q.next()
		if !ok {
			return
		}
		if err := publisher.Publish(ctx, runtime.GetTopic(e), e); err != nil {
			log.G(ctx).WithError(err).Error("publish event")
		}
	}
}
