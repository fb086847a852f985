package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/defaults"

	"github.com/berthrt/berth/shim/pack"
	"github.com/berthrt/berth/shim/record"
)

// EnvSocket and EnvDebugSocket carry the addresses of the sockets a shim
// serves on, from Start to the shim itself (shim/task).
const (
	EnvSocket      = "BERTH_SHIM_SOCKET"
	EnvDebugSocket = "BERTH_SHIM_DEBUG_SOCKET"
)

// logLevelDebug is bootstrap's LOG_LEVEL_DEBUG: at or below it, a shim
// also serves a debug socket.
const logLevelDebug = -4

// Start returns the address of the shim that serves the container being
// started in the current directory (its bundle), spawning one from server
// if none runs: the shim of the container's group (an annotation), or of
// the shared slot it is packed into (shim/pack). joined, if not nil, is
// called with a new shim's pid before its address is returned (the server
// moves it into the ShimCgroup option's cgroup there). On failure nothing
// is left: no socket, no slot membership, no process.
//
// It does what containerd's shim library does for a start (the socket's
// address, mode and hand-over as fd 3, the OOM score), without loading the
// library: see the package comment for why.
func Start(p Params, server string, joined func(pid int) error) (addr string, retErr error) {
	group, annotated, err := record.GroupOf(".", p.InstanceID)
	if err != nil {
		return "", err
	}
	socketDir := p.socketDir()
	var sock *shimSocket // set when no shim runs for the group: one is spawned
	bind := func(g string) error {
		group, addr = g, SocketAddress(socketDir, p.GRPCAddress, p.Namespace, g, false)
		s, err := listen(addr, true)
		if errors.Is(err, errRunning) {
			return nil
		}
		sock = s
		return err
	}
	var env []string
	var packDir string // the shared shims' state, for a packed container
	if annotated {
		err = bind(group)
	} else {
		packs := pack.Open(socketDir, p.GRPCAddress, p.Namespace, server, ShimOptionsKey(p.Extensions))
		packDir = packs.Path()
		var slot int
		if slot, err = packs.Reserve(p.InstanceID, ContainersPerShim(p.Extensions), bind); err == nil {
			env = packs.Env(slot)
			defer func() {
				if retErr != nil {
					packs.Release(slot, p.InstanceID, ShimAlive(socketDir, p.GRPCAddress, p.Namespace))
				}
			}()
		}
	}
	if err != nil {
		return "", err
	}
	var sockets []*shimSocket
	if sock != nil {
		sockets = append(sockets, sock)
	}
	defer func() {
		if retErr != nil {
			for _, s := range sockets {
				s.remove()
			}
		}
	}()
	if sock == nil {
		// The group's shim runs: containerd creates the task there.
		if err := recordPlacement(group, packDir); err != nil {
			return "", err
		}
		return addr, nil
	}
	env = append(env, EnvSocket+"="+sock.addr)
	debug := p.LogLevel <= logLevelDebug
	if debug {
		dsock, err := listen(SocketAddress(socketDir, p.GRPCAddress, p.Namespace, group, true), false)
		if err != nil {
			return "", err
		}
		sockets = append(sockets, dsock)
		env = append(env, EnvDebugSocket+"="+dsock.addr)
	}
	cmd, err := shimCommand(server, p.Namespace, p.InstanceID, p.GRPCAddress, debug, env)
	if err != nil {
		return "", err
	}
	for _, s := range sockets {
		cmd.ExtraFiles = append(cmd.ExtraFiles, s.f)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start shim %s: %w", server, err)
	}
	defer func() {
		if retErr != nil {
			cmd.Process.Kill()
		}
	}()
	// This process exits right after; waiting keeps it tidy meanwhile.
	go cmd.Wait()
	if joined != nil {
		if err := joined(cmd.Process.Pid); err != nil {
			return "", err
		}
	}
	if err := adjustOOMScore(cmd.Process.Pid); err != nil {
		return "", fmt.Errorf("adjust the shim's OOM score: %w", err)
	}
	if err := recordPlacement(group, packDir); err != nil {
		return "", err
	}
	return addr, nil
}

