package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
