package integration

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/berthrt/berth/integration/image"
)

// runToExit makes a container of image named name (the berth/name label)
// through containerd's Go client, runs args in it to the end and leaves
// the stopped container (and its rootfs snapshot) for the test to commit.
func runToExit(t *testing.T, socket, image, id, name string, args ...string) {
	t.Helper()
	client, err := containerd.New(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), "default"), time.Minute)
	defer cancel()
	img, err := client.GetImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewContainer(ctx, id,
		containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(args...)),
		containerd.WithContainerLabels(map[string]string{"berth/name": name}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client, err := containerd.New(socket)
		if err != nil {
			return // the test's containerd is gone, and its state with it
		}
		defer client.Close()
		ctx := namespaces.WithNamespace(context.Background(), "default")
		if c, err := client.LoadContainer(ctx, id); err == nil {
			c.Delete(ctx, containerd.WithSnapshotCleanup)
		}
	})
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := <-exited; st.ExitCode() != 0 {
		t.Fatalf("%v in %s: exit %d, %v", args, image, st.ExitCode(), st.Error())
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBerthHistoryCommitPrune shows history rows, commits a container's
// changes (found by berth name and by containerd ID) into an image that
// runs with them, and prunes dangling and unused images.
func TestBerthHistoryCommitPrune(t *testing.T) {
	b, dir, _ := busyboxBerth(t)
	socket := filepath.Join(dir, "st", "c.sock")

	res := b.mustRun("history", "berthtest/busybox")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^[0-9a-f]{12} +\d+ years ago +berth integration/image +[\d.]+[kM]B *$`).MatchString(lines[1]) {
		t.Fatalf("history of the busybox image:\n%s", res.stdout)
	}

	runToExit(t, socket, "docker.io/berthtest/busybox:latest", "berth-commit-src", "committer", "sh", "-c", "echo committed > /hello")
	res = b.mustRun("commit", "-m", "add hello", "-a", "Berth Test", "-c", `CMD ["cat", "/hello"]`, "committer", "berthtest/committed:v1")
	id := strings.TrimSpace(res.stdout)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("commit: %q, want the new image's ID", res.stdout)
	}
	if res := b.mustRun("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "berthtest/committed"); res.stdout != "berthtest/committed:v1 "+id[7:19]+"\n" {
		t.Fatalf("images after commit: %q", res.stdout)
	}
	res = b.mustRun("history", "berthtest/committed:v1")
	lines = strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^`+id[7:19]+` +(Less than a second|About a second|\d+ seconds?) ago +sh -c echo committed > /hello +\d+(\.\d+)?k?B +add hello$`).MatchString(lines[1]) ||
		!strings.HasPrefix(lines[2], "<missing> ") {
		t.Fatalf("history after commit:\n%s", res.stdout)
	}
	if res := b.mustRun("history", "-q", "--no-trunc", "berthtest/committed:v1"); res.stdout != id+"\n<missing>\n" {
		t.Fatalf("history -q --no-trunc: %q", res.stdout)
	}
	if res := b.mustRun("image", "inspect", "-f", "{{.Author}} {{json .Config.Cmd}} {{len .RootFS.Layers}}", "berthtest/committed:v1"); res.stdout != `Berth Test ["cat","/hello"] 2`+"\n" {
		t.Fatalf("image inspect after commit: %q", res.stdout)
	}
	if out := ctrRun(t, dir, "docker.io/berthtest/committed:v1", "berth-commit-run"); out != "committed\n" {
		t.Fatalf("the committed image ran: %q, want its file", out)
	}

	// By containerd ID, untagged: a dangling image, which prune removes.
	dangling := strings.TrimSpace(b.mustRun("commit", "berth-commit-src").stdout)
	if res := b.mustRun("images"); !strings.Contains(res.stdout, "\n<none>   ") && !regexp.MustCompile(`(?m)^<none> +<none> +`+dangling[7:19]).MatchString(res.stdout) {
		t.Fatalf("images after an untagged commit:\n%s", res.stdout)
	}
	if res := b.run("commit", "nosuch"); res.code != 125 || !strings.Contains(res.stderr, "No such container: nosuch") {
		t.Fatalf("commit of an unknown container: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.runInput(strings.NewReader("n\n"), "image", "prune"); res.code != 0 || !strings.Contains(res.stdout, "Are you sure you want to continue? [y/N]") || strings.Contains(res.stdout, "deleted") {
		t.Fatalf("image prune answered no: exit %d, stdout %q", res.code, res.stdout)
	}
	res = b.mustRun("image", "prune", "-f")
	if !strings.HasPrefix(res.stdout, "Deleted Images:\ndeleted: "+dangling+"\n\nTotal reclaimed space: ") {
		t.Fatalf("image prune -f:\n%s", res.stdout)
	}
	// -a: every image no container uses; the committer's busybox stays.
	res = b.mustRun("image", "prune", "-a", "-f")
	if !strings.Contains(res.stdout, "untagged: berthtest/committed:v1\ndeleted: "+id+"\n") || strings.Contains(res.stdout, "busybox") {
		t.Fatalf("image prune -a -f:\n%s", res.stdout)
	}
	if res := b.mustRun("images", "--format", "{{.Repository}}"); res.stdout != "berthtest/busybox\n" {
		t.Fatalf("images after prune -a: %q", res.stdout)
	}
}

// busyboxBerth is a managed berth with the busybox test image
// loaded as berthtest/busybox:latest.
func busyboxBerth(t *testing.T) (*berthCLI, string, string) {
	b, dir := newManagedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })
	archive := filepath.Join(dir, "busybox.tar")
	writeArchive(t, archive, func(w io.Writer) error { return image.Busybox(w, "docker.io/berthtest/busybox:latest") })
	b.mustRun("load", "-i", archive)
	return b, dir, archive
}
