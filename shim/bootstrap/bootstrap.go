// Package bootstrap answers the two short calls containerd makes to the
// shim binary for every container without loading the shim server:
// `start` (find the shim that serves the container, or spawn one from the
// server binary) and `delete` when the shim already deleted the container
// and only its exit is left to report. Everything else (a start with the
// ShimCgroup option, a dead shim to clean up after, -info, -v) is handed
// over to the server binary beside this one (ServerName), with the same
// arguments and input.
//
// Why a binary of its own: the server links containerd's shim library,
// and loading it (the package initialisation of containerd's API types
// and their protobuf registry, and the page faults of a binary three
// times the size) costs about 1.7 ms before main, measured, in each of the
// two calls. This package imports none of it; what it must know of the
// calls' messages it reads and writes with shim/wire, and tests hold it
// to the library's answers. The server's own start (shim/manager) is
// Start too.
package bootstrap

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/shim/options"
	"github.com/berthrt/berth/shim/record"
)

// ServerName is the shim server's binary: containerd's pkg/shim serving
// the task API (shim/manager, shim/task), installed beside the shim.
const ServerName = "containerd-shim-berth-v2-server"

// Server is the server binary beside the running one, else the one on
// PATH (containerd may start the shim by an absolute runtime_path from a
// directory of its own), symlinks resolved: the server keys its
// shared-shim state by its own resolved path, and Answer must find the
// same state.
func Server() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the shim binary: %w", err)
	}
	return findServer(filepath.Dir(self))
}

func findServer(dir string) (string, error) {
	path := filepath.Join(dir, ServerName)
	if _, err := os.Stat(path); err != nil {
		onPath, lerr := exec.LookPath(ServerName)
		if lerr != nil {
			return "", fmt.Errorf("the shim server %s is neither beside the shim in %s nor on PATH (install both: make install): %w", ServerName, dir, err)
		}
		path = onPath
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return "", fmt.Errorf("the shim server %s: %w", path, err)
	}
	return resolved, nil
}

// call is one invocation of the shim binary, with pkg/shim's flags.
type call struct {
	action, id, ns string
	other          bool // -v, -info: the server answers
}

