package process

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	containerdconsole "github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/logs/jsonfile"
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
	pio, err := newPipeIO(ctx, "id", "ns", s, -1, -1, noReaper{}, nil)
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
	pio, err := newPipeIO(context.Background(), "id", "ns", Stdio{}, -1, -1, noReaper{}, nil)
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
	if _, err := newPipeIO(context.Background(), "id", "ns", Stdio{Stdout: "gopher://x"}, -1, -1, noReaper{}, nil); err == nil {
		t.Fatal("an unknown stdout scheme was accepted")
	}
}

// openTestLog opens a json-file log in a temporary directory.
func openTestLog(t *testing.T) (*jsonfile.Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c", "c-json.log")
	w, err := jsonfile.Open(jsonfile.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

// clientFifo makes a fifo at path and opens the client's reader on it
// (first, as containerd's cio does), closed when the test ends.
func clientFifo(t *testing.T, path string) *os.File {
	t.Helper()
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// loggedPipeIO is newPipeIO with a log, started: the process's stdout
// and stderr, and the log's path.
func loggedPipeIO(t *testing.T, s Stdio) (pout, perr *os.File, logPath string, pio *pipeIO) {
	t.Helper()
	w, logPath := openTestLog(t)
	pio, err := newPipeIO(context.Background(), "id", "ns", s, -1, -1, noReaper{}, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pio.Close() })
	_, out, errf := pio.Files()
	pout, perr = dup(t, out), dup(t, errf)
	pio.Started()
	return pout, perr, logPath, pio
}

// logged reads a json-file log as "stream:log" strings.
func logged(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		var e struct{ Log, Stream, Time string }
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Time == "" {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e.Stream+":"+e.Log)
	}
	return out
}

// With a log, the output goes there whatever the client's stdio is:
// fifos (and then to both), a file:// log, or nothing at all.
func TestPipeIOLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stdio  func(dir string) Stdio
		client bool // fifos to read
	}{
		{name: "no stdio", stdio: func(string) Stdio { return Stdio{} }},
		{name: "fifos", client: true, stdio: func(dir string) Stdio {
			return Stdio{Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err")}
		}},
		{name: "file", stdio: func(dir string) Stdio { return Stdio{Stdout: "file://" + filepath.Join(dir, "file.log")} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := tc.stdio(dir)
			var outR, errR *os.File
			if tc.client {
				outR, errR = clientFifo(t, s.Stdout), clientFifo(t, s.Stderr)
			}
			pout, perr, path, pio := loggedPipeIO(t, s)
			ctx := context.Background()
			io.WriteString(pout, "one\ntw")
			io.WriteString(perr, "err\n")
			io.WriteString(pout, "o\nlast")
			pout.Close()
			perr.Close()
			if tc.client {
				gotOut, _ := io.ReadAll(outR)
				gotErr, _ := io.ReadAll(errR)
				if string(gotOut) != "one\ntwo\nlast" || string(gotErr) != "err\n" {
					t.Errorf("client read %q and %q", gotOut, gotErr)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := pio.Wait(wctx); err != nil {
				t.Fatalf("copies did not finish: %v", err)
			}
			got := logged(t, path)
			sort.Strings(got) // stdout and stderr are copied apart
			want := []string{"stderr:err\n", "stdout:last", "stdout:one\n", "stdout:two\n"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("log has %q, want %q", got, want)
			}
		})
	}
}

// A terminal's output is logged as stdout, with or without a client.
func TestConsoleLog(t *testing.T) {
	for _, withClient := range []bool{false, true} {
		t.Run(map[bool]string{false: "no client", true: "client"}[withClient], func(t *testing.T) {
			pty, slavePath, err := containerdconsole.NewPty()
			if err != nil {
				t.Skipf("no pty: %v", err)
			}
			master, err := nonBlocking(os.NewFile(pty.Fd(), "ptmx"))
			if err != nil {
				t.Fatal(err)
			}
			slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				t.Fatal(err)
			}
			var s Stdio
			var outR *os.File
			if withClient {
				s.Stdout = filepath.Join(t.TempDir(), "out")
				if err := unix.Mkfifo(s.Stdout, 0o600); err != nil {
					t.Fatal(err)
				}
				if outR, err = os.OpenFile(s.Stdout, os.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
					t.Fatal(err)
				}
				defer outR.Close()
			}
			w, path := openTestLog(t)
			c, err := newConsole(context.Background(), master, s, w)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(slave, "hello\n")
			slave.Close() // the process exits: the master reads EIO
			wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Wait(wctx); err != nil {
				t.Fatalf("copy did not finish: %v", err)
			}
			// The terminal turned "\n" into "\r\n".
			if got := logged(t, path); len(got) != 1 || got[0] != "stdout:hello\r\n" {
				t.Errorf("log has %q, want one stdout line hello\\r\\n", got)
			}
			if withClient {
				if got, _ := io.ReadAll(outR); string(got) != "hello\r\n" {
					t.Errorf("client read %q", got)
				}
			}
		})
	}
}

// With a log, a client that stops reading (detached, or gone) does not
// hold the container's output back for more than clientStallTimeout: the
// log gets it all. One that reads, however slowly, still gets every byte.
func TestPipeIOClientStall(t *testing.T) {
	old := clientStallTimeout
	clientStallTimeout = 200 * time.Millisecond
	t.Cleanup(func() { clientStallTimeout = old })
	line := strings.Repeat("x", 1023) + "\n"
	const lines = 1024 // 1 MiB: far more than a pipe and a fifo hold
	for _, reading := range []bool{false, true} {
		t.Run(map[bool]string{false: "client gone", true: "slow client"}[reading], func(t *testing.T) {
			s := Stdio{Stdout: filepath.Join(t.TempDir(), "out")}
			outR := clientFifo(t, s.Stdout)
			pout, perr, path, pio := loggedPipeIO(t, s)
			perr.Close()
			ctx := context.Background()
			got := make(chan int, 1)
			if reading {
				go func() {
					n := 0
					buf := make([]byte, 4096)
					for {
						k, err := outR.Read(buf)
						n += k
						if err == io.EOF {
							break
						}
						// Slower than the program writes, never stalled
						// for clientStallTimeout.
						time.Sleep(time.Millisecond)
					}
					got <- n
				}()
			}
			go func() {
				for range lines {
					io.WriteString(pout, line)
				}
				pout.Close()
			}()
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := pio.Wait(wctx); err != nil {
				t.Fatalf("the copy did not finish: %v", err)
			}
			if n := len(logged(t, path)); n != lines {
				t.Errorf("log has %d lines, want %d", n, lines)
			}
			if reading {
				if n := <-got; n != lines*len(line) {
					t.Errorf("the slow client got %d bytes, want %d", n, lines*len(line))
				}
			}
		})
	}
}
