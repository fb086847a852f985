package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthrt/berth/integration/bundle"
)

// busyboxRootfsTar writes a plain tar of a busybox-static root filesystem
// directory, as `tar -C rootfs -c .` makes it: what README's quick start
// imports.
func busyboxRootfsTar(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	if _, err := bundle.Busybox(dir, "sh"); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "rootfs"), "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar the rootfs: %v: %s", err, out)
	}
	return tarball
}

// ctrRun runs a container of image in b's managed containerd with ctr (the
// default runtime there is berth's shim) and gives its output.
func ctrRun(t *testing.T, dir, image, id string, args ...string) string {
	t.Helper()
	ctr := filepath.Join(filepath.Dir(berthBin(t)), "ctr")
	socket := filepath.Join(dir, "st", "c.sock")
	cmd := exec.Command(ctr, append([]string{"-a", socket, "-n", "default", "run", "--rm", image, id}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ctr run %s %v: %v: %s%s", image, args, err, out, stderr.String())
	}
	return string(out)
}

// TestBerthImportSave imports a plain tar of a busybox rootfs as a user
// would, runs it, saves it in both archive forms (to a file and to
// stdout), checks the docker-archive with skopeo, and loads it back with
// the same ID and manifest digest.
func TestBerthImportSave(t *testing.T) {
	b, dir := newManagedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })
	tarball := busyboxRootfsTar(t, t.TempDir())

	res := b.mustRun("import", "-m", "from the quick start", "-c", "CMD [\"sh\"]", tarball, "berthtest/imported:v1")
	id := strings.TrimSpace(res.stdout)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("import: stdout %q, want the image ID", res.stdout)
	}
	short := id[7:19]
	if res := b.mustRun("images"); !regexp.MustCompile(`(?m)^berthtest/imported +v1 +` + short + ` +(Less than a second|About a second|\d+ seconds?) ago +[\d.]+[kM]B$`).MatchString(res.stdout) {
		t.Fatalf("images after import:\n%s", res.stdout)
	}
	if res := b.mustRun("image", "inspect", "-f", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{len .RootFS.Layers}}", "berthtest/imported:v1"); !strings.HasPrefix(res.stdout, "linux/") || !strings.HasSuffix(res.stdout, ` ["sh"] 1`+"\n") {
		t.Fatalf("image inspect of the imported image: %q", res.stdout)
	}
	if out := ctrRun(t, dir, "docker.io/berthtest/imported:v1", "berth-import-run", "echo", "hello"); out != "hello\n" {
		t.Fatalf("the imported image ran: %q, want hello", out)
	}

	// From stdin, untagged: listed by its ID alone.
	in, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if res := b.runInput(in, "import", "-"); res.code != 0 || !strings.HasPrefix(res.stdout, "sha256:") {
		t.Fatalf("import -: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if res := b.mustRun("images"); !regexp.MustCompile(`(?m)^<none> +<none> +[0-9a-f]{12} `).MatchString(res.stdout) {
		t.Fatalf("images after an untagged import:\n%s", res.stdout)
	}
	// From a URL, as `docker import URL` does (a server on 127.0.0.1).
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(tarball))))
	defer srv.Close()
	if res := b.mustRun("import", srv.URL+"/rootfs.tar", "berthtest/fromurl:1"); !strings.HasPrefix(res.stdout, "sha256:") {
		t.Fatalf("import URL: %q", res.stdout)
	}
	if res := b.mustRun("history", "--format", "{{.Comment}}", "berthtest/fromurl:1"); res.stdout != "Imported from "+srv.URL+"/rootfs.tar\n" {
		t.Fatalf("history of an image imported from a URL: %q", res.stdout)
	}
	if res := b.run("import", srv.URL+"/nosuch.tar"); res.code != 125 || !strings.Contains(res.stderr, "404 Not Found") {
		t.Fatalf("import of a missing URL: exit %d, stderr %q", res.code, res.stderr)
	}
	notTar := filepath.Join(dir, "not.tar")
	os.WriteFile(notTar, []byte(strings.Repeat("not a tarball\n", 100)), 0o644)
	if res := b.run("import", notTar); res.code != 125 || !strings.Contains(res.stderr, "not a tar archive") {
		t.Fatalf("import of a text file: exit %d, stderr %q", res.code, res.stderr)
	}

	digestBefore := b.mustRun("images", "--format", "{{.Digest}} {{.ID}}", "berthtest/imported:v1").stdout
	dockerArchive := filepath.Join(dir, "imported.tar")
	b.mustRun("save", "-o", dockerArchive, "berthtest/imported:v1")
	if out, err := exec.Command("skopeo", "inspect", "docker-archive:"+dockerArchive).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect docker-archive: %v: %s", err, out)
	} else {
		var got struct {
			Architecture, Os string
			Layers           []string
		}
		if err := json.Unmarshal(out, &got); err != nil || got.Os != "linux" || len(got.Layers) != 1 {
			t.Errorf("skopeo inspect docker-archive: %v: %s", err, out)
		}
	}
	ociArchive := filepath.Join(dir, "imported-oci.tar")
	f, err := os.Create(ociArchive)
	if err != nil {
		t.Fatal(err)
	}
	res = b.runOutput(f, "save", "--format", "oci-archive", "berthtest/imported:v1")
	f.Close()
	if res.code != 0 {
		t.Fatalf("save --format oci-archive to stdout: exit %d: %s", res.code, res.stderr)
	}
	if out, err := exec.Command("skopeo", "inspect", "oci-archive:"+ociArchive).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect oci-archive: %v: %s", err, out)
	}

	// rmi, then load each archive: the same ID and manifest digest.
	for _, archive := range []string{dockerArchive, ociArchive} {
		b.mustRun("rmi", "berthtest/imported:v1")
		if res := b.mustRun("load", "-i", archive); res.stdout != "Loaded image: berthtest/imported:v1\n" {
			t.Fatalf("load -i %s: %q", archive, res.stdout)
		}
		if after := b.mustRun("images", "--format", "{{.Digest}} {{.ID}}", "berthtest/imported:v1").stdout; after != digestBefore {
			t.Fatalf("save → load of %s: %q, want %q", filepath.Base(archive), after, digestBefore)
		}
	}
	// And the other way: a docker-archive skopeo writes loads into berth
	// as the same image.
	fromSkopeo := filepath.Join(dir, "from-skopeo.tar")
	if out, err := exec.Command("skopeo", "copy", "oci-archive:"+ociArchive, "docker-archive:"+fromSkopeo+":berthtest/viaskopeo:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	if res := b.mustRun("load", "-i", fromSkopeo); res.stdout != "Loaded image: berthtest/viaskopeo:1\n" {
		t.Fatalf("load of skopeo's docker-archive: %q", res.stdout)
	}
	if res := b.mustRun("images", "--format", "{{.ID}}", "berthtest/viaskopeo:1"); res.stdout != short+"\n" {
		t.Fatalf("skopeo's archive loaded as %q, want the image ID %s", res.stdout, short)
	}
	if res := b.run("save", "-o", filepath.Join(dir, "x.tar"), "nosuch:1"); res.code != 125 || !strings.Contains(res.stderr, "No such image: nosuch:1") {
		t.Fatalf("save of an unknown image: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !os.IsNotExist(err) {
		t.Fatalf("a failed save left its output file: %v", err)
	}
}
