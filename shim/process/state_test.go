package process

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

// Every move between statuses, allowed or not, for both kinds of process.
func TestTransitions(t *testing.T) {
	all := []Status{Created, Running, Paused, Stopped, Deleted}
	cases := []struct {
		name    string
		states  []state
		allowed map[Status][]Status
	}{
		{"init", []state{initCreated{}, initRunning{}, initPaused{}, initStopped{}, deletedState{}}, map[Status][]Status{
			Created: {Running, Stopped, Deleted},
			Running: {Paused, Stopped},
			Paused:  {Running, Stopped},
			Stopped: {Deleted},
		}},
		{"exec", []state{execCreated{}, execRunning{}, execStopped{}, deletedState{}}, map[Status][]Status{
			Created: {Running, Stopped, Deleted},
			Running: {Stopped},
			Stopped: {Deleted},
		}},
	}
	for _, tc := range cases {
		for _, from := range tc.states {
			for _, to := range all {
				ok := false
				for _, a := range tc.allowed[from.Status()] {
					ok = ok || a == to
				}
				next, err := from.transition(to)
				switch {
				case ok && err != nil:
					t.Errorf("%s: %s → %s refused: %v", tc.name, from.Status(), to, err)
				case ok && next.Status() != to:
					t.Errorf("%s: %s → %s gave %s", tc.name, from.Status(), to, next.Status())
				case !ok && err == nil:
					t.Errorf("%s: %s → %s allowed, want refused", tc.name, from.Status(), to)
				case !ok && !errors.Is(err, errdefs.ErrFailedPrecondition) && !errors.Is(err, errdefs.ErrNotFound):
					t.Errorf("%s: %s → %s: %v is not an errdefs precondition/not-found error", tc.name, from.Status(), to, err)
				}
			}
		}
	}
}
