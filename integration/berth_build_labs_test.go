package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The course's Dockerfile labs (chapter 1.7.2) built and run with berth,
// on a Debian base image: debootstrap's minbase of bookworm from the
// mirror the host's apt uses, made once and kept as a tar in
// labsCacheDir (keyed by suite, variant, architecture and mirror), then
// `berth import`ed by each test. The packages (python3; apache2 with
// PHP) come from that mirror through apt-get in the builds' RUN steps,
// on berth's default network, as the course's docker builds get them.

// labsCacheDir keeps the Debian base between runs.
const labsCacheDir = "/var/cache/berth-test"

// debianRef is the base image's name in each test's berth.
const debianRef = "berthtest/debian:bookworm"

// labsBuildTimeout bounds one build that installs packages.
const labsBuildTimeout = 15 * time.Minute

// hostDebianMirror is the first archive the host's apt sources name for
// bookworm (deb822 .sources or one-line .list), else deb.debian.org.
func hostDebianMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	files = append(append(files, "/etc/apt/sources.list"), lists...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := bookwormURI(string(data), strings.HasSuffix(f, ".sources")); m != "" {
			return m
		}
	}
	return "http://deb.debian.org/debian"
}

// bookwormURI is the URI of the first deb entry of suite bookworm in a
// sources file.
func bookwormURI(text string, deb822 bool) string {
	if !deb822 {
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 0 && f[0] == "deb" {
				f = f[1:]
				if len(f) > 0 && strings.HasPrefix(f[0], "[") { // [arch=… signed-by=…]
					for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
						f = f[1:]
					}
					if len(f) > 0 {
						f = f[1:]
					}
				}
				if len(f) >= 2 && f[1] == "bookworm" {
					return strings.TrimSuffix(f[0], "/")
				}
			}
		}
		return ""
	}
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, s := range strings.Fields(fields["suites"]) {
			if s == "bookworm" {
				if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
					return strings.TrimSuffix(uris[0], "/")
				}
			}
		}
	}
	return ""
}

// debianBase imports the Debian base image (some 180 MB) into b as debianRef, making
// (and caching) it with debootstrap first when no earlier run did. The
// test skips, saying why, only when debootstrap is not installed or the
// mirror does not answer: every build after it needs that mirror too.
func debianBase(t *testing.T, b *berthCLI) {
	t.Helper()
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		if debootstrap, err = exec.LookPath("/usr/sbin/debootstrap"); err != nil {
			t.Skipf("the course's Debian labs need debootstrap for their base image (hack/deps.sh installs it): %v", err)
		}
	}
	mirror := hostDebianMirror()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(mirror + "/dists/bookworm/Release")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
	}
	if err != nil {
		t.Skipf("the course's Debian labs need the host's Debian mirror %s (for debootstrap and apt-get in RUN), which does not answer: %v", mirror, err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{"bookworm", "minbase", runtime.GOARCH, mirror, "v2"}, " ")))
	tarball := filepath.Join(labsCacheDir, "debian-bookworm-minbase-"+runtime.GOARCH+"-"+hex.EncodeToString(sum[:6])+".tar")
	if err := os.MkdirAll(labsCacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One maker at a time (two test binaries, or CI beside a developer).
	lock, err := os.OpenFile(tarball+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tarball); err != nil {
		makeDebianTar(t, debootstrap, mirror, tarball)
	} else {
		t.Logf("Debian base: cached %s", tarball)
	}
	start := time.Now()
	b.mustRun("import", "-c", `CMD ["bash"]`, tarball, debianRef)
	t.Logf("Debian base: imported in %v", time.Since(start).Round(time.Millisecond))
}

