package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The parent (create) and the container's init talk over one socketpair,
// one JSON message per step. The whole conversation:
//
//	parent (berth-runtime create)              init (sealed re-exec, new namespaces)
//	  start init in its cgroup                     (nsenter: in the cgroup on v1)
//	                                               [nsPlan.inChild: nsenter joins and
//	                                                makes the namespaces]
//	  <--- msgUserns (new user namespace) -------
//	  write its uid/gid maps
//	  ---- msgUsernsMapped --------------------->
//	  <--- msgPid (forked into the pid ns) ------- [the forker exits; its child
//	  reap the forker, adopt the child              goes on as init]
//	  write its oom_score_adj (host side)
//	  ---- initConfig --------------------------> read config, cgroup and time namespaces
//	  ---- detached mounts, if any (idmap.go), ---> mounts (rootfs.Prepare)
//	       on a socket of their own
//	  <--- msgHooks (only if the spec has      ---
//	       prestart/createRuntime hooks)
//	  run prestart + createRuntime hooks
//	  ---- msgHooksDone ------------------------>
//	                                               createContainer hooks, pivot_root
//	                                               [nsPlan.lateFork: re-exec; nsenter
//	                                                joins the pid ns and forks]
//	  <--- msgPid ------------------------------- [the forker exits]
//	  reap the forker, adopt the child
//	  ---- initConfig (AfterFork) --------------> mount /proc
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
	// nsenter's constructor (nsenter.c), before the config, when it does
	// the namespace work (nsPlan.inChild): userns asks the parent to write
	// the maps of the user namespace it made (answer: userns-mapped), pid
	// reports the process it forked into the container's pid namespace.
	msgUserns       = "userns"
	msgUsernsMapped = "userns-mapped"
	msgPid          = "pid"

	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

type syncMsg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
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
	// NewTimeNS asks init to unshare its time namespace and write
	// linux.timeOffsets into it before any process enters it.
	NewTimeNS bool `json:"new_timens,omitempty"`
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
	// PidNSPath is the joined pid namespace of a container whose root
	// init sets up before it has a process there (nsPlan.lateFork): it
	// re-execs itself after the root switch to fork into it, and the
	// parent sends the child the config again, with AfterFork, for the
	// rest (/proc onwards).
	PidNSPath string `json:"pidns_path,omitempty"`
	AfterFork bool   `json:"after_fork,omitempty"`
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
// with any change to either, or to what each side does (3: joined pid and
// user namespaces are entered by nsenter, the parent writes oom_score_adj,
// init sets personality, scheduler, ioPriority and the LSM label: an older
// init would ignore them; 4: PidNSPath and AfterFork, msgPid after the root
// switch); TestInitProtocolPinned fails until then on a
// change of shape.
const (
	initProtocol    = "4"
	envInitProtocol = "_BERTH_INITPROTO"
)

type syncConn struct {
	f   *os.File
	enc *json.Encoder
	dec *json.Decoder
	// stalled, when set, is asked while a message is slow to come whether
	// it ever will: an error from it ends the wait (create: a cgroup
	// frozen under init, which would otherwise leave create waiting on a
	// process that cannot run).
	stalled func() error
}

// stallCheck is how long a wait goes before stalled is asked, and again.
const stallCheck = 250 * time.Millisecond

func newSyncConn(f *os.File) *syncConn {
	return &syncConn{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

func (c *syncConn) send(v any) error {
	if err := c.enc.Encode(v); err != nil {
		return fmt.Errorf("talk to container init: %w", err)
	}
	return nil
}

// recv reads the next message's type; a msgError from init becomes an
// error.
func (c *syncConn) recv() (string, error) {
	m, err := c.recvMsg()
	return m.Type, err
}

func (c *syncConn) recvMsg() (syncMsg, error) {
	var m syncMsg
	if err := c.waitReadable(); err != nil {
		return m, err
	}
	if err := c.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return m, errInitDied
		}
		return m, fmt.Errorf("read from container init: %w", err)
	}
	if m.Type == msgError {
		return m, errors.New(m.Error)
	}
	return m, nil
}

// waitReadable returns once a message can be read, or an error from
// stalled. Without stalled, Decode alone waits.
func (c *syncConn) waitReadable() error {
	if c.stalled == nil {
		return nil
	}
	// (Reading Buffered's copy consumes nothing; the newline after the
	// last message is always there.)
	if ahead, _ := io.ReadAll(c.dec.Buffered()); len(bytes.TrimSpace(ahead)) > 0 {
		return nil // read ahead already
	}
	fds := []unix.PollFd{{Fd: int32(c.f.Fd()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(stallCheck/time.Millisecond))
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return nil // readable, closed, or for Decode to report
		}
		if err := c.stalled(); err != nil {
			return err
		}
	}
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
