// Package registry runs a real image registry for tests: Debian's
// docker-registry (distribution 2.8) on 127.0.0.1 at a free port, with
// its storage in a temp dir, stopped and removed when the test ends.
// Tests push to it and pull from it in place of Docker Hub, which the
// machines here cannot reach.
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is Debian's registry (package docker-registry).
const Binary = "docker-registry"

// Options shape a registry.
type Options struct {
	// Users, when set, turns on htpasswd basic auth with these
	// user → password pairs; a registry without them lets anyone push.
	Users map[string]string
}

// Registry is one running registry.
type Registry struct {
	// Host is host:port, the registry part of an image reference
	// ("127.0.0.1:41234/busybox:latest").
	Host string
	// URL is the registry's base URL, http://Host.
	URL string
}

// Start runs a registry for t and registers its cleanup. It skips t when
// Debian's docker-registry is not installed (hack/deps.sh installs it).
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		t.Skipf("no %s (Debian's docker-registry package; hack/deps.sh installs it): %v", Binary, err)
	}
	dir := t.TempDir()
	host, err := freeAddress()
	if err != nil {
		t.Fatal(err)
	}
	config, err := writeConfig(dir, host, opts)
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", Binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // only the pid this test started
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("registry log, its warnings and errors (last 2 KiB):\n%s", tail(notable(log), 2048))
		}
	})
	r := &Registry{Host: host, URL: "http://" + host}
	if err := r.waitReady(exited, 20*time.Second); err != nil {
		log, _ := os.ReadFile(logFile.Name())
		t.Fatalf("registry at %s: %v\n%s", host, err, tail(log, 4096))
	}
	return r
}

// freeAddress finds a free port on 127.0.0.1. The registry binds it a
// moment later; another process taking it first is possible but makes
// Start fail loudly, not the test lie.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeConfig(dir, host string, opts Options) (string, error) {
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		return "", err
	}
	var auth string
	if len(opts.Users) > 0 {
		var lines []string
		for user, password := range opts.Users {
			hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
			if err != nil {
				return "", fmt.Errorf("htpasswd: %w", err)
			}
			lines = append(lines, user+":"+string(hash))
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return "", err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
	}
	body := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, storage, host, auth)
	config := filepath.Join(dir, "config.yml")
	return config, os.WriteFile(config, []byte(body), 0o600)
}

// waitReady polls /v2/ until the registry answers (200, or 401 with auth).
func (r *Registry) waitReady(exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited before it answered: %w", Binary, errors.Join(err, errors.New("see its log")))
		case <-ctx.Done():
			return fmt.Errorf("no answer at %s/v2/ within %s", r.URL, timeout)
		case <-tick.C:
		}
	}
}

// notable keeps the registry log's lines that are neither access lines nor
// info messages: a failed test's output is read from its end (CI shows the
// last 12 KB), and one pull logs a dozen requests, which would push the
// test's own failure out of sight.
func notable(log []byte) []byte {
	var kept []byte
	for _, line := range bytes.SplitAfter(log, []byte("\n")) {
		if bytes.Contains(line, []byte("level=info")) || bytes.Contains(line, []byte(`HTTP/1.1" `)) {
			continue
		}
		kept = append(kept, line...)
	}
	return kept
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
