// Package integration holds Berth's end-to-end tests. They need root and
// drive the built binaries (BERTH_RUNTIME, default ../bin/berth-runtime) the
// way a user or another tool does, and check what that user would see.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/integration/bundle"
)

var runtimeBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root; skipping")
		os.Exit(0)
	}
	runtimeBin = os.Getenv("BERTH_RUNTIME")
	if runtimeBin == "" {
		runtimeBin, _ = filepath.Abs("../bin/berth-runtime")
	}
	if _, err := os.Stat(runtimeBin); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime not found at %s: run `make build` or set BERTH_RUNTIME\n", runtimeBin)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// rt is one test's runtime: its own state root, cleaned up at the end.
type rt struct {
	t    *testing.T
	root string
}

func newRT(t *testing.T) *rt {
	t.Helper()
	r := &rt{t: t, root: t.TempDir()}
	t.Cleanup(r.cleanup)
	return r
}

// cleanup deletes every container the test left, by id, even on failure.
func (r *rt) cleanup() {
	res := r.run("list", "-q")
	for _, id := range strings.Fields(res.stdout) {
		if d := r.run("delete", "--force", id); d.code != 0 {
			r.t.Errorf("cleanup: delete %s: %s", id, d.stderr)
		}
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs berth-runtime with the test's root and waits at most a minute.
func (r *rt) run(args ...string) result {
	return r.runWith(nil, nil, args...)
}

// runWith also gives the runtime a stdin and extra fds (from 3 on).
func (r *rt) runWith(stdin *os.File, extra []*os.File, args ...string) result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtimeBin, append([]string{"--root", r.root}, args...)...)
	// Files, not pipes: a created container keeps its stdio open, and a
	// pipe would make Wait hang until the container exits.
	out, errf := tempFile(r.t), tempFile(r.t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, errf
	cmd.ExtraFiles = extra
	err := cmd.Run()
	res := result{stdout: readAll(out), stderr: readAll(errf)}
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
	} else if err != nil {
		r.t.Fatalf("berth-runtime %v: %v", args, err)
	}
	return res
}

// must runs a command that has to succeed.
func (r *rt) must(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("berth-runtime %s: exit %d: %s%s", strings.Join(args, " "), res.code, res.stderr, res.stdout)
	}
	return res.stdout
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(bytes.TrimRight(b, "\x00"))
}

// busybox makes a bundle running args; edit can change the spec.
func busybox(t *testing.T, edit func(*specs.Spec), args ...string) string {
	t.Helper()
	dir := t.TempDir()
	s, err := bundle.Busybox(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(s)
		if err := bundle.WriteSpec(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var idSeq atomic.Int64

// newID gives a container id unique to this run.
func newID(t *testing.T) string {
	return fmt.Sprintf("it-%d-%d", os.Getpid(), idSeq.Add(1))
}

// waitStatus polls `state` until the container has the status.
func (r *rt) waitStatus(id, want string) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Tolerate "does not exist": the container may still be coming.
		res := r.run("state", id)
		var st ociState
		json.Unmarshal([]byte(res.stdout), &st)
		if st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %q (%s), want %q", id, st.Status, res.stderr, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
