package process

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type noReaper struct{}

func (noReaper) Track(int, func(Exit)) {}
func (noReaper) Hold() func()          { return func() {} }

// dup stands for the process holding its end of a pipe.
func dup(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), f.Name())
}

// The client's fifos get everything the process wrote, even after it
// exited; stdin reaches EOF once CloseIO and the client have closed it.
func TestPipeIOFifos(t *testing.T) {
	dir := t.TempDir()
	s := Stdio{Stdin: filepath.Join(dir, "in"), Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err")}
	for _, p := range []string{s.Stdin, s.Stdout, s.Stderr} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The client opens its read ends first, as containerd's cio does.
	outR, err := os.OpenFile(s.Stdout, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	errR, err := os.OpenFile(s.Stderr, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	ctx := context.Background()
	pio, err := newPipeIO(ctx, "id", "ns", s, -1, -1, noReaper{})
	if err != nil {
		t.Fatal(err)
	}
	defer pio.Close()
	in, out, errf := pio.Files()
	pin, pout, perr := dup(t, in), dup(t, out), dup(t, errf)
	pio.Started()

	inW, err := os.OpenFile(s.Stdin, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(inW, "typed")
	inW.Close()
	if err := pio.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(pin)
	if err != nil || string(got) != "typed" {
		t.Errorf("process read stdin %q (%v), want %q then EOF", got, err, "typed")
	}

	big := make([]byte, 200<<10) // more than a pipe and a fifo hold
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	go func() {
		pout.Write(big)
		perr.Write([]byte("oops"))
		pout.Close()
		perr.Close() // the process exits
	}()
	gotOut, _ := io.ReadAll(outR)
	gotErr, _ := io.ReadAll(errR)
	if string(gotOut) != string(big) || string(gotErr) != "oops" {
		t.Errorf("client read %d bytes of stdout (want %d) and stderr %q", len(gotOut), len(big), gotErr)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pio.Wait(wctx); err != nil {
		t.Errorf("copies did not finish: %v", err)
	}
}

// No stdio at all: the process gets /dev/null.
func TestPipeIONull(t *testing.T) {
	pio, err := newPipeIO(context.Background(), "id", "ns", Stdio{}, -1, -1, noReaper{})
	if err != nil {
		t.Fatal(err)
	}
	defer pio.Close()
	for _, f := range []*os.File{pio.proc[0], pio.proc[1], pio.proc[2]} {
		if f == nil || f.Name() != os.DevNull {
			t.Errorf("stdio %v, want %s", f, os.DevNull)
		}
	}
	pio.Started()
}

func TestPipeIOBadScheme(t *testing.T) {
	if _, err := newPipeIO(context.Background(), "id", "ns", Stdio{Stdout: "gopher://x"}, -1, -1, noReaper{}); err == nil {
		t.Fatal("an unknown stdout scheme was accepted")
	}
}
