package libcontainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/libcontainer/cgroups"
	"github.com/berthrt/berth/libcontainer/hooks"
	"github.com/berthrt/berth/libcontainer/rootfs"
	"github.com/berthrt/berth/libcontainer/validate"
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
	// A config that is refused leaves nothing behind: it is checked before
	// the state directory and the cgroup are made.
	spec, err := parseSpec(raw, bundle)
	if err != nil {
		return nil, err
	}
	b := &builder{opts: o, spec: spec, rawSpec: raw, bundle: bundle, cgReady: make(chan struct{})}
	if b.state, err = provisionalState(o.ID, bundle, spec.Linux.CgroupsPath); err != nil {
		return nil, err
	}
	if b.dir, err = makeStateDir(o.Root, b.state); err != nil {
		return nil, err
	}
	defer b.undoOnFailure(ctx, &err)
	// The cgroup only needs its path: make it while the namespaces and
	// mounts are planned.
	go b.makeCgroup(spec.Linux.CgroupsPath)
	if p := b.spec.Process; p.ConsoleSize == nil {
		p.ConsoleSize = o.ConsoleSize
	}
	if b.plan, err = planNamespaces(b.spec.Linux.Namespaces); err != nil {
		return nil, err
	}
	if err := b.systemdAndMounts(); err != nil {
		return nil, err
	}
	if err := b.recordPlan(); err != nil {
		return nil, err
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	if err := b.handshake(ctx); err != nil {
		return nil, b.outOfMemory(err)
	}
	return b.finish()
}

// outOfMemory says so when init failed because the memory limit is too
// small for it to start: the kernel kills it, and the error alone (a reset
// socket) would not tell why.
func (b *builder) outOfMemory(err error) error {
	res := b.spec.Linux.Resources
	if res == nil || res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit <= 0 {
		return err
	}
	st, serr := b.cg.Stats()
	if serr != nil || st.Memory.Usage.Failcnt == 0 {
		return err
	}
	return fmt.Errorf("container init ran out of memory: linux.resources.memory.limit %d bytes is too small for it to start (raise it): %w", *res.Memory.Limit, err)
}

// provisionalState is what state.json says from the moment the id is
// taken: enough for delete to find the cgroup before it even exists.
func provisionalState(id, bundle, cgroupsPath string) (*State, error) {
	creator, err := self()
	if err != nil {
		return nil, err
	}
	cgPath, err := cgroups.Resolve(id, cgroupsPath)
	if err != nil {
		return nil, fmt.Errorf("cgroup for %s: %w", id, err)
	}
	return &State{ID: id, Bundle: bundle, Created: time.Now().UTC(), CgroupPath: cgPath, Creator: creator}, nil
}

// recordPlan adds to the state what init is about to make that delete
// must undo or honour if create is killed from here on: mounts in the
// runtime's mount namespace, and the poststop hooks.
func (b *builder) recordPlan() error {
	st := b.state
	st.Rootfs, st.HostMounts = b.rootfs(), b.plan.hostMountNS()
	st.Annotations, st.Hooks = b.spec.Annotations, b.spec.Hooks
	st.SharedPidNS = b.plan.cloneFlags&unix.CLONE_NEWPID == 0
	return writeState(b.dir, st)
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
	var res *specs.LinuxResources
	res, b.atReady = cgroupResources(b.spec.Linux)
	if err := b.cg.Set(res); err != nil {
		return fmt.Errorf("cgroup for %s: %w", b.opts.ID, err)
	}
	// init would freeze as it enters, and create wait for it forever.
	return b.notFrozen()
}

