package libcontainer

import (
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ListenFdsFromEnv reads systemd socket activation (sd_listen_fds(3)) the
// way runc does: LISTEN_FDS=N counts only when LISTEN_PID is this
// process, so variables inherited from an activated ancestor are ignored.
// The result is CreateOpts.ListenFds.
func ListenFdsFromEnv() int {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// setListenEnv tells the container's program about the activation fds it
// gets at 3..: LISTEN_PID=1 as in runc, since the program is pid 1 of its
// pid namespace (without one of its own, sd_listen_fds will ignore them,
// as it would with runc).
func setListenEnv(p *specs.Process, n int) {
	if n == 0 {
		return
	}
	p.Env = setEnv(p.Env, "LISTEN_FDS", strconv.Itoa(n))
	p.Env = setEnv(p.Env, "LISTEN_PID", "1")
}
