package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/containerd/console"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/containers"
)

// signalResizer is a started container or exec process.
type signalResizer interface {
	Resize(ctx context.Context, width, height uint32) error
	Kill(ctx context.Context, sig syscall.Signal) error
}

// terminal is berth's side of an attached container: its stdin when -i,
// and with -t the terminal berth runs on (nil when stdin is none).
type terminal struct {
	tty, interactive bool
	con              console.Console
	// detached is closed when the user types the detach keys (-it).
	detached   chan struct{}
	detachOnce sync.Once
}

// terminal checks -i/-t against berth's stdin, as docker does: -it needs
// a terminal on stdin.
func (g *globalOptions) terminal(tty, interactive, detach bool) (*terminal, error) {
	t := &terminal{tty: tty, interactive: interactive}
	if detach || !tty {
		return t, nil
	}
	con, err := console.ConsoleFromFile(os.Stdin)
	switch {
	case err == nil:
		t.con = con
	case interactive:
		return nil, usageError{errors.New("the input device is not a TTY: drop -t, or run berth on a terminal")}
	}
	return t, nil
}

// size is the terminal's (height, width), zero without one.
func (t *terminal) size() [2]uint {
	if t == nil || t.con == nil {
		return [2]uint{}
	}
	ws, err := t.con.Size()
	if err != nil {
		return [2]uint{}
	}
	return [2]uint{uint(ws.Height), uint(ws.Width)}
}

// streams are the container's stdio for an attached start.
func (t *terminal) streams(g *globalOptions) *containers.Streams {
	s := &containers.Streams{Stdout: g.stdout, Stderr: g.stderr, Terminal: t.tty}
	if t.interactive {
		s.Stdin = os.Stdin
	}
	if t.interactive && t.tty {
		// docker's Ctrl-P Ctrl-Q: berth leaves, the container runs on.
		t.detached = make(chan struct{})
		s.Stdin = containers.NewDetachReader(os.Stdin, nil, func() { t.detachOnce.Do(func() { close(t.detached) }) })
	}
	return s
}

// untilDetached is ctx, cancelled when the user types the detach keys.
func (t *terminal) untilDetached(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-t.detached: // nil without -it: never
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// wasDetached says whether the user typed the detach keys.
func (t *terminal) wasDetached() bool {
	select {
	case <-t.detached:
		return true
	default:
		return false
	}
}

// relay puts berth's terminal into raw mode and keeps the container's
// size in step with it; without a tty, it passes the signals berth gets
// to the container, as docker's --sig-proxy does. The returned func
// undoes it all.
func (t *terminal) relay(ctx context.Context, task signalResizer) func() {
	ctx = context.WithoutCancel(ctx)
	sigs := make(chan os.Signal, 8)
	if t.con != nil {
		if err := t.con.SetRaw(); err != nil {
			log.G(ctx).WithError(err).Warn("set the terminal raw")
		}
		resize := func() {
			if size, err := t.con.Size(); err == nil {
				if err := task.Resize(ctx, uint32(size.Width), uint32(size.Height)); err != nil {
					log.G(ctx).WithError(err).Debug("resize the container's terminal")
				}
			}
		}
		resize()
		signal.Notify(sigs, unix.SIGWINCH)
		go func() {
			for range sigs {
				resize()
			}
		}()
	} else {
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		go func() {
			for s := range sigs {
				if err := task.Kill(ctx, s.(syscall.Signal)); err != nil {
					log.G(ctx).WithError(err).Debugf("pass %v to the container", s)
				}
			}
		}()
	}
	return func() {
		signal.Stop(sigs)
		close(sigs)
		if t.con != nil {
			t.con.Reset()
		}
	}
}
