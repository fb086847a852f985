package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/integration/registry"
)

// TestBerthCourse runs the course's command list (course/course.sh) with
// berth in docker's place: a registry on 127.0.0.1 is docker.io's mirror
// and holds the course's ubuntu:focal and hello-world, made here from the
// host's busybox with `berth import`; a second registry, with a password,
// is the account the course logs in to and pushes to. Every line must
// succeed; a failure names the line and shows what it printed.
func TestBerthCourse(t *testing.T) {
	for _, tool := range []string{"/bin/busybox", "script"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (busybox-static, util-linux): %v", tool, err)
		}
	}
	// Registered first, so it runs last: the failures end the test's output,
	// after every cleanup's (CI shows a failed test's last lines).
	var report []string
	t.Cleanup(func() {
		if len(report) > 0 {
			t.Logf("course.sh failed lines (again):\n%s", strings.Join(report, "\n"))
		}
	})
	hub := registry.Start(t, registry.Options{})
	const user, password = "student", "focal-course"
	account := registry.Start(t, registry.Options{Users: map[string]string{user: password}})
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	b, dir := newNetworkedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })
	t.Cleanup(func() { // first: what a failed or killed script left running
		if ids := strings.Fields(b.run("ps", "-aq").stdout); len(ids) > 0 {
			b.run(append([]string{"rm", "-f"}, ids...)...)
		}
	})
	mirror := fmt.Sprintf("[registry.mirrors]\n\"docker.io\" = [%q]\n", hub.URL)
	appendFile(t, b.config, mirror)

	// The hub's images, from local parts.
	rootfs := filepath.Join(dir, "busybox-rootfs.tar")
	writeBusyboxRootfs(t, rootfs)
	for name, cmd := range map[string]string{
		"library/ubuntu:focal":       `CMD ["/bin/sh"]`,
		"library/hello-world:latest": `CMD ["echo", "Hello from Berth!"]`,
	} {
		ref := hub.Host + "/" + name
		b.mustRun("import", "-c", cmd, rootfs, ref)
		b.mustRun("push", ref)
		b.mustRun("rmi", ref)
	}

	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	script := exec.CommandContext(ctx, "bash", filepath.Join("course", "course.sh"))
	script.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=",
		"BERTH_BIN="+b.bin, "BERTH_CONFIG="+b.config, "HUB="+hub.Host, "ACCOUNT_REGISTRY="+account.Host,
		"ACCOUNT_USER="+user, "ACCOUNT_PASSWORD="+password, "WORKDIR="+work)
	var out bytes.Buffer
	script.Stdout, script.Stderr = &out, &out
	err := script.Run()
	t.Logf("course.sh:\n%s", out.String())
	report = courseFailures(out.String())
	for _, failure := range report {
		t.Errorf("%s", failure)
	}
	if err != nil && len(report) == 0 {
		t.Fatalf("course.sh: %v", err)
	}
}

// courseFailures is each FAIL line of course.sh with the output under it.
func courseFailures(out string) []string {
	var failures []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "FAIL "):
			failures = append(failures, line)
		case strings.HasPrefix(line, "    ") && len(failures) > 0:
			failures[len(failures)-1] += "\n" + line
		}
	}
	return failures
}

// writeBusyboxRootfs writes hack/busybox-rootfs.sh's tar of a busybox root
// filesystem to path.
func writeBusyboxRootfs(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("bash", filepath.Join("..", "hack", "busybox-rootfs.sh"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/busybox-rootfs.sh: %v: %s", err, stderr.String())
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
