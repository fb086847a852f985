package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthrt/berth/integration/registry"
)

// registryBerth gives t a managed berth with the busybox test image loaded
// as berthtest/busybox:latest, docker's config.json in a temp dir, and a
// registry on 127.0.0.1.
func registryBerth(t *testing.T, opts registry.Options) (*berthCLI, string, *registry.Registry) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	reg := registry.Start(t, opts)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	b, dir, _ := busyboxBerth(t)
	return b, dir, reg
}

// TestBerthPushPull pushes an image built in the test to a real registry,
// removes it, pulls it back and runs it, as a user would; pushes it under
// another name; searches the catalog; and names the reference and the
// registry when an image is not there.
func TestBerthPushPull(t *testing.T) {
	b, dir, reg := registryBerth(t, registry.Options{})
	name := reg.Host + "/berthtest/busybox:v1"
	layer := strings.TrimSpace(b.mustRun("image", "inspect", "-f", "{{index .RootFS.Layers 0}}", "berthtest/busybox").stdout)
	id := strings.TrimSpace(b.mustRun("images", "-q", "berthtest/busybox").stdout)

	b.mustRun("tag", "berthtest/busybox", name)
	res := b.mustRun("push", name)
	pushed := regexp.MustCompile(`(?m)^v1: digest: (sha256:[0-9a-f]{64}) size: \d+$`).FindStringSubmatch(res.stdout)
	if !strings.HasPrefix(res.stdout, "The push refers to repository ["+reg.Host+"/berthtest/busybox]\n") ||
		!regexp.MustCompile(`(?m)^[0-9a-f]{12}: Pushed$`).MatchString(res.stdout) || pushed == nil {
		t.Fatalf("push %s:\n%s", name, res.stdout)
	}

	// Gone from the store, then pulled back: the same manifest and ID.
	b.mustRun("rmi", name)
	b.mustRun("rmi", "berthtest/busybox")
	if res := b.mustRun("images", "-q"); res.stdout != "" {
		t.Fatalf("images after rmi: %q", res.stdout)
	}
	res = b.mustRun("pull", name)
	t.Logf("berth pull %s:\n%s", name, res.stdout)
	for _, want := range []string{
		"v1: Pulling from berthtest/busybox\n",
		"Digest: " + pushed[1] + "\n",
		"Status: Downloaded newer image for " + name + "\n",
		"docker.io/" + name + "\n",
	} {
		if want == "docker.io/"+name+"\n" {
			want = name + "\n" // a registry host is part of the full name already
		}
		if !strings.Contains(res.stdout, want) {
			t.Errorf("pull %s does not say %q:\n%s", name, want, res.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^[0-9a-f]{12}: Pull complete$`).MatchString(res.stdout) {
		t.Errorf("pull %s shows no layer's progress:\n%s", name, res.stdout)
	}
	if res := b.mustRun("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}"); res.stdout != name+" "+id+" "+pushed[1]+"\n" {
		t.Fatalf("images after pull: %q, want %s %s %s", res.stdout, name, id, pushed[1])
	}
	if got := strings.TrimSpace(b.mustRun("image", "inspect", "-f", "{{index .RootFS.Layers 0}}", name).stdout); got != layer {
		t.Fatalf("pulled layer %s, pushed %s", got, layer)
	}
	if out := ctrRun(t, dir, name, "berth-pull-run", "echo", "pulled"); out != "pulled\n" {
		t.Fatalf("the pulled image ran: %q", out)
	}
	if res := b.mustRun("pull", name); !strings.Contains(res.stdout, "Status: Image is up to date for "+name+"\n") {
		t.Fatalf("second pull:\n%s", res.stdout)
	}
	if res := b.mustRun("pull", "-q", name); res.stdout != name+"\n" {
		t.Fatalf("pull -q: %q, want the name alone", res.stdout)
	}

	// By digest: stored under repository@digest, listed with no tag.
	byDigest := reg.Host + "/berthtest/busybox@" + pushed[1]
	if res := b.mustRun("pull", byDigest); strings.Contains(res.stdout, "Pulling from") || !strings.HasSuffix(res.stdout, byDigest+"\n") {
		t.Fatalf("pull by digest:\n%s", res.stdout)
	}
	if res := b.mustRun("images", "--digests", "--format", "{{.Tag}} {{.Digest}}", reg.Host+"/berthtest/busybox"); !strings.Contains(res.stdout, "<none> "+pushed[1]+"\n") {
		t.Fatalf("images after a pull by digest: %q", res.stdout)
	}
	b.mustRun("rmi", byDigest)

	// The same image under another name: its layer is on the registry.
	other := reg.Host + "/other/box:v2"
	b.mustRun("tag", name, other)
	res = b.mustRun("push", other)
	if !regexp.MustCompile(`(?m)^[0-9a-f]{12}: (Mounted from berthtest/busybox|Layer already exists|Pushed)$`).MatchString(res.stdout) ||
		!strings.Contains(res.stdout, "v2: digest: "+pushed[1]) {
		t.Fatalf("push %s:\n%s", other, res.stdout)
	}
	b.mustRun("rmi", other)
	if res := b.mustRun("pull", other); !regexp.MustCompile(`(?m)^[0-9a-f]{12}: Already exists$`).MatchString(res.stdout) {
		t.Fatalf("pull of an image whose layers are here:\n%s", res.stdout)
	}

	res = b.mustRun("search", reg.Host+"/other")
	if !strings.HasPrefix(res.stdout, "NAME ") || !strings.Contains(res.stdout, "\n"+reg.Host+"/other/box ") || strings.Contains(res.stdout, "berthtest") {
		t.Fatalf("search %s/other:\n%s", reg.Host, res.stdout)
	}
	if res := b.mustRun("search", "--format", "{{.Name}}", reg.Host+"/b"); res.stdout != reg.Host+"/berthtest/busybox\n"+reg.Host+"/other/box\n" {
		t.Fatalf("search --format: %q", res.stdout)
	}

	// A mirror from berth.toml serves a registry that is not there
	// (nothing listens at 127.0.0.2:1).
	f, err := os.OpenFile(b.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[registry.mirrors]\n\"127.0.0.2:1\" = [%q]\n", reg.URL)
	f.Close()
	if res := b.mustRun("pull", "127.0.0.2:1/berthtest/busybox:v1"); !strings.Contains(res.stdout, "Digest: "+pushed[1]+"\n") {
		t.Fatalf("pull through a mirror:\n%s", res.stdout)
	}

	missing := reg.Host + "/berthtest/nosuch:1"
	res = b.run("pull", missing)
	if res.code != 125 || !strings.Contains(res.stderr, "manifest for "+missing+" not found") || !strings.Contains(res.stderr, "registry "+reg.Host) {
		t.Fatalf("pull of a missing image: exit %d, stderr %q; want 125 naming %s and the registry", res.code, res.stderr, missing)
	}
	if res := b.run("push", reg.Host+"/never/tagged:1"); res.code != 125 || !strings.Contains(res.stderr, "No such image: "+reg.Host+"/never/tagged:1") {
		t.Fatalf("push of an image not in the store: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestBerthLogin logs in to a registry that wants credentials, as a user
// would: a push is refused before, works after, and is refused again
// after logout; a wrong password is refused; the credentials live in
// docker's config.json.
func TestBerthLogin(t *testing.T) {
	b, _, reg := registryBerth(t, registry.Options{Users: map[string]string{"berth": "s3cret"}})
	name := reg.Host + "/private/busybox:1"
	b.mustRun("tag", "berthtest/busybox", name)

	if res := b.run("push", name); res.code != 125 || !strings.Contains(res.stderr, "push access denied") {
		t.Fatalf("push before login: exit %d, stderr %q; want 125, push access denied", res.code, res.stderr)
	}
	if res := b.run("login", "-u", "berth", "-p", "wrong", reg.Host); res.code != 125 || !strings.Contains(res.stderr, "unauthorized") {
		t.Fatalf("login with a wrong password: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.runInput(strings.NewReader("s3cret\n"), "login", "-u", "berth", "--password-stdin", reg.Host); res.code != 0 || res.stdout != "Login Succeeded\n" {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	body, err := os.ReadFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal(body, &cf); err != nil || cf.Auths[reg.Host].Auth == "" {
		t.Fatalf("config.json after login: %v\n%s", err, body)
	}
	if res := b.mustRun("push", name); !strings.Contains(res.stdout, "1: digest: sha256:") {
		t.Fatalf("push after login:\n%s", res.stdout)
	}
	b.mustRun("rmi", name)
	b.mustRun("pull", "-q", name)
	if res := b.mustRun("search", reg.Host+"/private"); !strings.Contains(res.stdout, reg.Host+"/private/busybox") {
		t.Fatalf("search with credentials:\n%s", res.stdout)
	}

	if res := b.mustRun("logout", reg.Host); res.stdout != "Removing login credentials for "+reg.Host+"\n" {
		t.Fatalf("logout: %q", res.stdout)
	}
	if res := b.mustRun("logout", reg.Host); res.stdout != "Not logged in to "+reg.Host+"\n" {
		t.Fatalf("second logout: %q", res.stdout)
	}
	if res := b.run("pull", name); res.code != 125 {
		t.Fatalf("pull after logout: exit %d, want 125; stderr %q", res.code, res.stderr)
	}
}