func parseCall(args []string) (call, error) {
	var c call
	var version, info, debug bool
	var ignored string
	fs := flag.NewFlagSet("shim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&debug, "debug", false, "")
	fs.BoolVar(&version, "v", false, "")
	fs.BoolVar(&version, "version", false, "")
	fs.BoolVar(&info, "info", false, "")
	fs.StringVar(&c.ns, "namespace", "", "")
	fs.StringVar(&c.id, "id", "", "")
	// containerd's address comes again in the start's parameters.
	for _, name := range []string{"address", "socket", "debug-socket", "bundle", "publish-binary"} {
		fs.StringVar(&ignored, name, "", "")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.action, c.other = fs.Arg(0), version || info
	return c, nil
}

// Answer answers the call args when it can, writing the reply to stdout:
// done is true then, also when the call failed (err, for containerd to
// see). With done false, the server must answer; input is what was read
// of stdin, which the server must get again (Handover).
func Answer(args []string, stdin io.Reader, stdout io.Writer, server string) (input []byte, done bool, err error) {
	c, err := parseCall(args)
	if err != nil || c.other || c.ns == "" || c.id == "" {
		return nil, false, nil
	}
	var reply []byte
	switch c.action {
	case "delete":
		reply = answerDelete(c)
	case "start":
		// pkg/shim reads at most this much.
		if input, err = io.ReadAll(io.LimitReader(stdin, 10<<20)); err != nil {
			return input, false, nil
		}
		if reply, err = answerStart(c, input, server); err != nil {
			return input, true, err
		}
	}
	if reply == nil {
		return input, false, nil
	}
	if _, err := stdout.Write(reply); err != nil {
		return input, true, fmt.Errorf("reply to containerd: %w", err)
	}
	return input, true, nil
}

// answerDelete is `shim delete` for a container the shim deleted itself
// (record.MarkDeleted): nothing to clean, only its exit to report.
// containerd runs delete in the bundle of some container of the group;
// id's bundle is its sibling.
func answerDelete(c call) []byte {
	cwd, err := os.Getwd()
	if err != nil {
		return nil
	}
	e, ok := record.DeletedExit(filepath.Join(filepath.Dir(cwd), c.id))
	if !ok {
		return nil
	}
	return DeleteResponse(e)
}

// answerStart is `shim start`: Start, with what containerd's shim library
// does around it (the parameters checked against the flags, the socket
// directory kept beside the bundle). A start the server must answer (see
// needsServer) gives nil, nil.
func answerStart(c call, input []byte, server string) ([]byte, error) {
	p, err := DecodeParams(input)
	if err != nil || p.InstanceID != c.id || p.Namespace != c.ns || needsServer(p) {
		return nil, nil // the server says what is wrong, or does what it must
	}
	// As pkg/shim: the socket directory is kept beside the bundle, for
	// the cleanup after the shim (socketDirOf in shim/manager).
	if p.SocketDir != "" {
		os.Remove(socketDirLink)
		if err := os.Symlink(p.SocketDir, socketDirLink); err != nil {
			return nil, fmt.Errorf("keep the socket directory: %w", err)
		}
	}
	addr, err := Start(p, server, nil)
	if err != nil {
		return nil, err
	}
	return Result(addr), nil
}

// needsServer reports whether a start needs the server: moving a new shim
// into the ShimCgroup option's cgroup takes containerd's cgroups library.
func needsServer(p Params) bool { return ShimCgroup(p.Extensions) != "" }

// socketDirLink is pkg/shim's link, in the bundle, to the socket directory.
const socketDirLink = "s"

// DefaultContainersPerShim is one container per shim, the failure
// isolation containerd's runc shim gives: a shim that dies (a crash, the
// OOM killer) takes every container it serves with it, their stdio and
// their exit status. Packing more into one shim saves memory and is
// opt-in (the ContainersPerShim option); the containerd that `berth`
// manages may turn it on.
const DefaultContainersPerShim = 1

// ContainersPerShim is the ContainersPerShim runtime option among the
// bootstrap extensions, or the default when they do not say.
func ContainersPerShim(exts []Any) int {
	for _, a := range exts {
		o, err := options.Decode(a.TypeURL, a.Value)
		if err == nil && o.ContainersPerShim > 0 {
			return o.ContainersPerShim
		}
	}
	return DefaultContainersPerShim
}

// ShimOptionsKey is the runtime options among the bootstrap extensions
// that shape a shim process rather than a container: the cgroup it runs
// in, how many containers it serves, how long it lingers without any.
// Containers are packed into a shared shim only with others of the same
// key (pack.Open), so none is served by a shim started with options
// other than its own.
func ShimOptionsKey(exts []Any) string {
	return fmt.Sprintf("ShimCgroup=%q ContainersPerShim=%d ShimLinger=%s", ShimCgroup(exts), ContainersPerShim(exts), shimLinger(exts))
}

// shimLinger is the ShimLinger runtime option among the bootstrap
// extensions, or the default.
func shimLinger(exts []Any) time.Duration {
	for _, a := range exts {
		if o, err := options.Decode(a.TypeURL, a.Value); err == nil && o.ShimLinger != "" {
			return o.Linger()
		}
	}
	return options.DefaultShimLinger
}

// ShimCgroup is the ShimCgroup runtime option among the bootstrap
// extensions (runc's options or the TOML ones), "" when none gives one.
func ShimCgroup(exts []Any) string {
	for _, a := range exts {
		if o, err := options.Decode(a.TypeURL, a.Value); err == nil && o.ShimCgroup != "" {
			return o.ShimCgroup
		}
	}
	return ""
}

// SocketAddress is the address of a group's shim socket, as containerd's
// shim.CreateSocketAddress makes it: a hash of containerd's address, the
// namespace and the group, in socketDir.
func SocketAddress(socketDir, grpcAddress, ns, group string, debug bool) string {
	path := filepath.Join(grpcAddress, ns, group)
	if debug {
		path = filepath.Join(path, "debug")
	}
	sum := sha256.Sum256([]byte(path))
	return "unix://" + socketDir + "/" + hex.EncodeToString(sum[:])
}

// ShimAlive reports, for a group, whether its shim answers: pack.Release
// asks it of a slot left empty.
func ShimAlive(socketDir, grpcAddress, ns string) func(group string) bool {
	return func(group string) bool {
		return CanConnect(SocketAddress(socketDir, grpcAddress, ns, group, false))
	}
}

// CanConnect reports whether a shim accepts connections on addr.
func CanConnect(addr string) bool {
	conn, err := net.DialTimeout("unix", strings.TrimPrefix(addr, "unix://"), 100*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Handover runs the server in this process's place with the same
// arguments; input, if not nil, becomes its stdin again.
func Handover(server string, args []string, input []byte) error {
	if input != nil {
		fd, err := unix.MemfdCreate("shim-start-input", unix.MFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("hand the start input to the shim server: %w", err)
		}
		f := os.NewFile(uintptr(fd), "shim-start-input")
		if _, err := f.Write(input); err != nil {
			return fmt.Errorf("hand the start input to the shim server: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("hand the start input to the shim server: %w", err)
		}
		if err := unix.Dup3(fd, 0, 0); err != nil {
			return fmt.Errorf("hand the start input to the shim server: %w", err)
		}
	}
	err := unix.Exec(server, append([]string{server}, args...), os.Environ())
	return fmt.Errorf("run the shim server %s: %w", server, err)
}
