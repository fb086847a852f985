package containers

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// namesLock serialises the check that a name is free with the creation
// (or rename) that takes it: containerd has no unique index on labels.
type namesLock struct{ f *os.File }

func lockNames(dataRoot string) (*namesLock, error) {
	dir := filepath.Join(dataRoot, "containers")
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, ".names.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the names lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &namesLock{f: f}, nil
}

// unlock releases the lock (closing the file drops the flock).
func (l *namesLock) unlock() { l.f.Close() }