// recordPlacement records in the bundle (the current directory) which
// shim group, and for a packed container which shared shims' state, the
// container was given: `shim delete` finds them there.
func recordPlacement(group, packDir string) error {
	if err := record.WriteGroup(".", group); err != nil {
		return err
	}
	if packDir == "" {
		return nil
	}
	return record.WritePack(".", packDir)
}

func (p Params) socketDir() string {
	if p.SocketDir != "" {
		return p.SocketDir
	}
	return filepath.Join(defaults.DefaultStateDir, "s")
}

// shimSocket is the listening socket a new shim serves on; it is made
// here and passed to the shim as fd 3 (4 for the debug socket).
type shimSocket struct {
	addr string
	f    *os.File
}

func (s *shimSocket) remove() {
	s.f.Close()
	os.Remove(socketPath(s.addr))
}

func socketPath(addr string) string { return strings.TrimPrefix(addr, "unix://") }

// errRunning: a live shim already answers on the address.
var errRunning = errors.New("a shim runs there")

// listen makes the socket at addr, owner-only in an owner-only directory
// as containerd's shims have theirs. If a live shim answers there and
// probe is set, it returns errRunning: that shim serves the new container
// too. A socket nobody answers on is left over from a dead shim and is
// replaced.
func listen(addr string, probe bool) (*shimSocket, error) {
	path := socketPath(addr)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create shim socket: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if errors.Is(err, syscall.EADDRINUSE) {
		if probe && CanConnect(addr) {
			return nil, errRunning
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale shim socket: %w", err)
		}
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	}
	if err != nil {
		return nil, fmt.Errorf("create shim socket: %w", err)
	}
	// The socket outlives this process: the shim it is passed to removes
	// it when it exits.
	l.SetUnlinkOnClose(false)
	defer l.Close()
	f, err := l.File()
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(path)
		return nil, fmt.Errorf("create shim socket: %w", err)
	}
	return &shimSocket{addr: addr, f: f}, nil
}

// shimCommand is the long-running shim: the server binary without an
// action, in its own process group (a ^C to containerd does not reach it),
// in the bundle directory, with env added to its environment.
func shimCommand(server, ns, id, address string, debug bool, env []string) (*exec.Cmd, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	args := []string{"-namespace", ns, "-id", id, "-address", address}
	if debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(server, args...)
	cmd.Dir = cwd
	cmd.Env = append(shimEnv(os.Environ()), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// shimEnv is the long-running shim's environment: containerd's, tuned for
// a process that mostly waits. Its work is system calls and small
// messages, so one thread running Go code at a time is enough (each more
// has allocation caches of its own: about 0.3 MB each, measured; a second
// one to make the cgroup while create reads the spec made no measurable
// difference to `ctr run`). It serves no heap profiles, so sampling
// allocations for them, and the 1.4 MB table that holds the samples, is
// turned off.
func shimEnv(env []string) []string {
	godebug := "memprofilerate=0"
	var out []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GODEBUG":
			godebug = v + "," + godebug
		case "GOMAXPROCS":
		default:
			out = append(out, kv)
		}
	}
	return append(out, "GOMAXPROCS=1", "GODEBUG="+godebug)
}

// adjustOOMScore makes the shim one step likelier than containerd to be
// killed for memory, as containerd's shim library does for its shims:
// the shim should go before the daemon that manages it.
func adjustOOMScore(pid int) error {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/oom_score_adj")
	if err != nil {
		return err
	}
	score, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("containerd's oom_score_adj %q: %w", b, err)
	}
	score = min(score+1, 1000)
	err = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(score)), 0)
	if os.IsPermission(err) && (os.Geteuid() != 0 || inUserNamespace()) {
		return nil // lowering a score takes privilege that this process lacks
	}
	return err
}

// inUserNamespace reports whether this process runs in a user namespace
// other than the initial one, whose uid map is the whole identity map.
func inUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295"
}
