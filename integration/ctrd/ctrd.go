// Package ctrd runs a private containerd for tests and benchmarks: its own
// root, state, sockets (shim sockets included) and config, driven through
// its own ctr, with the busybox image of package image imported. Close
// takes all of it down again — containers, shims, container processes,
// mounts, cgroups and directories — whatever state it was left in.
//
// It needs root, and the binaries `make build` puts in bin/: containerd,
// ctr and the shims containerd should find (it runs with that dir first on
// its PATH).
package ctrd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthrt/berth/daemon"
	"github.com/berthrt/berth/integration/bundle"
	"github.com/berthrt/berth/integration/image"
)

// DefaultImage is the name the busybox image is imported under.
const DefaultImage = "docker.io/berthtest/busybox:latest"

// Config says where the binaries are and how to set the daemon up. Only
// BinDir and Namespace are required.
type Config struct {
	// BinDir holds containerd, ctr and the shims, and goes first on
	// containerd's PATH so that those shims are the ones it runs.
	BinDir string
	// Namespace is the containerd namespace of every container; ctr puts
	// a container's cgroup at /<Namespace>/<id>, so it should be one only
	// this daemon uses.
	Namespace string
	// Image is the name to import the busybox image under: DefaultImage
	// when empty, none when "-".
	Image string
	// LogLevel is containerd's log level ("info" when empty). "debug"
	// also makes the shims log at debug level and open debug sockets.
	LogLevel string
	// TempDir is the parent of containerd's root (content and
	// snapshots), os.TempDir() when empty. Its state, which holds the
	// sockets, is always directly under /run: a unix socket path must
	// stay under 108 bytes, and a shim socket_dir under 42.
	TempDir string
	// CopyShims runs private copies of BinDir's shims (containerd-shim-*),
	// made in a new dir inside BinDir (where they may be executed;
	// /run and /tmp can be noexec) and removed by Close. No other
	// process maps those files, so memory figures that split shared
	// pages (PSS) count this daemon's shims alone, whatever else runs
	// the same binaries meanwhile.
	CopyShims bool
	// Logf receives notes about what Close did beyond the routine
	// (unmounting what was left mounted); nil discards them.
	Logf func(format string, args ...any)
	// Leakf receives what Close found left behind by the caller and had
	// to clean up by force: containers, processes, runtime state,
	// cgroups, shim sockets. Logf when nil. A test can make it fail.
	Leakf func(format string, args ...any)
}

// Daemon is one running private containerd.
type Daemon struct {
	cfg Config
	// Root is containerd's root (content, snapshots, metadata, its log).
	Root string
	// State is containerd's state (sockets, task bundles); runtime roots
	// and fifos the caller asks for live under it too.
	State string
	// Socket is containerd's gRPC address.
	Socket string
	// SocketDir is where the shims put their sockets.
	SocketDir string
	// ShimDir is where containerd finds the shims: BinDir, or the
	// private copies of Config.CopyShims.
	ShimDir string
	// FifoDir is for ctr's --fifo-dir.
	FifoDir string
	// Image is the name of the imported image ("" when none).
	Image string
	// Log is containerd's own log file.
	Log string

	cmd    *exec.Cmd
	exited chan struct{}

	mu        sync.Mutex
	ids       map[string]bool   // container ids handed out or tracked
	runtimes  map[string]string // runtime state root → binary that can delete --force in it
	closeOnce sync.Once
	closeErr  error
}

// Start starts a private containerd, waits until it answers and imports
// the image. On any error, or when ctx is cancelled meanwhile, it takes
// down what it had made before returning.
func Start(ctx context.Context, cfg Config) (d *Daemon, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("ctrd: a private containerd needs root")
	}
	if cfg.BinDir == "" || cfg.Namespace == "" {
		return nil, errors.New("ctrd: Config.BinDir and Config.Namespace are required")
	}
	// Resolved, because Close recognises our shims by /proc/<pid>/exe,
	// which the kernel gives without symlinks.
	bin, err := filepath.Abs(cfg.BinDir)
	if err == nil {
		bin, err = filepath.EvalSymlinks(bin)
	}
	if err != nil {
		return nil, fmt.Errorf("ctrd: %w", err)
	}
	cfg.BinDir = bin
	for _, b := range []string{"containerd", "ctr"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("ctrd: %s not built (run `make build`): %w", b, err)
		}
	}
	d = &Daemon{cfg: cfg, exited: make(chan struct{}), ids: map[string]bool{}, runtimes: map[string]string{}}
	if err := d.makeDirs(); err != nil {
		d.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			if cerr := d.Close(); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
			d = nil
		}
	}()
	if err := d.startDaemon(ctx); err != nil {
		return d, err
	}
	if cfg.Image != "-" {
		d.Image = cfg.Image
		if d.Image == "" {
			d.Image = DefaultImage
		}
		if err := d.importImage(ctx); err != nil {
			return d, err
		}
	}
	return d, nil
}

