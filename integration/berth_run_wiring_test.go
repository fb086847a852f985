package integration

// What `berth run` hands to the other parts: the log the shim writes from
// the annotations run sets, read back by `berth logs`; the image --pull
// fetches from a registry.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/integration/registry"
)

// TestBerthRunLogs: a detached container's output reaches the user
// through `berth logs` alone, by ID, ID prefix or name; --log-opt
// max-size and max-file rotate its log as docker's json-file driver does.
func TestBerthRunLogs(t *testing.T) {
	b, dir := newBerthWithBusybox(t)

	id := strings.TrimSpace(b.mustRun("run", "-d", "--name", "say-hi", busyboxRef, "sh", "-c", "echo hi").stdout)
	if res := b.mustRun("wait", id); res.stdout != "0\n" {
		t.Fatalf("wait: %q", res.stdout)
	}
	for _, ref := range []string{id, id[:12], "say-hi"} {
		if res := b.mustRun("logs", ref); res.stdout != "hi\n" || res.stderr != "" {
			t.Errorf("logs %s: stdout %q, stderr %q; want hi", ref, res.stdout, res.stderr)
		}
	}

	const lines = 200
	id = strings.TrimSpace(b.mustRun("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", busyboxRef,
		"sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i-of-the-rotated-log; i=$((i+1)); done").stdout)
	if res := b.mustRun("wait", id); res.stdout != "0\n" {
		t.Fatalf("wait: %q", res.stdout)
	}
	logPath := filepath.Join(dir, "data", "containers", id, id+"-json.log")
	for _, p := range []string{logPath, logPath + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("the rotated log: %v", err)
		}
		// At most one entry (< 100 bytes) past max-size.
		if fi.Size() > 1024+100 {
			t.Errorf("%s is %d bytes, max-size 1k", p, fi.Size())
		}
	}
	if _, err := os.Stat(logPath + ".2"); !os.IsNotExist(err) {
		t.Errorf("max-file=2 kept %s.2 (%v)", logPath, err)
	}
	first, err := os.ReadFile(logPath + ".1")
	if err != nil {
		t.Fatal(err)
	}
	var entry struct{ Log, Stream, Time string }
	if err := json.Unmarshal([]byte(strings.SplitN(string(first), "\n", 2)[0]), &entry); err != nil || entry.Stream != "stdout" || !strings.HasPrefix(entry.Log, "line-") {
		t.Errorf("the rotated file's first entry: %+v (%v), want a docker json-file entry", entry, err)
	}
	out := strings.Split(strings.TrimSuffix(b.mustRun("logs", id).stdout, "\n"), "\n")
	if len(out) >= lines || out[len(out)-1] != "line-199-of-the-rotated-log" || out[0] == "line-0-of-the-rotated-log" {
		t.Errorf("logs of a rotated log: %d lines from %q to %q; want the newest, ending with line 199", len(out), out[0], out[len(out)-1])
	}
}

