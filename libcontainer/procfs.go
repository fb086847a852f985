package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	"golang.org/x/sys/unix"
)

// Every write under /proc goes through a procfs handle that pathrs-lite
// has verified: a private procfs instance where the kernel allows one, so
// nothing in the container's rootfs, however it was renamed or replaced
// while create ran, can redirect the write (the CVE-2025-52881 class).

// writeSysctls writes linux.sysctl in init, after its namespaces are
// complete: a private procfs made by init shows init's namespaces, so
// namespaced keys apply to the container.
func writeSysctls(sysctl map[string]string) error {
	if len(sysctl) == 0 {
		return nil
	}
	// sys/ is not in the pid-only view OpenProcRoot gives.
	proc, err := procfs.OpenUnsafeProcRoot()
	if err != nil {
		return fmt.Errorf("sysctl: open a verified procfs: %w", err)
	}
	defer proc.Close()
	for k, v := range sysctl {
		err := writeProcFile(func() (*os.File, error) { return proc.OpenRoot("sys/" + sysctlPath(k)) }, v)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sysctl %s: no such key in this kernel or namespace", k)
		}
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// sysctlPath maps net.ipv4.ip_forward to net/ipv4/ip_forward; a key may use
// '/' already, as sysctl(8) allows.
func sysctlPath(key string) string {
	b := []byte(key)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// writeOOMScoreAdj sets process.oomScoreAdj of a process this runtime
// started, from the host side as runc does: the host's procfs is not the
// container's to change, and the process has run nothing of the
// container's yet.
func writeOOMScoreAdj(pid int, adj *int) error {
	if adj == nil {
		return nil
	}
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("set oomScoreAdj: open a verified procfs: %w", err)
	}
	defer proc.Close()
	err = writeProcFile(func() (*os.File, error) { return proc.OpenPid(pid, "oom_score_adj") }, strconv.Itoa(*adj))
	if err != nil {
		return fmt.Errorf("set oomScoreAdj %d (lowering it needs CAP_SYS_RESOURCE): %w", *adj, err)
	}
	return nil
}

// writeProcFile opens a procfs file through a verified handle (open gives
// an O_PATH one) and writes value to it in one write, as procfs wants.
func writeProcFile(open func() (*os.File, error), value string) error {
	h, err := open()
	if err != nil {
		return err
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(value))
	return err
}