// makeDirs creates root and state and the files in them.
func (d *Daemon) makeDirs() error {
	var err error
	if d.State, err = os.MkdirTemp("/run", "bctrd-"); err != nil {
		return fmt.Errorf("ctrd: state dir: %w", err)
	}
	if d.Root, err = os.MkdirTemp(d.cfg.TempDir, "berth-ctrd-"); err != nil {
		return fmt.Errorf("ctrd: root dir: %w", err)
	}
	// Resolved, because Close finds the mounts below it in mountinfo,
	// which has no symlinks (TMPDIR may have one).
	if resolved, err := filepath.EvalSymlinks(d.Root); err == nil {
		d.Root = resolved
	}
	d.Socket = filepath.Join(d.State, "c.sock")
	d.SocketDir = filepath.Join(d.State, "s")
	d.FifoDir = filepath.Join(d.State, "fifo")
	d.Log = filepath.Join(d.Root, "containerd.log")
	for _, dir := range []string{d.SocketDir, d.FifoDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("ctrd: %w", err)
		}
	}
	d.ShimDir = d.cfg.BinDir
	if d.cfg.CopyShims {
		if err := d.copyShims(); err != nil {
			return fmt.Errorf("ctrd: copy the shims: %w", err)
		}
	}
	return os.WriteFile(d.configPath(), []byte(d.config()), 0o644)
}