// notFrozen fails create when the container's cgroup is frozen: before
// init starts, and while create waits for init (syncConn.stalled), since
// the cgroup may be frozen under it after the first check.
func (b *builder) notFrozen() error {
	if frozen, err := b.cg.Frozen(); err == nil && frozen {
		return fmt.Errorf("cgroup %s of %s is frozen, and a container cannot start in a frozen cgroup: thaw it or use another linux.cgroupsPath", b.cg.Path(), b.opts.ID)
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
	atReady *specs.LinuxResources // what is set once init is ready (cgroupResources)
	state   *State
	*launcher
	// initCfg is what init was sent, sent again after a late fork.
	initCfg *initConfig

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
	f, err := os.Open(filepath.Join(abs, configFile))
	if err != nil {
		return nil, "", fmt.Errorf("read the bundle's config (is %s an OCI bundle?): %w", abs, err)
	}
	defer f.Close()
	// Read one byte past the limit, not by the size stat gives: the file
	// may grow meanwhile, or be a pipe.
	b, err := io.ReadAll(io.LimitReader(f, validate.MaxConfigSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("read %s/config.json: %w", abs, err)
	}
	if err := validate.ConfigSize(int64(len(b))); err != nil {
		if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() {
			err = validate.ConfigSize(fi.Size())
		}
		return nil, "", fmt.Errorf("%s/config.json: %w", abs, err)
	}
	return b, abs, nil
}

func parseSpec(raw []byte, bundle string) (*specs.Spec, error) {
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("parse %s/config.json: %w", bundle, err)
	}
	if err := validate.Spec(&spec, validate.Probe()); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", bundle, err)
	}
	warnProcess(spec.Process)
	return &spec, nil
}

// creatingPrefix names a state directory before it is renamed to its id.
const creatingPrefix = "~creating-"

// makeStateDir takes the id: the directory appears with st already in it
// (made under a temporary name, then renamed into place), so that whoever
// sees the id also sees a state that delete can work from, even if create
// is killed a moment later.
func makeStateDir(root string, st *State) (string, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", fmt.Errorf("create state root %s: %w", root, err)
	}
	// '~' is not allowed in an id: List never takes this for a container.
	tmp, err := os.MkdirTemp(root, creatingPrefix)
	if err != nil {
		return "", fmt.Errorf("create state directory for %s: %w", st.ID, err)
	}
	if err := writeState(tmp, st); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	dir := filepath.Join(root, st.ID)
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("%w: %s", ErrExist, st.ID)
		}
		return "", fmt.Errorf("create state directory for %s: %w", st.ID, err)
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
		stalled: b.notFrozen,
	}
	cfg := &initConfig{
		ID: b.opts.ID, Bundle: b.bundle, Rootfs: b.rootfs(), Spec: newWireSpec(b.spec),
		NoPivot: b.opts.NoPivot, NewCgroupNS: b.plan.newCgroupNS, NewTimeNS: b.plan.newTimeNS,
		HostMountNS:   b.plan.hostMountNS(),
		UserNS:        b.plan.newUser || b.plan.joinUser,
		PauseForHooks: len(hooks.ForPoint(b.spec.Hooks, hooks.Prestart))+len(hooks.ForPoint(b.spec.Hooks, hooks.CreateRuntime)) > 0,
		PreserveFds:   b.opts.ListenFds + b.opts.PreserveFds,
	}
	if b.plan.lateFork() {
		if err := checkLateFork(b.spec); err != nil {
			return err
		}
		cfg.PidNSPath = b.plan.pidPath
	}
	b.initCfg = cfg
	cfg.DetachedMounts = mountSourceIndices(b.mountSources)
	if err := b.launch(cfg); err != nil {
		return err
	}
	if b.plan.joinUser {
		// Only now is the namespace's root known: the maps are the joined
		// namespace's, which init is in. It opens the fifo once ready.
		return chownToContainerRoot(fifo, b.proc.Pid)
	}
	return nil
}

// chownToContainerRoot gives path to the host ids that are root in pid's
// user namespace.
func chownToContainerRoot(path string, pid int) error {
	var ids [2]int
	for i, f := range []string{"uid_map", "gid_map"} {
		m, err := readIDMap(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			return err
		}
		ids[i] = hostID(m, 0)
	}
	if err := os.Chown(path, ids[0], ids[1]); err != nil {
		return fmt.Errorf("chown %s to the container's root: %w", path, err)
	}
	return nil
}

