package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/log"
)

// runtimeName is the binary whose `init` a container's processes start
// from. The shim itself is built without cgo (every start of it skips the
// C runtime's set-up, and containerd starts it three times per
// container), so it cannot be an init: that needs nsenter's constructor
// and libseccomp, which berth-runtime has.
const runtimeName = "berth-runtime"

// FindRuntime returns the absolute path of the berth-runtime binary that
// containers start from: name when given (a path, or a name on PATH),
// else berth-runtime beside the shim's own binary (where `make install`
// puts both), else berth-runtime on PATH.
func FindRuntime(name string) (string, error) {
	if name == "" {
		if self, err := os.Executable(); err == nil {
			beside := filepath.Join(filepath.Dir(self), runtimeName)
			if isExecutable(beside) {
				return beside, nil
			}
		}
		name = runtimeName
	}
	path, err := exec.LookPath(name)
	if err == nil {
		path, err = filepath.Abs(path)
	}
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find %s, which runs the containers' init: install it beside containerd-shim-berth-v2 or on PATH, or set RuntimeBinary in the runtime options: %w", name, err)
		}
		return "", fmt.Errorf("runtime binary %s: %w", name, err)
	}
	return path, nil
}

// RuntimeFor returns the berth-runtime that containers start from, given
// the runtime options: Berth's RuntimeBinary when set; else runc's
// BinaryName when it names a berth-runtime; else FindRuntime's default.
// A BinaryName that names no executable fails, as it fails runc's shim:
// a configuration that names a runtime which is not there is a mistake to
// report, not to paper over. One that names another runtime (runc, from a
// configuration copied from runc's) is ignored: runc cannot be Berth's
// init, and the shim runs containers itself.
func RuntimeFor(ctx context.Context, runtimeBinary, binaryName string) (string, error) {
	if runtimeBinary != "" || binaryName == "" {
		return FindRuntime(runtimeBinary)
	}
	path, err := exec.LookPath(binaryName)
	if err == nil {
		path, err = filepath.Abs(path)
	}
	if err != nil {
		return "", fmt.Errorf("runtime option BinaryName = %q: no such executable (install it, or remove the option): %w", binaryName, err)
	}
	berth, err := isBerthRuntime(ctx, path)
	if err != nil {
		return "", fmt.Errorf("runtime option BinaryName = %q: %w", binaryName, err)
	}
	if berth {
		return path, nil
	}
	log.G(ctx).WithField("binary", path).Info("runtime option BinaryName names a runtime other than berth-runtime; ignored, containers start from berth-runtime")
	return FindRuntime("")
}

// versionTimeout bounds `BINARY --version`: a binary that hangs is not a
// berth-runtime.
const versionTimeout = 5 * time.Second

// isBerthRuntime reports whether path is a berth-runtime, by the first
// word of its `--version` (runc prints "runc version ..."). A binary whose
// --version cannot be run, or fails, is an error, not "another runtime":
// guessing would start the containers from a binary the configuration
// did not name.
func isBerthRuntime(ctx context.Context, path string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return false, fmt.Errorf("%s --version, which tells berth-runtime from other runtimes: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return strings.HasPrefix(string(out), runtimeName+" "), nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// WarmSpawn starts, in the background, the one-time check Go's os package
// makes before it first starts a process: it probes pidfd support by
// cloning a throwaway child. A new shim's first process start, a
// container's init, is on the path of `ctr run`; probing while the shim
// waits for containerd's first request takes it off that path. (`shim
// start` does not: when the shim it needs is running, it starts nothing.)
func WarmSpawn() {
	go func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Release()
		}
	}()
}
