package libcontainer

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedExe returns a sealed in-memory copy of the running binary. The
// container's init is exec'd from this copy, so /proc/<init>/exe points at
// a memfd that nobody can write, shrink or grow: a process in the container
// that opens it for writing cannot touch the host's berth-runtime
// (the CVE-2019-5736 class).
func sealedExe() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own executable: %w", err)
	}
	defer self.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("create sealed copy of the runtime: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "memfd:berth-runtime")
	// io.Copy between two files uses copy_file_range/sendfile: the bytes
	// never pass through user space.
	if _, err := io.Copy(mem, self); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy the runtime into its sealed copy: %w", err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal the runtime's copy: %w", err)
	}
	return mem, nil
}
