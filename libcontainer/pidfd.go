package libcontainer

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func pidfdOpen(pid int) (int, error) {
	return unix.PidfdOpen(pid, 0)
}

func pidfdSignal(fd int, sig syscall.Signal) error {
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}