// readIDMap reads a /proc/<pid>/uid_map or gid_map.
func readIDMap(path string) ([]specs.LinuxIDMapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the container's id map: %w", err)
	}
	var out []specs.LinuxIDMapping
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m specs.LinuxIDMapping
		if n, _ := fmt.Sscan(line, &m.ContainerID, &m.HostID, &m.Size); n == 3 {
			out = append(out, m)
		}
	}
	return out, nil
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

// handshake walks init through the protocol in sync.go until it is ready.
func (b *builder) handshake(ctx context.Context) error {
	if len(b.mountSources) > 0 {
		if err := b.sendDetachedMounts(b.mountSources, b.plan.joinPath(specs.MountNamespace), b.containerUserns); err != nil {
			return b.failed(err)
		}
	}
	b.state.InitPid = b.proc.Pid
	m, err := b.conn.recvMsg()
	if err != nil {
		return b.failed(err)
	}
	msg := m.Type
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
		if m, err = b.conn.recvMsg(); err != nil {
			return b.failed(err)
		}
		msg = m.Type
	}
	if b.plan.lateFork() {
		if err := b.forkedLate(m, b.initCfg); err != nil {
			return err
		}
		b.state.InitPid = b.proc.Pid
		if msg, err = b.conn.recv(); err != nil {
			return b.failed(err)
		}
	}
	if msg != msgReady {
		return fmt.Errorf("container init protocol: got %q, want %q", msg, msgReady)
	}
	if b.atReady != nil {
		if err := b.cg.Set(b.atReady); err != nil {
			return fmt.Errorf("cgroup for %s: %w", b.opts.ID, err)
		}
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
	b.state.Creator = nil
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
	return &Container{root: b.opts.Root, dir: b.dir, state: b.state, proc: b.proc, cg: b.cg}, nil
}

// undoOnFailure, deferred by Create, aborts it when it fails, and when it
// panics: the shim serves Create in its own process and recovers a panic
// there (shim/task), and a state left with the still-running shim as its
// creator would say "creating" forever, refusing every delete.
func (b *builder) undoOnFailure(ctx context.Context, errp *error) {
	if v := recover(); v != nil {
		b.abort(ctx, fmt.Errorf("panic: %v", v))
		panic(v)
	}
	if *errp != nil {
		*errp = b.abort(ctx, *errp)
	}
}

// abort undoes a failed Create, and returns err with what the poststop
// hooks said if they failed. Once init was started, the poststop hooks run,
// as runc runs them when it destroys a container that failed to start:
// tools tear down in poststop what they set up in the earlier hooks
// (networking, say).
func (b *builder) abort(ctx context.Context, err error) error {
	if b.launcher != nil && b.conn != nil {
		b.conn.f.Close()
	}
	if b.launcher != nil && b.mountSock != nil {
		b.mountSock.Close()
	}
	started := b.launcher != nil && b.proc != nil
	if started {
		b.proc.Kill()
		// On cgroup v1 a frozen process cannot die.
		if frozen, ferr := b.cg.Frozen(); ferr == nil && frozen {
			b.cg.Thaw()
		}
		b.proc.Wait()
	}
	<-b.cgReady
	if b.cg != nil {
		if started && b.state.SharedPidNS {
			// Without a pid namespace of its own, what init started (a
			// hook's process left behind) outlives it and keeps the
			// cgroup, as delete knows (Delete).
			(&Container{state: b.state, cg: b.cg}).killCgroup()
		}
		deleteCgroup(b.cg)
	}
	if b.plan != nil && b.plan.hostMountNS() {
		rootfs.Unmount(b.rootfs())
	}
	os.RemoveAll(b.dir)
	if !started {
		return err
	}
	// The hooks run even when the caller gave up: they free what the
	// container held.
	ctx = context.WithoutCancel(ctx)
	if herr := hooks.Run(ctx, hooks.Poststop, hooks.ForPoint(b.spec.Hooks, hooks.Poststop), b.state.ociState(Stopped)); herr != nil {
		return fmt.Errorf("%w; then %w", err, herr)
	}
	return err
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
