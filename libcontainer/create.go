package libcontainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/hooks"
	"github.com/berthrt/berth/libcontainer/rootfs"
)

// CreateOpts are the inputs of `create` (and the first half of `run`).
type CreateOpts struct {
	Root string // state root, e.g. /run/berth-runtime
	// InitPath is the berth-runtime binary the container's init runs
	// from; "" means the running binary, which must then be one that
	// handles `init` (berth-runtime itself).
	InitPath      string
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	// ConsoleSize sizes the container's terminal when the spec gives no
	// process.consoleSize: a runtime relaying its own terminal passes its
	// size, so that the process never sees a 0x0 terminal before the
	// first resize reaches it.
	ConsoleSize *specs.Box
	NoPivot     bool
	// PreserveFds passes the runtime's fds 3 .. 3+PreserveFds-1 to the
	// container at the same numbers.
	PreserveFds int
	// ListenFds are systemd socket activation fds (ListenFdsFromEnv): the
	// runtime's fds 3 .. 3+ListenFds-1 go to the container at the same
	// numbers, before the PreserveFds ones (which then start at
	// 3+ListenFds), and the process gets LISTEN_FDS and LISTEN_PID=1.
	ListenFds int
	// NotifySocket is the runtime's NOTIFY_SOCKET: the container gets a
	// socket of its own, relayed by StartNotify (notify_socket.go).
	NotifySocket string
	// Stdio of the container when it has no terminal; nil means the
	// runtime's own.
	Stdin, Stdout, Stderr *os.File
}

// Create sets up the container and leaves its init blocked before the user's
// program, as the OCI create operation requires. On failure nothing is left
// behind: no state directory, no cgroup, no process.
func Create(ctx context.Context, o CreateOpts) (c *Container, err error) {
	if err := CheckID(o.ID); err != nil {
		return nil, err
	}
	raw, bundle, err := readBundle(o.Bundle)
	if err != nil {
		return nil, err
	}
	dir, err := makeStateDir(o.Root, o.ID)
	if err != nil {
		return nil, err
	}
	b := &builder{opts: o, rawSpec: raw, bundle: bundle, dir: dir, cgReady: make(chan struct{})}
	defer func() {
		if err != nil {
			b.abort()
		}
	}()
	// The cgroup only needs its path: make it while the rest of the config
	// is parsed.
	go b.makeCgroup(peekCgroupsPath(raw))
	if b.spec, err = parseSpec(raw, bundle); err != nil {
		return nil, err
	}
	if p := b.spec.Process; p != nil && p.ConsoleSize == nil {
		p.ConsoleSize = o.ConsoleSize
	}
	if b.plan, err = planNamespaces(b.spec.Linux.Namespaces); err != nil {
		return nil, err
	}
	if err := b.systemdAndMounts(); err != nil {
		return nil, err
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	if err := b.handshake(ctx); err != nil {
		return nil, err
	}
	return b.finish()
}

func (b *builder) makeCgroup(path string) {
	defer close(b.cgReady)
	b.cg, b.cgErr = cgroups.New(b.opts.ID, path, nil)
}

// cgroup waits for makeCgroup and applies the spec's resources.
func (b *builder) cgroup() error {
	<-b.cgReady
	if b.cgErr != nil {
		return fmt.Errorf("cgroup for %s: %w", b.opts.ID, b.cgErr)
	}
	if err := b.cg.Set(withDefaultDevices(b.spec.Linux)); err != nil {
		return fmt.Errorf("cgroup for %s: %w", b.opts.ID, err)
	}
	return nil
}

// builder holds what one Create has made so far, so abort can undo it.
type builder struct {
	opts    CreateOpts
	spec    *specs.Spec
	cgReady chan struct{} // closed once makeCgroup has set cg and cgErr
	cgErr   error
	rawSpec []byte
	bundle  string
	plan    *nsPlan
	dir     string
	cg      cgroups.Manager
	state   *State
	*launcher

	// mountSources are the mounts made for init (idmap.go).
	mountSources []mountSource
}

func readBundle(bundle string) ([]byte, string, error) {
	if bundle == "" {
		bundle = "."
	}
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", bundle, err)
	}
	b, err := os.ReadFile(filepath.Join(abs, configFile))
	if err != nil {
		return nil, "", fmt.Errorf("read the bundle's config (is %s an OCI bundle?): %w", abs, err)
	}
	return b, abs, nil
}

func parseSpec(raw []byte, bundle string) (*specs.Spec, error) {
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("parse %s/config.json: %w", bundle, err)
	}
	if err := validateSpec(&spec); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", bundle, err)
	}
	return &spec, nil
}

// peekCgroupsPath reads only linux.cgroupsPath: decoding one string is
// much cheaper than the whole spec. A config that does not parse gets ""
// here and its error from parseSpec.
func peekCgroupsPath(raw []byte) string {
	var peek struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	json.Unmarshal(raw, &peek)
	return peek.Linux.CgroupsPath
}

func validateSpec(s *specs.Spec) error {
	switch {
	case s.Root == nil || s.Root.Path == "":
		return errors.New("root.path is required")
	case s.Process == nil:
		return errors.New("process is required to create a container")
	case len(s.Process.Args) == 0:
		return errors.New("process.args must name the program to run")
	case s.Process.Cwd == "" || !filepath.IsAbs(s.Process.Cwd):
		return fmt.Errorf("process.cwd %q must be an absolute path", s.Process.Cwd)
	case s.Linux == nil:
		return errors.New("linux section is required")
	}
	return nil
}

func makeStateDir(root, id string) (string, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", fmt.Errorf("create state root %s: %w", root, err)
	}
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("%w: %s", ErrExist, id)
		}
		return "", fmt.Errorf("create state directory for %s: %w", id, err)
	}
	return dir, nil
}