// TestBerthRunPull: `berth run` of an image that is not here pulls it from
// the registry, showing the pull on stderr as docker's run does, and runs
// it; --pull always pulls again; --pull never refuses, naming the image.
func TestBerthRunPull(t *testing.T) {
	b, _, reg := registryBerth(t, registry.Options{})
	name := reg.Host + "/berthtest/runpull:v1"
	b.mustRun("tag", "berthtest/busybox", name)
	b.mustRun("push", name)
	b.mustRun("rmi", name)

	if res := b.run("run", "--rm", "--pull", "never", name, "echo", "hi"); res.code != 125 || !strings.Contains(res.stderr, name) {
		t.Errorf("run --pull never of an image not here: exit %d, stderr %q; want 125 naming %s", res.code, res.stderr, name)
	}
	res := b.mustRun("run", "--rm", name, "echo", "hi")
	if res.stdout != "hi\n" || !strings.Contains(res.stderr, "v1: Pulling from berthtest/runpull\n") || !strings.Contains(res.stderr, "Digest: sha256:") {
		t.Fatalf("run of an image not here: stdout %q, stderr %q; want the pull on stderr and hi", res.stdout, res.stderr)
	}
	if res := b.mustRun("images", "-q", name); res.stdout == "" {
		t.Errorf("run did not leave the pulled image %s", name)
	}
	res = b.mustRun("run", "--rm", "--pull", "always", name, "echo", "again")
	if res.stdout != "again\n" || !strings.Contains(res.stderr, "Status: Image is up to date for "+name) {
		t.Errorf("run --pull always: stdout %q, stderr %q; want the pull on stderr", res.stdout, res.stderr)
	}
	missing := reg.Host + "/berthtest/nosuch:1"
	if res := b.run("run", "--rm", missing, "true"); res.code != 125 || !strings.Contains(res.stderr, missing) || !strings.Contains(res.stderr, "registry "+reg.Host) {
		t.Errorf("run of an image the registry lacks: exit %d, stderr %q; want 125 naming %s and the registry", res.code, res.stderr, missing)
	}
	// No container is left by the runs that failed.
	deadline := time.Now().Add(10 * time.Second)
	for b.mustRun("ps", "-aq").stdout != "" {
		if time.Now().After(deadline) {
			t.Fatalf("containers left: %q", b.mustRun("ps", "-a").stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBerthAttach: `berth attach` to a container run with -d -i sends
// berth's stdin to it and shows its output; Ctrl-P Ctrl-Q detaches,
// leaving it running; its exit ends the attach with its status.
func TestBerthAttach(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	b.mustRun("run", "-d", "-i", "--name", "echoer", busyboxRef, "sh", "-c", `while read l; do [ "$l" = quit ] && exit 3; echo got $l; done`)

	if res := b.runInput(strings.NewReader("a\n\x10\x11"), "attach", "echoer"); res.code != 0 {
		t.Fatalf("attach, then Ctrl-P Ctrl-Q: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.mustRun("inspect", "-f", "{{.State.Running}}", "echoer"); res.stdout != "true\n" {
		t.Fatalf("after the detach keys the container is not running: %q", res.stdout)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.mustRun("logs", "echoer").stdout != "got a\n" {
		if time.Now().After(deadline) {
			t.Fatalf("what attach sent did not reach the container: logs %q", b.mustRun("logs", "echoer").stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}

	res := b.runInput(strings.NewReader("b\nquit\n"), "attach", "echoer")
	if res.code != 3 || res.stdout != "got b\n" {
		t.Fatalf("attach until the container exits: exit %d, stdout %q, stderr %q; want 3 and got b", res.code, res.stdout, res.stderr)
	}
	if res := b.run("attach", "echoer"); res.code != 125 || !strings.Contains(res.stderr, "You cannot attach to a stopped container") {
		t.Errorf("attach to a stopped container: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestBerthRunDetach: Ctrl-P Ctrl-Q leaves a `berth run -it --rm` and its
// terminal, the container running on; `berth attach` gets its terminal
// back; its exit ends attach with its status and --rm removes it.
func TestBerthRunDetach(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	cmd := exec.Command(b.bin, "--config", b.config, "run", "-it", "--rm", "--name", "tty-detach", busyboxRef, "sh")
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	p := onPty(t, cmd)
	p.waitFor("# ", 0, 30*time.Second)
	if _, err := p.master.Write([]byte{0x10, 0x11}); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("run -it after Ctrl-P Ctrl-Q: exit %d, want 0", code)
	}
	if res := b.mustRun("inspect", "-f", "{{.State.Running}}", "tty-detach"); res.stdout != "true\n" {
		t.Fatalf("after the detach keys the container is not running: %q", res.stdout)
	}

	cmd = exec.Command(b.bin, "--config", b.config, "attach", "tty-detach")
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	a := onPty(t, cmd)
	a.typeLine("echo attached-$((1+2))")
	a.waitFor("attached-3", 0, 10*time.Second)
	a.typeLine("exit 5")
	if code := a.wait(30 * time.Second); code != 5 {
		t.Errorf("attach until the shell exits: exit %d, want 5", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.mustRun("ps", "-aq", "--filter", "name=tty-detach").stdout != "" {
		if time.Now().After(deadline) {
			t.Fatalf("--rm did not remove the detached container: %s", b.mustRun("ps", "-a").stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
