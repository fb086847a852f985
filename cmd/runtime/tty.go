package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer"
)

// wantsTerminal peeks at the bundle's process.terminal.
func wantsTerminal(bundle string) bool {
	if bundle == "" {
		bundle = "."
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var peek struct {
		Process *struct {
			Terminal bool `json:"terminal"`
		} `json:"process"`
	}
	return json.Unmarshal(b, &peek) == nil && peek.Process != nil && peek.Process.Terminal
}

// runWithTerminal gives the caller's terminal to a process that wants one
// and has no --console-socket to send it to, as runc does: the runtime
// listens on a console socket of its own, takes the pty master, puts its
// own terminal in raw mode and relays both ways, with window resizes,
// until the process exits. start is called with the socket path and our
// terminal's size (nil without one), for the process's terminal to start
// at: the first resize below can come after the process has looked.
func runWithTerminal(start func(sock string, size *specs.Box, ready func()) (waiter, error)) (int, error) {
	dir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return -1, fmt.Errorf("console socket: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return -1, fmt.Errorf("console socket: %w", err)
	}
	defer ln.Close()
	masters := make(chan *os.File, 1)
	// The master arrives while create runs, before start lets the program
	// run: ONLCR is cleared long before the program writes.
	go func() {
		m, _ := libcontainer.ReceivePty(ln)
		if m != nil {
			clearONLCR(m)
		}
		masters <- m
	}()

	sigs, ready, stop := catchSignals(false)
	defer stop()
	w, err := start(sock, terminalSize(), ready)
	if err != nil {
		return -1, err
	}
	var master *os.File
	select {
	case master = <-masters:
	case <-time.After(10 * time.Second):
	}
	if master == nil {
		syscall.Kill(w.Pid(), syscall.SIGKILL)
		w.Wait()
		return -1, errors.New("the container's terminal never arrived on the console socket")
	}
	defer master.Close()
	restore := makeRaw(os.Stdin)
	defer restore()
	resize(master)
	go io.Copy(master, os.Stdin)
	copied := make(chan struct{})
	go func() { io.Copy(os.Stdout, master); close(copied) }()

	done := make(chan struct{})
	go relayTerminalSignals(w.Pid(), master, sigs, done)
	code, err := w.Wait()
	close(done)
	// Drain what the process wrote last; a background process that still
	// holds the terminal must not keep us here.
	select {
	case <-copied:
	case <-time.After(time.Second):
	}
	return code, err
}

// relayTerminalSignals resizes the pty when our terminal is resized (the
// kernel then signals the process's foreground group) and forwards the
// other signals.
func relayTerminalSignals(pid int, master *os.File, sigs <-chan os.Signal, done <-chan struct{}) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-winch:
			resize(master)
		case s := <-sigs:
			if s != syscall.SIGWINCH {
				syscall.Kill(pid, s.(syscall.Signal))
			}
		case <-done:
			return
		}
	}
}

// terminalSize is our terminal's size, nil without a terminal.
func terminalSize() *specs.Box {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return nil
	}
	return &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
}

// resize copies our terminal's size to the pty; without a terminal of our
// own there is nothing to copy.
func resize(master *os.File) {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
}

// clearONLCR stops the pty turning the program's "\n" into "\r\n", as
// runc does for the terminal it relays: our own terminal (raw, below)
// already ends lines as the caller's terminal does, and output captured
// through script(1) or a pipe then reads as the program wrote it. A
// console socket's receiver (a shim) gets the pty as the kernel makes it.
func clearONLCR(master *os.File) {
	fd := int(master.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return
	}
	t.Oflag &^= unix.ONLCR
	unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// makeRaw puts f in raw mode if it is a terminal, and returns how to undo
// it: keystrokes such as ^C must reach the container's terminal, not ours.
func makeRaw(f *os.File) func() {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if unix.IoctlSetTermios(fd, unix.TCSETS, &raw) != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}
