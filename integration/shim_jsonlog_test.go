package integration

// The container's json-file log, written by Berth's shim itself when the
// spec has the io.berth.log.* annotations (logs/jsonfile), whatever the
// task's stdio is.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/berthrt/berth/logs/jsonfile"
)

func TestBerthShimJSONLog(t *testing.T) {
	c := startShimContainerd(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *ctrd)
	}{
		{"NullIO", shimLogNullIO},
		{"CompleteAtExit", shimLogCompleteAtExit},
		{"Restart", shimLogRestart},
		{"Rotation", shimLogRotation},
		{"TTY", shimLogTTY},
		{"Attached", shimLogAttached},
		{"BinaryDriver", shimLogBinaryDriver},
		{"ExecNotLogged", shimLogExecNotLogged},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c.sub(t)) })
	}
}

// logEntry is one line of a json-file log.
type logEntry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// readLog reads a json-file log; a missing file is no entries.
func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []logEntry
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, line, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || !strings.HasSuffix(e.Time, "Z") {
			t.Errorf("%s: time %q is not RFC 3339 in UTC: %v", path, e.Time, err)
		}
		out = append(out, e)
	}
	return out
}

// logText is a log's entries as "stream:log" strings.
func logText(es []logEntry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Stream+":"+e.Log)
	}
	return out
}

// logStreams is a log's lines per stream, "stdout|stderr": the two
// streams are copied apart, so only the order within one is kept.
func logStreams(es []logEntry) string {
	var out, errs []string
	for _, e := range es {
		if e.Stream == "stderr" {
			errs = append(errs, e.Log)
		} else {
			out = append(out, e.Log)
		}
	}
	return strings.Join(out, "") + "|" + strings.Join(errs, "")
}

// logContainer makes a container under the Berth shim whose spec has
// the log annotations (a log under the test's temporary directory) and
// returns it and the log's path.
func logContainer(t *testing.T, c *ctrd, annotations map[string]string, opts ...oci.SpecOpts) (containerd.Container, string) {
	t.Helper()
	return newLogContainer(t, c, true, annotations, nil, opts...)
}

// newLogContainer is logContainer with labels, and without the log
// annotation unless withLog.
func newLogContainer(t *testing.T, c *ctrd, withLog bool, annotations, labels map[string]string, opts ...oci.SpecOpts) (containerd.Container, string) {
	t.Helper()
	cl, ctx := c.client()
	img, err := cl.GetImage(ctx, ctrdImage)
	if err != nil {
		t.Fatal(err)
	}
	id := c.container(t)
	path := filepath.Join(t.TempDir(), "containers", id, id+"-json.log")
	a := map[string]string{}
	if withLog {
		a[jsonfile.AnnotationPath] = path
	}
	for k, v := range annotations {
		a[k] = v
	}
	opts = append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithAnnotations(a)}, opts...)
	ctr, err := cl.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(opts...), containerd.WithRuntime(berthRuntime, nil), containerd.WithContainerLabels(labels))
	if err != nil {
		t.Fatal(err)
	}
	return ctr, path
}

// runTask creates and starts a task of ctr with the stdio of creator,
// waits for its exit and deletes it, returning the exit code.
func runTask(t *testing.T, c *ctrd, ctr containerd.Container, creator cio.Creator) uint32 {
	t.Helper()
	return runTaskAtExit(t, c, ctr, creator, func() {})
}

// runTaskAtExit is runTask with atExit called once the exit is known,
// before the task is deleted.
func runTaskAtExit(t *testing.T, c *ctrd, ctr containerd.Container, creator cio.Creator, atExit func()) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ctrdNamespace), time.Minute)
	defer cancel()
	task, err := ctr.NewTask(ctx, creator)
	if err != nil {
		t.Fatalf("new task: %v%s", err, c.diagnostics())
	}
	ch, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start: %v%s", err, c.diagnostics())
	}
	var st containerd.ExitStatus
	select {
	case st = <-ch:
	case <-ctx.Done():
		t.Fatalf("the task did not exit%s", c.diagnostics())
	}
	atExit()
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	return st.ExitCode()
}

// With no stdio at all (berth run -d), the output is in the log, with
// its streams and an unfinished last line, by the time the exit is
// known; the log and its directory are made root's and private.
func shimLogNullIO(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, nil, oci.WithProcessArgs("sh", "-c", "echo out; echo err >&2; printf 'no newline'"))
	if code := runTask(t, c, ctr, cio.NullIO); code != 0 {
		t.Fatalf("exit %d", code)
	}
	es := readLog(t, path)
	if got, want := logStreams(es), "out\nno newline|err\n"; got != want || len(es) != 3 {
		t.Errorf("log has %q, want %q in three entries", logText(es), want)
	}
	for p, mode := range map[string]os.FileMode{path: 0o640, filepath.Dir(path): 0o710} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
}

// Every line is in the log once the task's exit is known (before its
// delete, which drains the output anyway), so a follower that stops at
// the exit misses none: even with an attached client that reads slowly,
// so that the output is still being copied when the program exits.
func shimLogCompleteAtExit(t *testing.T, c *ctrd) {
	const lines = 20000
	ctr, path := logContainer(t, c, nil, oci.WithProcessArgs("seq", "1", strconv.Itoa(lines)))
	var out syncBuffer
	slow := slowWriter{w: &out, delay: 50 * time.Millisecond}
	runTaskAtExit(t, c, ctr, cio.NewCreator(cio.WithStreams(nil, slow, slow), cio.WithFIFODir(c.FifoDir)), func() {
		es := readLog(t, path)
		if len(es) != lines || es[len(es)-1].Log != strconv.Itoa(lines)+"\n" {
			t.Errorf("at the exit, the log has %d entries, want %d", len(es), lines)
		}
	})
}

