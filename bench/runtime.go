package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runtime is one OCI runtime binary with its own state root, so that the two
// runtimes never see each other's containers.
type runtime struct {
	label, path, root string
	// errFile receives each command's stderr. A file, not a pipe: after
	// `create` the container's init keeps the inherited stderr open, and
	// waiting for EOF on a pipe would hang until the container exits.
	errFile string
	// live holds ids that may still exist, for cleanup after a failure.
	live map[string]bool
}

// newRuntime prepares a runtime whose --root and stderr file live under tmp.
func newRuntime(label, path, tmp string) *runtime {
	return &runtime{
		label:   label,
		path:    path,
		root:    filepath.Join(tmp, "root-"+strings.ReplaceAll(label, " ", "-")),
		errFile: filepath.Join(tmp, "stderr-"+strings.ReplaceAll(label, " ", "-")),
		live:    map[string]bool{},
	}
}

// exec runs `RT --root ROOT args...` and returns its wall time. A non-zero
// exit is an error that quotes the command and its stderr.
func (r *runtime) exec(ctx context.Context, args ...string) (time.Duration, error) {
	errf, err := os.Create(r.errFile)
	if err != nil {
		return 0, err
	}
	defer errf.Close()
	cmd := exec.CommandContext(ctx, r.path, append([]string{"--root", r.root}, args...)...)
	cmd.Stderr = errf // stdin and stdout stay /dev/null
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		msg, _ := os.ReadFile(r.errFile)
		return took, fmt.Errorf("%s %s: %v\nstderr: %s", r.label, strings.Join(cmd.Args[1:], " "),
			err, bytes.TrimSpace(msg))
	}
	return took, nil
}

// version is the first line of `RT --version`, for the header only.
func (r *runtime) version() string {
	out, err := exec.Command(r.path, "--version").Output()
	if err != nil {
		return "version unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// cleanup force-deletes every container that may be left behind. It uses a
// fresh context with a timeout: the run's context may already be cancelled
// by ^C, and one stuck runtime must not keep the others' containers alive.
func (r *runtime) cleanup() {
	for id := range r.live {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// An error usually means the container is already gone.
		r.exec(ctx, "delete", "--force", id)
		cancel()
		delete(r.live, id)
	}
}