func (b *builder) rootfs() string {
	p := b.spec.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(b.bundle, p)
	}
	return filepath.Clean(p)
}

// start makes the cgroup and launches init, still waiting for its config.
func (b *builder) start() error {
	fifo := filepath.Join(b.dir, execFifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("create exec fifo for %s: %w", b.opts.ID, err)
	}
	if b.plan.newUser {
		// init opens the fifo as the namespace's root, which is some other
		// host uid: give the fifo to it.
		uid, gid := hostID(b.spec.Linux.UIDMappings, 0), hostID(b.spec.Linux.GIDMappings, 0)
		if err := os.Chown(fifo, uid, gid); err != nil {
			return fmt.Errorf("chown exec fifo for %s: %w", b.opts.ID, err)
		}
	}
	// init starts out inside its cgroup (cgroups.Entry), which must exist
	// first.
	if err := b.cgroup(); err != nil {
		return err
	}
	fifoFile, err := os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	b.launcher = &launcher{
		id: b.opts.ID, initPath: b.opts.InitPath, plan: b.plan, cg: b.cg, preserveFds: b.opts.ListenFds + b.opts.PreserveFds, fifo: fifoFile,
		consoleSocket: b.opts.ConsoleSocket, terminal: b.spec.Process.Terminal,
		uidMaps: b.spec.Linux.UIDMappings, gidMaps: b.spec.Linux.GIDMappings,
		stdin: b.opts.Stdin, stdout: b.opts.Stdout, stderr: b.opts.Stderr,
	}
	cfg := &initConfig{
		ID: b.opts.ID, Bundle: b.bundle, Rootfs: b.rootfs(), Spec: newWireSpec(b.spec),
		NoPivot: b.opts.NoPivot, NewCgroupNS: b.plan.newCgroupNS, HostMountNS: b.plan.hostMountNS(),
		UserNS:        b.plan.newUser || b.plan.joinsUser(),
		PauseForHooks: len(hooks.ForPoint(b.spec.Hooks, hooks.Prestart))+len(hooks.ForPoint(b.spec.Hooks, hooks.CreateRuntime)) > 0,
		PreserveFds:   b.opts.ListenFds + b.opts.PreserveFds,
	}
	cfg.DetachedMounts = mountSourceIndices(b.mountSources)
	return b.launch(cfg)
}

// hostID maps a container id to the host, -1 (leave as is) if unmapped.
func hostID(m []specs.LinuxIDMapping, id uint32) int {
	for _, e := range m {
		if id >= e.ContainerID && id-e.ContainerID < e.Size {
			return int(e.HostID + id - e.ContainerID)
		}
	}
	return -1
}

func (p *nsPlan) joinsUser() bool {
	for _, j := range p.initJoins {
		if j.kind == specs.UserNamespace {
			return true
		}
	}
	return false
}

// handshake walks init through the protocol in sync.go until it is ready.
func (b *builder) handshake(ctx context.Context) error {
	if len(b.mountSources) > 0 {
		if err := b.sendDetachedMounts(b.mountSources, b.plan.joinPath(specs.MountNamespace), b.containerUserns); err != nil {
			return b.failed(err)
		}
	}
	b.state = &State{
		ID: b.opts.ID, InitPid: b.cmd.Process.Pid, Bundle: b.bundle, Rootfs: b.rootfs(),
		Created: time.Now().UTC(), Owner: "", CgroupPath: b.cg.Path(),
		Annotations: b.spec.Annotations, Hooks: b.spec.Hooks, HostMounts: b.plan.hostMountNS(),
	}
	msg, err := b.conn.recv()
	if err != nil {
		return b.failed(err)
	}
	if msg == msgHooks {
		st := b.state.ociState(Creating)
		for _, p := range []hooks.Point{hooks.Prestart, hooks.CreateRuntime} {
			if err := hooks.Run(ctx, p, hooks.ForPoint(b.spec.Hooks, p), st); err != nil {
				return err
			}
		}
		if err := b.conn.send(syncMsg{Type: msgHooksDone}); err != nil {
			return err
		}
		if msg, err = b.conn.recv(); err != nil {
			return b.failed(err)
		}
	}
	if msg != msgReady {
		return fmt.Errorf("container init protocol: got %q, want %q", msg, msgReady)
	}
	return nil
}

// finish records the created container.
func (b *builder) finish() (*Container, error) {
	start, _, err := procStat(b.state.InitPid)
	if err != nil {
		return nil, fmt.Errorf("read init of %s: %w", b.opts.ID, err)
	}
	b.state.InitStartTime = start
	if err := os.WriteFile(filepath.Join(b.dir, configFile), b.rawSpec, 0o600); err != nil {
		return nil, fmt.Errorf("save config of %s: %w", b.opts.ID, err)
	}
	if err := writeState(b.dir, b.state); err != nil {
		return nil, err
	}
	if b.opts.PidFile != "" {
		if err := writePidFile(b.opts.PidFile, b.state.InitPid); err != nil {
			return nil, err
		}
	}
	b.conn.f.Close()
	return &Container{root: b.opts.Root, dir: b.dir, state: b.state, cmd: b.cmd, cg: b.cg}, nil
}

// abort undoes a failed Create.
func (b *builder) abort() {
	if b.launcher != nil && b.conn != nil {
		b.conn.f.Close()
	}
	if b.launcher != nil && b.mountSock != nil {
		b.mountSock.Close()
	}
	if b.launcher != nil && b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
	<-b.cgReady
	if b.cg != nil {
		b.cg.Delete()
	}
	if b.plan != nil && b.plan.hostMountNS() {
		rootfs.Unmount(b.rootfs())
	}
	os.RemoveAll(b.dir)
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}
