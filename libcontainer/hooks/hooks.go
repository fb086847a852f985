// Package hooks runs the OCI lifecycle hooks: each hook is a program that
// gets the container state as JSON on stdin, may have a timeout, and whose
// failure means different things at different points of the lifecycle
// (the caller decides; Run only reports).
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Point names a moment of the lifecycle at which hooks run.
type Point string

const (
	Prestart        Point = "prestart"
	CreateRuntime   Point = "createRuntime"
	CreateContainer Point = "createContainer"
	StartContainer  Point = "startContainer"
	Poststart       Point = "poststart"
	Poststop        Point = "poststop"
)

// ForPoint returns the hooks configured for p; nil when there are none.
func ForPoint(h *specs.Hooks, p Point) []specs.Hook {
	if h == nil {
		return nil
	}
	switch p {
	case Prestart:
		return h.Prestart //nolint:staticcheck // deprecated in the spec, still honoured
	case CreateRuntime:
		return h.CreateRuntime
	case CreateContainer:
		return h.CreateContainer
	case StartContainer:
		return h.StartContainer
	case Poststart:
		return h.Poststart
	case Poststop:
		return h.Poststop
	}
	return nil
}

// Run runs hooks in order and stops at the first failure. The state is
// written to each hook's stdin. A hook that outlives its timeout is killed
// and counts as failed. A hook gets exactly the env the spec gives it, and
// the runtime's working directory.
func Run(ctx context.Context, p Point, list []specs.Hook, state *specs.State) error {
	return RunWith(ctx, p, list, state, Options{})
}

// Options are what a point of the lifecycle gives its hooks besides the
// state.
type Options struct {
	// Env is for a hook without an env of its own: the startContainer
	// hooks get the container process's environment, as runc's inherit it
	// from the init they run from.
	Env []string
	// Dir is the hooks' working directory when not empty: the
	// createContainer hooks run in the container's root, as runc's do (a
	// hook that works on ./lib means the container's), before the root
	// switch.
	Dir string
}

// RunWith is Run with opts. A failure reads "error running POINT hook #N
// (PATH): why", N counted from 0, as runc words it: tools and tests grep
// for "error running createRuntime hook #1:".
func RunWith(ctx context.Context, p Point, list []specs.Hook, state *specs.State, opts Options) error {
	if len(list) == 0 {
		return nil
	}
	input, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode state for %s hooks: %w", p, err)
	}
	for i, h := range list {
		if err := runOne(ctx, h, input, opts); err != nil {
			return fmt.Errorf("error running %s hook #%d: %s: %w", p, i, h.Path, err)
		}
	}
	return nil
}

func runOne(ctx context.Context, h specs.Hook, input []byte, opts Options) error {
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	// A hook never sees the runtime's environment.
	cmd.Env = h.Env
	if len(cmd.Env) == 0 {
		cmd.Env = opts.Env
	}
	cmd.Dir = opts.Dir
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Don't wait for pipes held open by a daemon the hook left behind.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if cerr := ctx.Err(); err != nil && cerr != nil {
		// The hook's own timeout, or the caller's deadline or cancel (a
		// hook without a timeout has only the caller's).
		if h.Timeout != nil && errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %ds: %w", *h.Timeout, cerr)
		}
		return fmt.Errorf("stopped before it finished: %w", cerr)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
