package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The parent (create) and the container's init talk over one socketpair,
// one JSON message per step. The whole conversation:
//
//	parent (berth-runtime create)              init (sealed re-exec, new namespaces)
//	  start init in its cgroup                     (nsenter: in the cgroup on v1)
//	  ---- initConfig --------------------------> read config, cgroup namespace
//	  ---- detached mounts, if any (idmap.go), ---> mounts (rootfs.Prepare)
//	       on a socket of their own
//	  <--- msgHooks (only if the spec has      ---
//	       prestart/createRuntime hooks)
//	  run prestart + createRuntime hooks
//	  ---- msgHooksDone ------------------------>
//	                                               createContainer hooks, pivot_root,
//	                                               sysctl, masked/readonly paths,
//	                                               check cwd and the program
//	  <--- msgReady -----------------------------
//	  write state.json, exit                       block opening exec.fifo for writing
//	                                               ... `start` opens it for reading ...
//	                                               startContainer hooks, credentials, exec
//
// Any failure in init is sent as msgError with the text the user should see;
// an init that dies without a word shows as EOF.
const (
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

type syncMsg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
}

// initConfig is everything init needs, sent once at the start.
type initConfig struct {
	// Exec marks a process joining a running container (exec) rather than
	// a container's init: no rootfs, no hooks, no fifo.
	Exec    bool      `json:"exec,omitempty"`
	ID      string    `json:"id"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Spec    *wireSpec `json:"spec"`
	NoPivot bool      `json:"no_pivot"`
	UserNS  bool      `json:"userns"`
	// NewCgroupNS asks init to unshare its cgroup namespace (it is in the
	// container's cgroup from the start), so the namespace's root is that
	// cgroup.
	NewCgroupNS bool `json:"new_cgroupns"`
	// PauseForHooks makes init stop after the mounts so the parent can run
	// the hooks that belong in the runtime's namespaces.
	PauseForHooks bool `json:"pause_for_hooks"`
	// HostMountNS is set when the container has no mount namespace of its
	// own: see rootfs.Config.HostMountNS.
	HostMountNS bool `json:"host_mount_ns"`
	PreserveFds int  `json:"preserve_fds"`
	// HostPid is this process's pid as the host sees it, and InitHostPid
	// the container init's: a seccomp agent is told them.
	HostPid     int `json:"host_pid"`
	InitHostPid int `json:"init_host_pid"`
	// Fd numbers inside init.
	FifoFd    int `json:"fifo_fd"`
	ConsoleFd int `json:"console_fd"` // -1 without --console-socket
	// DetachedMounts are the spec mounts (indices) the parent makes and
	// sends on the socket at MountFd: see idmap.go.
	DetachedMounts []int `json:"detached_mounts,omitempty"`
	MountFd        int   `json:"mount_fd,omitempty"`
}

// wireSpec is the spec as it travels to init: without the sections init
// never reads (the cgroup resources and the like, which are the parent's
// business, and the other systems' sections). encoding/json prepares a
// type's whole field tree, encoders included, the first time a process
// decodes it, and for all of specs.Spec that took more than half a
// millisecond of every container's init (measured). Each nil shadowing
// field hides the embedded one of the same JSON name, in both directions.
type wireSpec struct {
	specs.Spec
	Linux   *wireLinux `json:"linux,omitempty"`
	Solaris *struct{}  `json:"solaris,omitempty"`
	Windows *struct{}  `json:"windows,omitempty"`
	VM      *struct{}  `json:"vm,omitempty"`
	ZOS     *struct{}  `json:"zos,omitempty"`
	FreeBSD *struct{}  `json:"freebsd,omitempty"`
}

type wireLinux struct {
	specs.Linux
	Resources    *struct{} `json:"resources,omitempty"`
	IntelRdt     *struct{} `json:"intelRdt,omitempty"`
	NetDevices   *struct{} `json:"netDevices,omitempty"`
	MemoryPolicy *struct{} `json:"memoryPolicy,omitempty"`
}

func newWireSpec(s *specs.Spec) *wireSpec {
	w := &wireSpec{Spec: *s}
	w.Spec.Linux = nil
	if s.Linux != nil {
		w.Linux = &wireLinux{Linux: *s.Linux}
	}
	return w
}

// full is the spec init acts on (without what the wire left out).
func (w *wireSpec) full() *specs.Spec {
	s := w.Spec
	if w.Linux != nil {
		l := w.Linux.Linux
		s.Linux = &l
	}
	return &s
}

// Environment variables that carry fd numbers to init before the config.
const envInitPipe = "_BERTH_INITPIPE"

// initProtocol is the version of the conversation above and of
// initConfig. The binary that runs init may come from another build than
// its caller (the shim execs berth-runtime as init), so init refuses a
// caller of another version instead of misreading its config. Bump it
// with any change to either; TestInitProtocolPinned fails until then.
const (
	initProtocol    = "2"
	envInitProtocol = "_BERTH_INITPROTO"
)

type syncConn struct {
	f   *os.File
	enc *json.Encoder
	dec *json.Decoder
}

func newSyncConn(f *os.File) *syncConn {
	return &syncConn{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

func (c *syncConn) send(v any) error {
	if err := c.enc.Encode(v); err != nil {
		return fmt.Errorf("talk to container init: %w", err)
	}
	return nil
}

// recv reads the next message; a msgError from init becomes an error.
func (c *syncConn) recv() (string, error) {
	var m syncMsg
	if err := c.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", errInitDied
		}
		return "", fmt.Errorf("read from container init: %w", err)
	}
	if m.Type == msgError {
		return "", errors.New(m.Error)
	}
	return m.Type, nil
}

func (c *syncConn) expect(want string) error {
	got, err := c.recv()
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("container init protocol: got %q, want %q", got, want)
	}
	return nil
}

var errInitDied = errors.New("container init exited before it was ready")