// slowWriter is a client that takes its time over each write.
type slowWriter struct {
	w     io.Writer
	delay time.Duration
}

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.w.Write(p)
}

// A new task of the same container goes on in the same log.
func shimLogRestart(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, nil, oci.WithProcessArgs("sh", "-c", "echo run"))
	for range 2 {
		runTask(t, c, ctr, cio.NullIO)
	}
	if got := logText(readLog(t, path)); strings.Join(got, "|") != "stdout:run\n|stdout:run\n" {
		t.Errorf("log after two runs has %q, want two lines", got)
	}
}

// max-size and max-file rotate the log as docker's json-file driver
// does: <path>.1 holds the older lines, nothing beyond max-file is kept,
// and the newest line is in <path>.
func shimLogRotation(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, map[string]string{jsonfile.AnnotationMaxSize: "300", jsonfile.AnnotationMaxFile: "2"},
		oci.WithProcessArgs("sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo line$i; done"))
	runTask(t, c, ctr, cio.NullIO)
	cur, older := readLog(t, path), readLog(t, path+".1")
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Errorf("%s.2 exists (%v): max-file 2 keeps two files", path, err)
	}
	if len(cur) == 0 || len(older) == 0 {
		t.Fatalf("current log %q, rotated %q: want both", logText(cur), logText(older))
	}
	all := append(older, cur...)
	if all[len(all)-1].Log != "line20\n" {
		t.Errorf("newest entry %q, want line20", all[len(all)-1].Log)
	}
	// Kept lines are consecutive and end at the newest.
	for i, e := range all {
		if want := "line" + strconv.Itoa(21-len(all)+i) + "\n"; e.Log != want {
			t.Errorf("entry %d is %q, want %q", i, e.Log, want)
		}
	}
	for _, p := range []string{path, path + ".1"} {
		// At most one entry (< 100 bytes) past max-size.
		if fi, err := os.Stat(p); err == nil && fi.Size() > 400 {
			t.Errorf("%s is %d bytes, max-size 300", p, fi.Size())
		}
	}
}

// nullTTY is no stdio with a terminal: the task's pty output reaches only
// the log.
type nullTTY struct{}

func (nullTTY) Config() cio.Config { return cio.Config{Terminal: true} }
func (nullTTY) Cancel()            {}
func (nullTTY) Wait()              {}
func (nullTTY) Close() error       { return nil }

// A terminal's output is logged as stdout, "\r\n" and all, also with no
// client reading it.
func shimLogTTY(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, nil, oci.WithTTY, oci.WithProcessArgs("sh", "-c", "echo on the tty; echo also >&2"))
	runTask(t, c, ctr, func(string) (cio.IO, error) { return nullTTY{}, nil })
	got := logText(readLog(t, path))
	want := []string{"stdout:on the tty\r\n", "stdout:also\r\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log has %q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer the stdio copies may write while the test
// reads.
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

// An attached client (foreground berth run) gets the output, and so does
// the log.
func shimLogAttached(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, nil, oci.WithProcessArgs("sh", "-c", "echo to both; echo err >&2"))
	var out, errs syncBuffer
	runTask(t, c, ctr, cio.NewCreator(cio.WithStreams(nil, &out, &errs), cio.WithFIFODir(c.FifoDir)))
	if out.String() != "to both\n" || errs.String() != "err\n" {
		t.Errorf("client got %q and %q", out.String(), errs.String())
	}
	if got := logStreams(readLog(t, path)); got != "to both\n|err\n" {
		t.Errorf("log has %q", got)
	}
}

// A logging binary (binary://) gets the output, and so does the log.
func shimLogBinaryDriver(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, nil, oci.WithProcessArgs("sh", "-c", "echo to-driver; echo err-driver >&2"))
	logger, out := writeLoggerScript(t)
	runTask(t, c, ctr, cio.BinaryIO(logger, map[string]string{"out": out}))
	if got := logStreams(readLog(t, path)); got != "to-driver\n|err-driver\n" {
		t.Errorf("log has %q", got)
	}
	c.waitLoggerOutput(out, "to-driver\n", "err-driver\n")
}

// Exec'd processes are not logged, as with docker.
func shimLogExecNotLogged(t *testing.T, c *ctrd) {
	ctr, path := logContainer(t, c, nil, oci.WithProcessArgs("sh", "-c", "echo init; exec sleep 300"))
	_, ctx := c.client()
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Args = []string{"echo", "from exec"}
	var out syncBuffer
	proc, err := task.Exec(ctx, "e1", &pspec, cio.NewCreator(cio.WithStreams(nil, &out, &out), cio.WithFIFODir(c.FifoDir)))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := proc.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-ch
	proc.Delete(ctx)
	if out.String() != "from exec\n" {
		t.Errorf("exec printed %q", out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(readLog(t, path)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := logText(readLog(t, path)); strings.Join(got, "|") != "stdout:init\n" {
		t.Errorf("log has %q, want only the init's line", got)
	}
}