// copyShims copies BinDir's shims into a new ShimDir: real copies, since
// a hard link would share the page cache with the original.
func (d *Daemon) copyShims() error {
	shims, _ := filepath.Glob(filepath.Join(d.cfg.BinDir, "containerd-shim-*"))
	if len(shims) == 0 {
		return fmt.Errorf("no containerd-shim-* in %s", d.cfg.BinDir)
	}
	dir, err := os.MkdirTemp(d.cfg.BinDir, ".ctrd-shims-")
	if err != nil {
		return err
	}
	d.ShimDir = dir
	for _, src := range shims {
		if err := bundle.CopyFile(src, filepath.Join(dir, filepath.Base(src)), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) configPath() string { return filepath.Join(d.Root, "config.toml") }

// config is containerd's config.toml: everything under our dirs (the
// shims' sockets too, so that nothing lands in the host's /run/containerd),
// no CRI or other plugins nothing here uses, overlayfs snapshots.
func (d *Daemon) config() string {
	level := d.cfg.LogLevel
	if level == "" {
		level = "info"
	}
	return daemon.ContainerdConfig(d.Root, d.State, d.Socket, level, d.SocketDir)
}

// startDaemon starts containerd (its log appended to Log) and waits
// until ctr gets an answer.
func (d *Daemon) startDaemon(ctx context.Context) error {
	logf, err := os.OpenFile(d.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	d.cmd = exec.Command(filepath.Join(d.cfg.BinDir, "containerd"), "--config", d.configPath())
	path := d.cfg.BinDir + ":" + os.Getenv("PATH")
	if d.ShimDir != d.cfg.BinDir {
		path = d.ShimDir + ":" + path
	}
	d.cmd.Env = append(os.Environ(), "PATH="+path)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: a ^C at the terminal reaches only the
	// caller, which then decides when containerd stops (after its
	// containers are gone).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("ctrd: start containerd: %w", err)
	}
	cmd, exited := d.cmd, d.exited
	go func() { cmd.Wait(); close(exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := d.ctrTimeout(ctx, 5*time.Second, "version")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ctrd: containerd did not answer on %s: %v\n%s", d.Socket, err, d.Tail(20))
		}
		select {
		case <-d.exited:
			return fmt.Errorf("ctrd: containerd exited: %v\n%s", d.cmd.ProcessState, d.Tail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Restart kills containerd outright (SIGKILL, by its pid), as a crash or
// the OOM killer does, runs during (if not nil) while it is down, and
// starts it again with the same config, state and log. Its shims and
// their containers keep running.
func (d *Daemon) Restart(ctx context.Context, during func()) error {
	if !d.running() {
		ps := "never started"
		if d.cmd != nil && d.cmd.ProcessState != nil {
			ps = d.cmd.ProcessState.String()
		}
		return fmt.Errorf("ctrd: containerd exited before the restart: %s\n%s", ps, d.Tail(30))
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("ctrd: kill containerd (pid %d): %w", d.cmd.Process.Pid, err)
	}
	<-d.exited
	if during != nil {
		during()
	}
	d.exited = make(chan struct{})
	if err := d.startDaemon(ctx); err != nil {
		return fmt.Errorf("ctrd: containerd did not come back after a restart: %w", err)
	}
	return nil
}

// importImage writes the busybox image archive and imports it.
func (d *Daemon) importImage(ctx context.Context) error {
	archive := filepath.Join(d.Root, "busybox.oci.tar")
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	err = image.Busybox(f, d.Image)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ctrd: image: %w", err)
	}
	if _, err := d.Ctr(ctx, "images", "import", archive); err != nil {
		return err
	}
	os.Remove(archive) // imported into the content store: no longer needed
	return nil
}

// Ctr runs ctr against this containerd, in the namespace, for at most a
// minute (less if ctx says so), and returns its stdout. A non-zero exit is
// an error quoting the command and its stderr.
func (d *Daemon) Ctr(ctx context.Context, args ...string) (string, error) {
	return d.ctrTimeout(ctx, time.Minute, args...)
}

func (d *Daemon) ctrTimeout(ctx context.Context, limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := d.CtrCommand(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.String(), nil
}

// CtrCommand is the command `ctr --address … --namespace … args…`, for a
// caller that runs (and times) it itself. It runs in its own process
// group, so that ^C at the terminal does not reach it (the caller
// cancels ctx instead), and Wait gives up on stdio pipes 5s after ctr
// exits (a task's process might hold them).
func (d *Daemon) CtrCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(d.cfg.BinDir, "ctr"),
		append([]string{"--address", d.Socket, "--namespace", d.cfg.Namespace}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Namespace is the containerd namespace of this daemon's containers.
func (d *Daemon) Namespace() string { return d.cfg.Namespace }

// Track records a container id the caller is about to create, so that
// Close removes its cgroups even when containerd no longer knows it.
func (d *Daemon) Track(id string) {
	d.mu.Lock()
	d.ids[id] = true
	d.mu.Unlock()
}

// RuntimeRoot returns a state root under State for a runtime (name is a
// single path element), made empty; Close force-deletes whatever
// containers are left in <root>/<namespace> with `binary --root … delete
// --force`, binary being a runc-compatible command line (runc,
// berth-runtime).
func (d *Daemon) RuntimeRoot(name, binary string) (string, error) {
	root := filepath.Join(d.State, "rt-"+name)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	d.mu.Lock()
	d.runtimes[root] = binary
	d.mu.Unlock()
	return root, nil
}

// Task is one line of `ctr task ls`.
type Task struct {
	Pid    int
	Status string // RUNNING, STOPPED, PAUSED, CREATED …
}

// Tasks lists the namespace's tasks by container id.
func (d *Daemon) Tasks(ctx context.Context) (map[string]Task, error) {
	out, err := d.Ctr(ctx, "task", "ls")
	if err != nil {
		return nil, err
	}
	tasks := map[string]Task{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 { // the header: TASK PID STATUS
			continue
		}
		pid, _ := strconv.Atoi(f[1])
		tasks[f[0]] = Task{Pid: pid, Status: f[2]}
	}
	return tasks, nil
}

// Tail is the end of containerd's log, for error messages.
func (d *Daemon) Tail(n int) string { return TailFile(d.Log, n) }

// TailFile is the last n lines of the file at path (without the final
// newline), or a note of why it could not be read.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (d *Daemon) logf(format string, args ...any) {
	if d.cfg.Logf != nil {
		d.cfg.Logf(format, args...)
	}
}

// leakf reports something the caller left behind.
func (d *Daemon) leakf(format string, args ...any) {
	if d.cfg.Leakf != nil {
		d.cfg.Leakf(format, args...)
		return
	}
	d.logf(format, args...)
}