// makeDebianTar runs debootstrap and writes its root filesystem as a tar
// at tarball (through a temp file, so a failed run leaves none), without
// the device nodes debootstrap makes (a container gets its own /dev).
func makeDebianTar(t *testing.T, debootstrap, mirror, tarball string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "bookworm", root, mirror).CombinedOutput()
	if err != nil {
		t.Fatalf("debootstrap --variant=minbase bookworm %s: %v\n%s", mirror, err, tail(string(out), 20))
	}
	t.Logf("Debian base: debootstrap --variant=minbase bookworm %s took %v", mirror, time.Since(start).Round(time.Second))
	tmp := tarball + ".tmp"
	tarOut, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "-C", root,
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./var/cache/apt/archives/*.deb",
		// What Debian's -slim images leave out too: apt's lists and
		// caches (every build here runs apt-get update) and the
		// documentation and translations; half the size, and the import
		// each test does takes half the time.
		"--exclude=./var/lib/apt/lists/*_*", "--exclude=./var/cache/apt/*.bin",
		"--exclude=./usr/share/doc/*", "--exclude=./usr/share/man/*", "--exclude=./usr/share/info/*", "--exclude=./usr/share/locale/*",
		"-cf", tmp, ".").CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		t.Fatalf("tar the Debian root filesystem: %v\n%s", err, tarOut)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		os.Remove(tmp)
		t.Fatal(err)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// courseLabs is the course's working directory: its three Dockerfiles
// and scripts side by side, as `docker build -f Dockerfile-env .` wants.
var courseLabs = map[string]string{
	// Shell Env: a default message that -e MSG=… replaces, written to a
	// log file in /tmp and shown.
	"Dockerfile-env": `FROM ` + debianRef + `
ENV MSG="default message from the Dockerfile"
CMD echo "$MSG" > /tmp/xxx.log && cat /tmp/xxx.log
`,
	// Python Argparse Env: argparse's defaults from MSG1 and MSG2.
	"Dockerfile-env-python": `FROM ` + debianRef + `
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
ENV MSG1="default msg1" MSG2="default msg2"
WORKDIR /app
COPY app.py .
CMD ["python3", "app.py"]
`,
	"app.py": `import argparse
import os

parser = argparse.ArgumentParser(description="print two messages")
parser.add_argument("--msg1", default=os.environ.get("MSG1"))
parser.add_argument("--msg2", default=os.environ.get("MSG2"))
args = parser.parse_args()
print("msg1:", args.msg1)
print("msg2:", args.msg2)
`,
	// Same Image for Different Scripts: the script is $APP, in the
	// bind-mounted /workspace.
	"Dockerfile-env-python2": `FROM ` + debianRef + `
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
ENV APP=/workspace/app1.py
WORKDIR /workspace
CMD python3 "$APP"
`,
	"app1.py": "print('app1: the default script')\n",
	"app2.py": "import os\nprint('app2: the new script, in', os.getcwd())\n",
}

// TestBerthBuildLabs: the course's labs, one subtest each, in one
// networked berth (builds and containers on the default bridge network,
// as docker's) that imports the Debian base once.
func TestBerthBuildLabs(t *testing.T) {
	b, _ := newNetworkedBerth(t)
	slow := *b
	slow.timeout = labsBuildTimeout
	debianBase(t, &slow)
	pwd := buildContext(t, courseLabs)
	t.Run("ShellEnv", func(t *testing.T) { labShellEnv(t, b.on(t), slow.on(t), pwd) })
	t.Run("Python", func(t *testing.T) { labPython(t, b.on(t), slow.on(t), pwd) })
	t.Run("Apache", func(t *testing.T) { labApache(t, b.on(t), slow.on(t)) })
}

// on is b reporting to t, a subtest of b's test.
func (b *berthCLI) on(t *testing.T) *berthCLI {
	c := *b
	c.t = t
	return &c
}

// labShellEnv: the course's Shell Env lab.
func labShellEnv(t *testing.T, b, slow *berthCLI, pwd string) {
	start := time.Now()
	labsBuild(t, slow, "-t", "img1", "-f", filepath.Join(pwd, "Dockerfile-env"), pwd)
	t.Logf("build -f Dockerfile-env: %v", time.Since(start).Round(time.Millisecond))
	if out := b.mustRun("run", "--name", "ct1", "--rm", "img1").stdout; out != "default message from the Dockerfile\n" {
		t.Errorf("run img1: got %q, want the default message", out)
	}
	if out := b.mustRun("run", "--name", "ct2", "--rm", "-e", "MSG=111", "img1").stdout; out != "111\n" {
		t.Errorf("run -e MSG=111 img1: got %q, want 111", out)
	}
}

// labPython: the course's Python Argparse Env and Same Image for
// Different Scripts labs; python3 is installed once, the second
// Dockerfile's identical RUN comes from the cache.
func labPython(t *testing.T, b, slow *berthCLI, pwd string) {
	start := time.Now()
	labsBuild(t, slow, "-t", "img1", "-f", filepath.Join(pwd, "Dockerfile-env-python"), pwd)
	t.Logf("build -f Dockerfile-env-python (apt-get install python3): %v", time.Since(start).Round(time.Millisecond))
	if out := b.mustRun("run", "--name", "ct1", "--rm", "img1").stdout; out != "msg1: default msg1\nmsg2: default msg2\n" {
		t.Errorf("run img1: got %q, want the default messages", out)
	}
	if out := b.mustRun("run", "--name", "ct2", "--rm", "-e", "MSG1=aaa", "-e", "MSG2=bbb", "img1").stdout; out != "msg1: aaa\nmsg2: bbb\n" {
		t.Errorf("run -e MSG1=aaa -e MSG2=bbb img1: got %q", out)
	}

	start = time.Now()
	res := labsBuild(t, slow, "-t", "img1", "-f", filepath.Join(pwd, "Dockerfile-env-python2"), pwd)
	t.Logf("build -f Dockerfile-env-python2: %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(res.stdout, "Step 2/5 : RUN apt-get update") || !strings.Contains(res.stdout, "---> Using cache") {
		t.Errorf("the python3 step of Dockerfile-env-python2 did not come from the cache:\n%s", res.stdout)
	}
	if out := b.mustRun("run", "--name", "ct2", "--rm", "-v", pwd+":/workspace", "img1").stdout; out != "app1: the default script\n" {
		t.Errorf("run -v $(pwd):/workspace img1: got %q, want the default script's line", out)
	}
	if out := b.mustRun("run", "--name", "ct2", "--rm", "-v", pwd+":/workspace", "-e", "APP=/workspace/app2.py", "img1").stdout; out != "app2: the new script, in /workspace\n" {
		t.Errorf("run -v $(pwd):/workspace -e APP=/workspace/app2.py img1: got %q, want app2's line", out)
	}
}

// labApache: the course's Apache2 Web Server lab: apache2 with PHP
// serving phpinfo() on -p 8885:80, fetched with curl from the host on
// localhost.
func labApache(t *testing.T, b, slow *berthCLI) {
	pwd := buildContext(t, map[string]string{
		"Dockerfile": `FROM ` + debianRef + `
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends apache2 libapache2-mod-php && rm -rf /var/lib/apt/lists/*
COPY index.php /var/www/html/index.php
RUN rm /var/www/html/index.html
EXPOSE 80
CMD ["apachectl", "-D", "FOREGROUND"]
`,
		"index.php": "<?php phpinfo() ?>\n",
	})
	start := time.Now()
	labsBuild(t, slow, "-t", "apache2-demo", pwd)
	t.Logf("build apache2-demo (apt-get install apache2 libapache2-mod-php): %v", time.Since(start).Round(time.Millisecond))
	if h := b.mustRun("history", "--format", "{{.CreatedBy}}", "apache2-demo").stdout; !strings.Contains(h, "COPY index.php /var/www/html/index.php") {
		t.Errorf("history lacks the COPY step:\n%s", h)
	}

	port := 8885
	if l, err := net.Listen("tcp", "127.0.0.1:8885"); err != nil {
		port = int(freePort(t))
		t.Logf("port 8885 is taken on this host (%v): publishing on %d instead", err, port)
	} else {
		l.Close()
	}
	b.mustRun("run", "-d", "--name", "apache2-demo", "-p", fmt.Sprintf("%d:80", port), "apache2-demo")
	url := fmt.Sprintf("http://localhost:%d/", port)
	body := curl(t, url, "PHP Version")
	if !strings.Contains(body, "<title>PHP ") || !strings.Contains(body, "apache2handler") {
		t.Errorf("GET %s: not phpinfo() under apache2's PHP module:\n%.600s", url, body)
	}
}

// labsBuild runs `berth build ARGS` with the RUN steps on the default
// bridge network, as the course's docker builds, unless the host resolves
// names only on its own loopback: a step on a network then gets docker's
// public resolvers, which a machine without internet cannot reach, so the
// steps share the host's network instead (and the test says so).
func labsBuild(t *testing.T, slow *berthCLI, args ...string) result {
	t.Helper()
	if loopbackResolverOnly() {
		t.Log("the host resolves names only on its loopback: building with --network host to reach its Debian mirror")
		args = append([]string{"--network", "host"}, args...)
	}
	return slow.mustRun(append([]string{"build"}, args...)...)
}

// loopbackResolverOnly says whether the host has no name server but on
// loopback (systemd-resolved's 127.0.0.53; with none listed, or no
// resolv.conf, the C library asks loopback too).
func loopbackResolverOnly() bool {
	data, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() {
				return false
			}
		}
	}
	return true
}

// curl fetches url from the host as the course does (curl, or Go's
// client where curl is not installed) until the page contains want,
// while the server starts.
func curl(t *testing.T, url, want string) string {
	t.Helper()
	fetch := func() (string, error) {
		if path, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command(path, "-sS", "--max-time", "5", url).CombinedOutput()
			return string(out), err
		}
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, err := fetch()
		if err == nil && strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("curl %s: no %q within a minute: %v\n%.600s", url, want, err, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestBookwormURI: the mirror the labs' base comes from is read from
// either form of apt's sources.
func TestBookwormURI(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		deb822     bool
		want       string
	}{
		{"one-line", "# comment\ndeb http://mirror.test/debian/ bookworm main\ndeb http://security.test bookworm-security main\n", false, "http://mirror.test/debian"},
		{"one-line with options", "deb-src http://src.test/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.test/debian bookworm main\n", false, "http://mirror.test/debian"},
		{"one-line, other suites only", "deb http://mirror.test/debian bullseye main\n", false, ""},
		{"deb822", "Types: deb\n# http://snapshot.test\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://security.test\nSuites: bookworm-security\n", true, "http://mirror.test/debian"},
		{"deb822, disabled stanza first", "Enabled: no\nTypes: deb\nURIs: http://off.test\nSuites: bookworm\n\nTypes: deb deb-src\nURIs: http://on.test/debian/\nSuites: bookworm\n", true, "http://on.test/debian"},
	} {
		if got := bookwormURI(tc.text, tc.deb822); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
