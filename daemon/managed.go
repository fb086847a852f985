package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/config"
)

// RuntimeType is the runtime berth's containers run under.
const RuntimeType = "io.containerd.berth.v2"

// startTimeout bounds how long a new containerd may take to answer.
const startTimeout = 30 * time.Second

// Managed is the containerd berth manages: its paths come from
// berth.toml's [containerd] table.
type Managed struct {
	cfg config.Containerd
	// self is the berth executable, whose directory (and ../libexec/berth)
	// is searched for containerd and goes on containerd's PATH, so that
	// it finds the berth shim installed beside berth.
	self string
}

// NewManaged describes the managed containerd of cfg; self is the berth
// executable's path (os.Executable), "" when unknown.
func NewManaged(cfg config.Containerd, self string) *Managed {
	return &Managed{cfg: cfg, self: self}
}

// The files the managed containerd keeps under its state dir.
func (m *Managed) ConfigPath() string        { return filepath.Join(m.cfg.State, "config.toml") }
func (m *Managed) PidPath() string           { return filepath.Join(m.cfg.State, "containerd.pid") }
func (m *Managed) LogPath() string           { return filepath.Join(m.cfg.State, "containerd.log") }
func (m *Managed) ShimOptionsPath() string   { return filepath.Join(m.cfg.State, "berth-shim.toml") }
func (m *Managed) Socket() string            { return m.cfg.Socket }
func (m *Managed) Config() config.Containerd { return m.cfg }
func (m *Managed) lockPath() string          { return filepath.Join(m.cfg.State, "berth.lock") }
func (m *Managed) shimSocketDir() string     { return filepath.Join(m.cfg.State, "s") }

// Binary finds the containerd to start: berth.toml's containerd.binary,
// else the one `make install` puts in <prefix>/libexec/berth (berth being
// <prefix>/bin/berth), else one beside berth (a development tree's bin/).
// Never the containerd on PATH: that one belongs to the system and may be
// another version than the one berth is built and tested against.
func (m *Managed) Binary() (string, error) {
	if m.cfg.Binary != "" {
		if err := executable(m.cfg.Binary); err != nil {
			return "", fmt.Errorf("containerd.binary in berth.toml: %w", err)
		}
		return m.cfg.Binary, nil
	}
	if m.self == "" {
		return "", errors.New("cannot find the managed containerd: berth's own path is unknown; set containerd.binary in berth.toml")
	}
	dir := filepath.Dir(m.self)
	candidates := []string{
		filepath.Join(dir, "..", "libexec", "berth", "containerd"),
		filepath.Join(dir, "containerd"),
	}
	for _, c := range candidates {
		if executable(c) == nil {
			return filepath.Clean(c), nil
		}
	}
	return "", fmt.Errorf("cannot find the managed containerd (looked for %s and %s): run `make install`, or set containerd.binary in berth.toml",
		filepath.Clean(candidates[0]), candidates[1])
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// lock takes the managed containerd's lock (creating the state dir), so
// that two berth commands never start or stop it at once.
func (m *Managed) lock() (release func(), err error) {
	if err := os.MkdirAll(m.cfg.State, 0o711); err != nil {
		return nil, fmt.Errorf("create containerd state dir: %w", err)
	}
	f, err := os.OpenFile(m.lockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the managed containerd's lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", m.lockPath(), err)
	}
	return func() { f.Close() }, nil
}

// Start starts the managed containerd unless it already runs, and waits
// until it answers. started is false when it was already running; pid is
// its process either way.
func (m *Managed) Start(ctx context.Context) (pid int, started bool, err error) {
	release, err := m.lock()
	if err != nil {
		return 0, false, err
	}
	defer release()
	if pid, err := m.runningPid(); err == nil && pid > 0 {
		if err := waitAnswer(ctx, m.cfg.Socket, startTimeout, func() bool { return alive(pid) }); err != nil {
			return pid, false, fmt.Errorf("managed containerd (pid %d) runs but does not answer on %s: %w; see %s", pid, m.cfg.Socket, err, m.LogPath())
		}
		return pid, false, nil
	}
	// Not ours (no live containerd of our pid file) but answering: a
	// containerd someone started by hand, whose socket berth must not
	// take over.
	if answers(ctx, m.cfg.Socket) {
		return 0, false, fmt.Errorf("a containerd berth did not start answers at %s (no live process in %s): stop it, or point berth at it with --address", m.cfg.Socket, m.PidPath())
	}
	pid, err = m.spawn(ctx)
	return pid, err == nil, err
}

// spawn writes the config and starts containerd in a session of its own,
// so that it outlives this command and no terminal signal reaches it.
func (m *Managed) spawn(ctx context.Context) (int, error) {
	bin, err := m.Binary()
	if err != nil {
		return 0, err
	}
	for _, dir := range []string{m.cfg.Root, m.shimSocketDir()} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return 0, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(m.ConfigPath(), []byte(m.GenerateConfig()), 0o644); err != nil {
		return 0, fmt.Errorf("write containerd config: %w", err)
	}
	if err := os.WriteFile(m.ShimOptionsPath(), []byte(m.ShimOptions()), 0o644); err != nil {
		return 0, fmt.Errorf("write the berth shim's options: %w", err)
	}
	// A socket left by a containerd that died would make the new one fail.
	os.Remove(m.cfg.Socket)
	logf, err := os.OpenFile(m.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open containerd log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", m.ConfigPath())
	cmd.Env = daemonEnv(m.shimPath(bin))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start containerd %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if err := writePid(m.PidPath(), pid); err != nil {
		cmd.Process.Kill()
		return 0, err
	}
	running := func() bool {
		select {
		case <-exited:
			return false
		default:
			return true
		}
	}
	if err := waitAnswer(ctx, m.cfg.Socket, startTimeout, running); err != nil {
		cmd.Process.Kill()
		<-exited
		os.Remove(m.PidPath())
		return 0, fmt.Errorf("managed containerd did not come up on %s: %w; its log, %s, ends:\n%s", m.cfg.Socket, err, m.LogPath(), tail(m.LogPath(), 15))
	}
	// Ours no longer: containerd is reparented when berth exits.
	cmd.Process.Release()
	return pid, nil
}

// shimPath is containerd's PATH: the directories of containerd and of
// berth first, where make puts the berth shim and berth-runtime.
func (m *Managed) shimPath(bin string) string {
	path := filepath.Dir(bin)
	if m.self != "" && filepath.Dir(m.self) != path {
		path += ":" + filepath.Dir(m.self)
	}
	if p := os.Getenv("PATH"); p != "" {
		return path + ":" + p
	}
	return path + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// daemonEnv is the managed containerd's environment: its PATH and the
// proxy settings, and nothing else of the command that happened to start
// it, so that the daemon behaves the same whoever started it.
func daemonEnv(path string) []string {
	env := []string{"PATH=" + path}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// tail is the last n lines of a log (of its last 64 KiB), for error
// messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		f.Seek(fi.Size()-64<<10, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
