package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/daemon/logger/jsonfilelog/jsonlog"

	"github.com/berthrt/berth/logs/jsonfile"
)

// t0 is the time of the first test entry; entry i is i seconds later.
var t0 = time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)

// appendEntries appends entries "<stream>:<log>" to path, the i-th of
// them (counting from first) at t0+i seconds.
func appendEntries(t *testing.T, path string, first int, entries ...string) {
	t.Helper()
	var b bytes.Buffer
	for i, e := range entries {
		stream, log, _ := strings.Cut(e, ":")
		m := jsonlog.JSONLogs{Log: []byte(log), Stream: stream, Created: t0.Add(time.Duration(first+i) * time.Second)}
		if err := m.MarshalJSONBuf(&b); err != nil {
			t.Fatal(err)
		}
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// testLog is a log of three files: c.log.2 has a1 a2, c.log.1 b1 (and an
// error line e1), c.log c1 c2, at t0+0s … t0+5s.
func testLog(t *testing.T) jsonfile.Config {
	cfg := jsonfile.Config{Path: filepath.Join(t.TempDir(), "c.log"), MaxFile: 3}
	appendEntries(t, cfg.Path+".2", 0, "stdout:a1\n", "stdout:a2\n")
	appendEntries(t, cfg.Path+".1", 2, "stdout:b1\n", "stderr:e1\n")
	appendEntries(t, cfg.Path, 4, "stdout:c1\n", "stdout:c2\n")
	return cfg
}

func TestRead(t *testing.T) {
	all := Options{Tail: -1}
	for _, tc := range []struct {
		name       string
		opts       Options
		out, errs  string
		mutateLog  func(t *testing.T, cfg *jsonfile.Config)
		wantErrSub string
	}{
		{name: "all", opts: all, out: "a1\na2\nb1\nc1\nc2\n", errs: "e1\n"},
		{name: "tail 0", opts: Options{Tail: 0}},
		{name: "tail 1", opts: Options{Tail: 1}, out: "c2\n"},
		{name: "tail 2 in one file", opts: Options{Tail: 2}, out: "c1\nc2\n"},
		{name: "tail over files", opts: Options{Tail: 5}, out: "a2\nb1\nc1\nc2\n", errs: "e1\n"},
		{name: "tail over the whole log", opts: Options{Tail: 100}, out: "a1\na2\nb1\nc1\nc2\n", errs: "e1\n"},
		{name: "since", opts: Options{Tail: -1, Since: t0.Add(3 * time.Second)}, out: "c1\nc2\n", errs: "e1\n"},
		{name: "until", opts: Options{Tail: -1, Until: t0.Add(2 * time.Second)}, out: "a1\na2\nb1\n"},
		{name: "since and until", opts: Options{Tail: -1, Since: t0.Add(time.Second), Until: t0.Add(2 * time.Second)}, out: "a2\nb1\n"},
		{name: "tail then since", opts: Options{Tail: 3, Since: t0.Add(4500 * time.Millisecond)}, out: "c2\n"},
		{name: "timestamps", opts: Options{Tail: 2, Timestamps: true},
			out: "2026-12-02T11:00:04.000000000Z c1\n2026-12-02T11:00:05.000000000Z c2\n"},
		{name: "fewer files kept", opts: all, out: "b1\nc1\nc2\n", errs: "e1\n",
			mutateLog: func(t *testing.T, cfg *jsonfile.Config) { cfg.MaxFile = 2 }},
		{name: "missing rotated file", opts: Options{Tail: 3}, out: "a2\nc1\nc2\n",
			mutateLog: func(t *testing.T, cfg *jsonfile.Config) { os.Remove(cfg.Path + ".1") }},
		{name: "no log yet", opts: all,
			mutateLog: func(t *testing.T, cfg *jsonfile.Config) { cfg.Path = filepath.Join(t.TempDir(), "none.log") }},
		{name: "pieces of a long line", opts: all, out: "a1\na2\nb1\nc1\nc2\nlong line\n", errs: "e1\n",
			mutateLog: func(t *testing.T, cfg *jsonfile.Config) {
				appendEntries(t, cfg.Path, 6, "stdout:long ", "stdout:line\n")
			}},
		{name: "unfinished last entry is left for later", opts: all, out: "a1\na2\nb1\nc1\nc2\n", errs: "e1\n",
			mutateLog: func(t *testing.T, cfg *jsonfile.Config) {
				f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
				f.WriteString(`{"log":"half`)
				f.Close()
			}},
		{name: "corrupt entry", opts: all, wantErrSub: "decode log entry",
			mutateLog: func(t *testing.T, cfg *jsonfile.Config) {
				f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
				f.WriteString("not json\n")
				f.Close()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testLog(t)
			if tc.mutateLog != nil {
				tc.mutateLog(t, &cfg)
			}
			var out, errs bytes.Buffer
			err := Read(context.Background(), cfg, tc.opts, &out, &errs)
			if tc.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
					t.Fatalf("err %v, want one with %q", err, tc.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.out || errs.String() != tc.errs {
				t.Errorf("stdout %q, stderr %q; want %q, %q", out.String(), errs.String(), tc.out, tc.errs)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer a follower writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until buf holds want, or fails after a deadline.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for buf.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", buf.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFollow(t *testing.T) {
	for _, tc := range []struct {
		name string
		// act changes the log (entries are numbered from 10 on) after the
		// follower showed what was there.
		act  func(t *testing.T, cfg jsonfile.Config)
		want string // after the starting "c1\nc2\n"
	}{
		{name: "appends", want: "d1\nd2\n", act: func(t *testing.T, cfg jsonfile.Config) {
			appendEntries(t, cfg.Path, 10, "stdout:d1\n")
			appendEntries(t, cfg.Path, 11, "stdout:d2\n")
		}},
		{name: "rotation", want: "d1\nd2\n", act: func(t *testing.T, cfg jsonfile.Config) {
			appendEntries(t, cfg.Path, 10, "stdout:d1\n")
			os.Rename(cfg.Path+".1", cfg.Path+".2")
			os.Rename(cfg.Path, cfg.Path+".1")
			appendEntries(t, cfg.Path, 11, "stdout:d2\n")
		}},
		{name: "truncation", want: "d1\n", act: func(t *testing.T, cfg jsonfile.Config) {
			os.Truncate(cfg.Path, 0)
			appendEntries(t, cfg.Path, 10, "stdout:d1\n")
		}},
		{name: "an entry written in two parts", want: "d1\n", act: func(t *testing.T, cfg jsonfile.Config) {
			f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
			defer f.Close()
			f.WriteString(`{"log":"d1\n",`)
			time.Sleep(3 * pollInterval) // the follower sees the half
			f.WriteString(`"stream":"stdout","time":"2026-12-02T11:00:10Z"}` + "\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testLog(t)
			ended := make(chan struct{})
			var out, errs syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- Read(context.Background(), cfg, Options{Tail: 2, Follow: true, Ended: ended}, &out, &errs)
			}()
			waitFor(t, &out, "c1\nc2\n")
			tc.act(t, cfg)
			waitFor(t, &out, "c1\nc2\n"+tc.want)
			// The end: what was logged before it is still shown.
			appendEntries(t, cfg.Path, 20, "stderr:last\n")
			close(ended)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the follower did not end")
			}
			if errs.String() != "last\n" {
				t.Errorf("stderr %q, want the line logged before the end", errs.String())
			}
		})
	}
}

// A follower of a log that the shim's writer rotates fast shows, without
// an error, lines in order up to the last one (lines of a file rotated
// away between two looks are gone, as with docker).
func TestFollowWriterRotation(t *testing.T) {
	for _, maxFile := range []int{1, 2} {
		t.Run(fmt.Sprintf("max-file %d", maxFile), func(t *testing.T) {
			cfg := jsonfile.Config{Path: filepath.Join(t.TempDir(), "c.log"), MaxSize: 300, MaxFile: maxFile}
			w, err := jsonfile.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ended := make(chan struct{})
			var out syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- Read(context.Background(), cfg, Options{Tail: -1, Follow: true, Ended: ended}, &out, &out)
			}()
			s := w.Stream("stdout")
			const lines = 500
			for i := 1; i <= lines; i++ {
				if _, err := fmt.Fprintf(s, "%d\n", i); err != nil {
					t.Fatal(err)
				}
			}
			close(ended)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(out.String())
			if len(got) == 0 || got[len(got)-1] != fmt.Sprint(lines) {
				t.Fatalf("follower showed %v, want lines up to %d", got, lines)
			}
			prev := 0
			for _, g := range got {
				var n int
				fmt.Sscan(g, &n)
				if n <= prev {
					t.Fatalf("follower showed %v: out of order at %d", got, n)
				}
				prev = n
			}
		})
	}
}

// A follower of a log that does not exist yet shows it once it comes; one
// with --until stops at that time; one whose context ends returns.
func TestFollowEnds(t *testing.T) {
	t.Run("log made later", func(t *testing.T) {
		cfg := jsonfile.Config{Path: filepath.Join(t.TempDir(), "c.log"), MaxFile: 1}
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- Read(ctx, cfg, Options{Tail: -1, Follow: true}, &out, &out) }()
		appendEntries(t, cfg.Path, 0, "stdout:first\n")
		waitFor(t, &out, "first\n")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("until", func(t *testing.T) {
		cfg := testLog(t)
		var out syncBuffer
		start := time.Now()
		until := start.Add(300 * time.Millisecond)
		err := Read(context.Background(), cfg, Options{Tail: 1, Follow: true, Until: until}, &out, &out)
		want := "c2\n"
		if t0.Add(5 * time.Second).After(until) { // a machine clock before the entries
			want = ""
		}
		if err != nil || out.String() != want {
			t.Fatalf("Read = %v, output %q; want %q", err, out.String(), want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("follow with until ran %v", d)
		}
	})
}

func TestParseTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{"", -1, false}, {"all", -1, false}, {"ALL", -1, false}, {"0", 0, false}, {"5", 5, false}, {"-1", -1, false}, {"x", 0, true},
	} {
		got, err := ParseTail(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseTail(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrBadOption) {
			t.Errorf("ParseTail(%q) error %v is not ErrBadOption", tc.in, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: ""},
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "2026-12-02T11:00:00Z", want: time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)},
		{in: "2026-12-02T11:00:00.5+01:00", want: time.Date(2026, 12, 2, 10, 0, 0, 5e8, time.UTC)},
		{in: "2026-12-02", want: time.Date(2026, 12, 2, 0, 0, 0, 0, now.Location())},
		{in: "1796209200", want: time.Unix(1796209200, 0)},
		{in: "1796209200.25", want: time.Unix(1796209200, 25e7)},
		{in: "yesterday", err: true},
		{in: "2026-13-02", err: true},
	} {
		got, err := ParseTime("since", tc.in, now)
		if tc.err {
			if err == nil || !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), "--since") {
				t.Errorf("ParseTime(%q) = %v, %v; want an error naming --since", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
