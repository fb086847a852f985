package integration

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthrt/berth/integration/image"
)

// TestBerthImages drives berth's image commands against its managed
// containerd as a user would: load an OCI archive (from -i and from
// stdin) and a docker-archive, list it, tag it, inspect it, refuse to remove a name a
// container uses, untag, delete, and name an unknown image in a 125.
func TestBerthImages(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	b, dir := newManagedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })
	archive := filepath.Join(dir, "busybox.tar")
	writeArchive(t, archive, func(w io.Writer) error { return image.Busybox(w, "docker.io/berthtest/busybox:latest") })

	if res := b.mustRun("load", "-i", archive); res.stdout != "Loaded image: berthtest/busybox:latest\n" {
		t.Fatalf("load -i: stdout %q", res.stdout)
	}
	id := strings.TrimSpace(b.mustRun("images", "-q").stdout)
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("images -q: %q, want one 12-hex image ID", id)
	}
	res := b.mustRun("images")
	row := regexp.MustCompile(`(?m)^berthtest/busybox +latest +` + id + ` +\d+ years ago +[\d.]+[kM]B$`)
	if !strings.HasPrefix(res.stdout, "REPOSITORY ") || !strings.Contains(res.stdout, "IMAGE ID") || !row.MatchString(res.stdout) {
		t.Fatalf("images:\n%s", res.stdout)
	}
	if res := b.mustRun("images", "--digests"); !regexp.MustCompile(`berthtest/busybox +latest +sha256:[0-9a-f]{64} +` + id).MatchString(res.stdout) {
		t.Fatalf("images --digests:\n%s", res.stdout)
	}

	// Loading the same archive from stdin again is idempotent.
	in, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if res := b.runInput(in, "load"); res.code != 0 || res.stdout != "Loaded image: berthtest/busybox:latest\n" {
		t.Fatalf("load from stdin: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	b.mustRun("tag", "berthtest/busybox", "mine:v1")
	if res := b.mustRun("image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); !strings.Contains(res.stdout, "mine:v1 "+id+"\n") ||
		!strings.Contains(res.stdout, "berthtest/busybox:latest "+id+"\n") {
		t.Fatalf("image ls after tag:\n%s", res.stdout)
	}

	if res := b.mustRun("images", "-q", "--no-trunc", "mine"); !regexp.MustCompile(`^sha256:` + id + `[0-9a-f]{52}\n$`).MatchString(res.stdout) {
		t.Fatalf("images -q --no-trunc mine: %q, want the full ID once", res.stdout)
	}
	if res := b.mustRun("images", "--format", "{{.Repository}}", "berthtest/busybox:latest"); res.stdout != "berthtest/busybox\n" {
		t.Fatalf("images berthtest/busybox:latest: %q", res.stdout)
	}
	if res := b.mustRun("image", "inspect", "-f", "{{json .Config.Cmd}} {{.Os}}", "mine:v1"); res.stdout != `["sh"] linux`+"\n" {
		t.Fatalf("image inspect -f: %q", res.stdout)
	}
	var inspected []struct {
		ID       string `json:"Id"`
		RepoTags []string
		Config   struct{ Env []string }
		RootFS   struct{ Layers []string }
	}
	res = b.mustRun("image", "inspect", id)
	if err := json.Unmarshal([]byte(res.stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("image inspect %s: %v\n%s", id, err, res.stdout)
	}
	got := inspected[0]
	if !strings.HasPrefix(got.ID, "sha256:"+id) || strings.Join(got.RepoTags, ",") != "berthtest/busybox:latest,mine:v1" ||
		len(got.RootFS.Layers) != 1 || len(got.Config.Env) != 1 || !strings.HasPrefix(got.Config.Env[0], "PATH=") {
		t.Fatalf("image inspect %s:\n%s", id, res.stdout)
	}

	// A name a container was created from stays unless forced.
	ctr := filepath.Join(filepath.Dir(b.bin), "ctr")
	socket := filepath.Join(dir, "st", "c.sock")
	if out, err := exec.Command(ctr, "-a", socket, "-n", "default", "containers", "create", "docker.io/library/mine:v1", "berth-images-user").CombinedOutput(); err != nil {
		t.Fatalf("ctr containers create: %v: %s", err, out)
	}
	res = b.run("rmi", "mine:v1")
	if res.code != 125 || !strings.Contains(res.stderr, `unable to remove repository reference "mine:v1"`) || !strings.Contains(res.stderr, "container berth-images-user") {
		t.Fatalf("rmi of a used image: exit %d, stderr %q; want 125 naming the container", res.code, res.stderr)
	}
	if out, err := exec.Command(ctr, "-a", socket, "-n", "default", "containers", "rm", "berth-images-user").CombinedOutput(); err != nil {
		t.Fatalf("ctr containers rm: %v: %s", err, out)
	}

	// By ID, an image with two names needs -f.
	if res := b.run("rmi", id); res.code != 125 || !strings.Contains(res.stderr, "referenced in multiple repositories") {
		t.Fatalf("rmi %s with two names: exit %d, stderr %q", id, res.code, res.stderr)
	}
	if res := b.mustRun("rmi", "mine:v1"); res.stdout != "Untagged: mine:v1\n" {
		t.Fatalf("rmi mine:v1: %q", res.stdout)
	}
	if res := b.mustRun("images"); strings.Contains(res.stdout, "mine") || !row.MatchString(res.stdout) {
		t.Fatalf("images after untag:\n%s", res.stdout)
	}

	for _, args := range [][]string{{"image", "inspect", "nosuch:1"}, {"rmi", "nosuch"}, {"tag", "nosuch", "other"}} {
		res := b.run(args...)
		if res.code != 125 || !strings.Contains(res.stderr, "No such image: nosuch") {
			t.Errorf("berth %s: exit %d, stderr %q; want 125 naming nosuch", strings.Join(args, " "), res.code, res.stderr)
		}
	}

	// -f removes every name of an ID, then the image.
	b.mustRun("tag", id, "again:v3")
	res = b.mustRun("image", "rm", "-f", id)
	if !strings.Contains(res.stdout, "Untagged: again:v3\n") || !strings.Contains(res.stdout, "Untagged: berthtest/busybox:latest\n") ||
		!strings.Contains(res.stdout, "Deleted: sha256:"+id) {
		t.Fatalf("image rm -f %s: %q", id, res.stdout)
	}
	if res := b.mustRun("images", "-q"); res.stdout != "" {
		t.Fatalf("images -q after removing the last: %q", res.stdout)
	}

	// The same image as a docker-archive (`docker save`'s classic layout)
	// loads to the same ID: the config is the same blob.
	dockerArchive := filepath.Join(dir, "busybox-docker.tar")
	writeArchive(t, dockerArchive, func(w io.Writer) error { return image.BusyboxDocker(w, "docker.io/berthtest/dockerfmt:v2") })
	if res := b.mustRun("load", "-i", dockerArchive); res.stdout != "Loaded image: berthtest/dockerfmt:v2\n" {
		t.Fatalf("load -i of a docker-archive: stdout %q", res.stdout)
	}
	if res := b.mustRun("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); res.stdout != "berthtest/dockerfmt:v2 "+id+"\n" {
		t.Fatalf("images after loading the docker-archive: %q, want berthtest/dockerfmt:v2 %s", res.stdout, id)
	}
	if res := b.mustRun("image", "inspect", "-f", "{{json .Config.Cmd}}", "berthtest/dockerfmt:v2"); res.stdout != `["sh"]`+"\n" {
		t.Fatalf("image inspect of the docker-archive's image: %q", res.stdout)
	}
	b.mustRun("rmi", "berthtest/dockerfmt:v2")
}

// writeArchive writes an image archive to path with write.
func writeArchive(t *testing.T, path string, write func(io.Writer) error) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
