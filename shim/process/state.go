// Package process holds the shim's two kinds of process: a container's
// init (Init) and a process exec'd into it (Exec). Each keeps its life in
// an explicit state object; a state's transition refuses every move the
// task API does not allow (start a stopped process, pause a created one,
// delete a running one), so no RPC can put a process in an impossible
// state whatever order the calls come in.
package process

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// Status is a process's status as the task API reports it.
type Status string

const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
	Deleted Status = "deleted"
)

// state is one status of a process and the moves allowed out of it.
type state interface {
	Status() Status
	// transition returns the state for to, or an error wrapping
	// errdefs.ErrFailedPrecondition if the move is not allowed.
	transition(to Status) (state, error)
}

func refuse(from state, to Status) error {
	return fmt.Errorf("%w: a %s process cannot become %s", errdefs.ErrFailedPrecondition, from.Status(), to)
}

// The states of an Init: created → running ⇄ paused; any live state →
// stopped when the process exits; created or stopped → deleted.

type initCreated struct{}
type initRunning struct{}
type initPaused struct{}
type initStopped struct{}
type deletedState struct{}

func (initCreated) Status() Status  { return Created }
func (initRunning) Status() Status  { return Running }
func (initPaused) Status() Status   { return Paused }
func (initStopped) Status() Status  { return Stopped }
func (deletedState) Status() Status { return Deleted }

func (s initCreated) transition(to Status) (state, error) {
	switch to {
	case Running:
		return initRunning{}, nil
	case Stopped:
		return initStopped{}, nil
	case Deleted:
		return deletedState{}, nil
	}
	return nil, refuse(s, to)
}

func (s initRunning) transition(to Status) (state, error) {
	switch to {
	case Paused:
		return initPaused{}, nil
	case Stopped:
		return initStopped{}, nil
	}
	return nil, refuse(s, to)
}

func (s initPaused) transition(to Status) (state, error) {
	switch to {
	case Running:
		return initRunning{}, nil
	case Stopped:
		return initStopped{}, nil
	}
	return nil, refuse(s, to)
}

func (s initStopped) transition(to Status) (state, error) {
	if to == Deleted {
		return deletedState{}, nil
	}
	return nil, refuse(s, to)
}

func (s deletedState) transition(to Status) (state, error) {
	return nil, fmt.Errorf("%w: the process was deleted", errdefs.ErrNotFound)
}

// The states of an Exec: created (the Exec RPC only records what to run)
// → running (Start) → stopped → deleted; created → deleted. An exec'd
// process is never paused on its own: the container is, and its status
// is the container's business.

type execCreated struct{}
type execRunning struct{}
type execStopped struct{}

func (execCreated) Status() Status { return Created }
func (execRunning) Status() Status { return Running }
func (execStopped) Status() Status { return Stopped }

func (s execCreated) transition(to Status) (state, error) {
	switch to {
	case Running:
		return execRunning{}, nil
	case Stopped:
		return execStopped{}, nil
	case Deleted:
		return deletedState{}, nil
	}
	return nil, refuse(s, to)
}

func (s execRunning) transition(to Status) (state, error) {
	if to == Stopped {
		return execStopped{}, nil
	}
	return nil, refuse(s, to)
}

func (s execStopped) transition(to Status) (state, error) {
	if to == Deleted {
		return deletedState{}, nil
	}
	return nil, refuse(s, to)
}
