package jsonfile

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testClock gives 2026-12-02T11:00:00.000000001Z, then one second later
// on each call.
func testClock() func() time.Time {
	t := time.Date(2026, 12, 2, 11, 0, 0, 1, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func openTest(t *testing.T, cfg Config) *Writer {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "c", "c-json.log")
	}
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.now = testClock()
	t.Cleanup(func() { w.Close() })
	return w
}

type entry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

func readEntries(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestWriterFormat(t *testing.T) {
	w := openTest(t, Config{})
	if _, err := w.Stream("stdout").Write([]byte("hello <world> & \"you\"\n")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	// docker's own bytes: HTML characters escaped, RFC 3339 nano UTC.
	want := `{"log":"hello \u003cworld\u003e \u0026 \"you\"\n","stream":"stdout","time":"2026-12-02T11:00:01.000000001Z"}` + "\n"
	if string(b) != want {
		t.Errorf("log is\n%s\nwant\n%s", b, want)
	}
	fi, err := os.Stat(w.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 || perm&0o600 != 0o600 {
		t.Errorf("log mode %v, want 0640 (or narrower by umask)", perm)
	}
	di, err := os.Stat(filepath.Dir(w.cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o007 != 0 {
		t.Errorf("log directory mode %v, want 0710", perm)
	}
}

func TestStreamLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	for _, tc := range []struct {
		name   string
		writes []string // to stdout
		flush  bool
		want   []string
	}{
		{name: "one line", writes: []string{"a\n"}, want: []string{"a\n"}},
		{name: "two lines in one write", writes: []string{"a\nb\n"}, want: []string{"a\n", "b\n"}},
		{name: "empty line", writes: []string{"\n"}, want: []string{"\n"}},
		{name: "line over writes", writes: []string{"he", "ll", "o\nwor", "ld\n"}, want: []string{"hello\n", "world\n"}},
		{name: "unfinished line waits", writes: []string{"a\nprompt> "}, want: []string{"a\n"}},
		{name: "unfinished line at the end", writes: []string{"a\nprompt> "}, flush: true, want: []string{"a\n", "prompt> "}},
		{name: "terminal", writes: []string{"$ ls\r\nbin\r\n"}, want: []string{"$ ls\r\n", "bin\r\n"}},
		{name: "line just under the limit", writes: []string{long[1:] + "\n"}, want: []string{long[1:] + "\n"}},
		{name: "line at the limit", writes: []string{long + "\n"}, want: []string{long, "\n"}},
		{name: "long line in pieces", writes: []string{long[:100], long[100:] + "yz\n"}, want: []string{long, "yz\n"}},
		{name: "two pieces and the rest", writes: []string{long + long + "end\n"}, want: []string{long, long, "end\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := openTest(t, Config{})
			s := w.Stream("stdout")
			for _, p := range tc.writes {
				if n, err := s.Write([]byte(p)); err != nil || n != len(p) {
					t.Fatalf("Write(%q) = %d, %v", p, n, err)
				}
			}
			if tc.flush {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			got := readEntries(t, w.cfg.Path)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, e := range got {
				if e.Log != tc.want[i] || e.Stream != "stdout" {
					t.Errorf("entry %d: %q on %s, want %q on stdout", i, e.Log, e.Stream, tc.want[i])
				}
			}
		})
	}
}

// The pieces of a long line carry the time of its first piece, as
// docker's do; the next line has its own.
func TestPartialLineTimes(t *testing.T) {
	w := openTest(t, Config{})
	s := w.Stream("stderr")
	s.Write([]byte(strings.Repeat("y", MaxLine+10)))
	s.Write([]byte("\nnext\n"))
	got := readEntries(t, w.cfg.Path)
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Time != got[1].Time || got[1].Time == got[2].Time {
		t.Errorf("times %s %s %s: want the pieces of one line to share theirs", got[0].Time, got[1].Time, got[2].Time)
	}
	if got[1].Log != strings.Repeat("y", 10)+"\n" || got[2].Stream != "stderr" {
		t.Errorf("got %+v", got[1:])
	}
}

func TestStreamsInterleave(t *testing.T) {
	w := openTest(t, Config{})
	out, errs := w.Stream("stdout"), w.Stream("stderr")
	out.Write([]byte("o1\no2-"))
	errs.Write([]byte("e1\n"))
	out.Write([]byte("end\n"))
	got := readEntries(t, w.cfg.Path)
	want := []entry{{Log: "o1\n", Stream: "stdout"}, {Log: "e1\n", Stream: "stderr"}, {Log: "o2-end\n", Stream: "stdout"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Log != want[i].Log || got[i].Stream != want[i].Stream {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestRotation(t *testing.T) {
	// Each entry of "lineN\n" is 72 bytes, so a max-size of 100 puts
	// two entries in a file: docker rotates once a file has reached it.
	for _, tc := range []struct {
		name    string
		maxFile int
		lines   int
		want    map[string][]string // file suffix → logs
	}{
		{name: "no rotation", maxFile: 0, lines: 5, want: map[string][]string{"": {"line1\n", "line2\n", "line3\n", "line4\n", "line5\n"}}},
		{name: "one file starts over", maxFile: 1, lines: 5, want: map[string][]string{"": {"line5\n"}, ".1": nil}},
		{name: "two files", maxFile: 2, lines: 5, want: map[string][]string{"": {"line5\n"}, ".1": {"line3\n", "line4\n"}, ".2": nil}},
		{name: "three files", maxFile: 3, lines: 7, want: map[string][]string{
			"": {"line7\n"}, ".1": {"line5\n", "line6\n"}, ".2": {"line3\n", "line4\n"}, ".3": nil,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{MaxFile: tc.maxFile}
			if tc.maxFile > 0 {
				cfg.MaxSize = 100
			}
			w := openTest(t, cfg)
			s := w.Stream("stdout")
			for i := 1; i <= tc.lines; i++ {
				if _, err := s.Write([]byte("line" + string(rune('0'+i)) + "\n")); err != nil {
					t.Fatal(err)
				}
			}
			for suffix, want := range tc.want {
				path := w.cfg.Path + suffix
				if want == nil {
					if _, err := os.Stat(path); !os.IsNotExist(err) {
						t.Errorf("%s exists (%v), want none", path, err)
					}
					continue
				}
				got := readEntries(t, path)
				var logs []string
				for _, e := range got {
					logs = append(logs, e.Log)
				}
				if strings.Join(logs, "") != strings.Join(want, "") {
					t.Errorf("%s has %q, want %q", filepath.Base(path), logs, want)
				}
			}
		})
	}
}

// A container that restarts goes on in the same log, and rotation
// counts what was there.
func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	cfg := Config{Path: path, MaxSize: 100, MaxFile: 2}
	w := openTest(t, cfg)
	w.Stream("stdout").Write([]byte("line1\n"))
	w.Close()
	w = openTest(t, cfg)
	w.Stream("stdout").Write([]byte("line2\nline3\n"))
	if got := readEntries(t, path+".1"); len(got) != 2 || got[0].Log != "line1\n" || got[1].Log != "line2\n" {
		t.Errorf("%s.1 has %+v, want line1 and line2", path, got)
	}
	if got := readEntries(t, path); len(got) != 1 || got[0].Log != "line3\n" {
		t.Errorf("%s has %+v, want line3", path, got)
	}
}

func TestConfigFromAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a       map[string]string
		want    Config
		ok      bool
		wantErr string
	}{
		{name: "none", a: map[string]string{"other": "x"}},
		{name: "path only", a: map[string]string{AnnotationPath: "/var/lib/berth/containers/c/c-json.log"}, ok: true,
			want: Config{Path: "/var/lib/berth/containers/c/c-json.log", MaxFile: 1}},
		{name: "rotation", a: map[string]string{AnnotationPath: "/l/x.log", AnnotationMaxSize: "10485760", AnnotationMaxFile: "3"}, ok: true,
			want: Config{Path: "/l/x.log", MaxSize: 10 << 20, MaxFile: 3}},
		{name: "relative path", a: map[string]string{AnnotationPath: "x.log"}, wantErr: "not an absolute path"},
		{name: "bad size", a: map[string]string{AnnotationPath: "/x.log", AnnotationMaxSize: "10m"}, wantErr: AnnotationMaxSize},
		{name: "bad count", a: map[string]string{AnnotationPath: "/x.log", AnnotationMaxFile: "0"}, wantErr: AnnotationMaxFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := ConfigFromAnnotations(tc.a)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || ok != tc.ok || got != tc.want {
				t.Errorf("got %+v, %v, %v; want %+v, %v", got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

// What berth run sets is what the shim reads.
func TestConfigAnnotationsRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Path: PathFor("/var/lib/berth", "abc"), MaxFile: 1},
		{Path: "/d/c/c-json.log", MaxSize: 10 << 20, MaxFile: 3},
	} {
		got, ok, err := ConfigFromAnnotations(cfg.Annotations())
		if err != nil || !ok || got != cfg {
			t.Errorf("%+v: read back %+v, %v, %v", cfg, got, ok, err)
		}
	}
	if p := PathFor("/var/lib/berth", "abc"); p != "/var/lib/berth/containers/abc/abc-json.log" {
		t.Errorf("PathFor = %s", p)
	}
}

func TestConfigFiles(t *testing.T) {
	got := Config{Path: "/l/c.log", MaxFile: 3}.Files()
	want := []string{"/l/c.log.2", "/l/c.log.1", "/l/c.log"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Files() = %v, want %v", got, want)
	}
}
