package daemon

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/config"
	"github.com/berthrt/berth/shim/options"
)

func TestResolveAddress(t *testing.T) {
	const managed = "/run/berth/containerd/containerd.sock"
	tests := []struct {
		name                  string
		flag, env, configured string
		want                  Address
		isManaged             bool
	}{
		{"nothing set: the managed socket", "", "", "", Address{managed, SourceManaged}, true},
		{"berth.toml", "", "", "/run/c/c.sock", Address{"/run/c/c.sock", SourceConfig}, false},
		{"env over berth.toml", "", "/run/e.sock", "/run/c/c.sock", Address{"/run/e.sock", SourceEnv}, false},
		{"flag over env and berth.toml", "/run/f.sock", "/run/e.sock", "/run/c/c.sock", Address{"/run/f.sock", SourceFlag}, false},
		{"unix:// dropped", "unix:///run/f.sock", "", "", Address{"/run/f.sock", SourceFlag}, false},
		{"the managed socket named explicitly", "", managed, "", Address{managed, SourceEnv}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ResolveAddress(tc.flag, tc.env, tc.configured, managed)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.Managed(managed) != tc.isManaged {
				t.Fatalf("Managed = %v, want %v", got.Managed(managed), tc.isManaged)
			}
		})
	}
}

// TestGenerateConfig reads the generated config.toml back as containerd
// would and checks it keeps everything under berth's paths.
func TestGenerateConfig(t *testing.T) {
	cfg := config.Default().Containerd
	cfg.Root, cfg.State, cfg.Socket, cfg.LogLevel = "/srv/r", "/run/st", "/run/st/c.sock", "debug"
	var got struct {
		Version         int                       `toml:"version"`
		Root            string                    `toml:"root"`
		State           string                    `toml:"state"`
		Temp            string                    `toml:"temp"`
		DisabledPlugins []string                  `toml:"disabled_plugins"`
		GRPC            struct{ Address string }  `toml:"grpc"`
		TTRPC           struct{ Address string }  `toml:"ttrpc"`
		Debug           struct{ Level string }    `toml:"debug"`
		Plugins         map[string]map[string]any `toml:"plugins"`
	}
	body := NewManaged(cfg, "").GenerateConfig()
	if err := toml.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("containerd could not read it: %v\n%s", err, body)
	}
	checks := []struct{ name, got, want string }{
		{"root", got.Root, "/srv/r"},
		{"state", got.State, "/run/st"},
		{"temp", got.Temp, "/srv/r/tmp"},
		{"grpc address", got.GRPC.Address, "/run/st/c.sock"},
		{"ttrpc address", got.TTRPC.Address, "/run/st/c.sock.ttrpc"},
		{"log level", got.Debug.Level, "debug"},
		{"shim socket dir", got.Plugins["io.containerd.shim.v1.manager"]["socket_dir"].(string), "/run/st/s"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if got.Version != 3 {
		t.Errorf("version = %d, want 3", got.Version)
	}
	if !contains(got.DisabledPlugins, "io.containerd.grpc.v1.cri") {
		t.Errorf("CRI is not disabled: %v", got.DisabledPlugins)
	}
}

// TestShimOptions checks that the berth shim reads the packing berth.toml
// asks for.
func TestShimOptions(t *testing.T) {
	tests := []struct {
		perShim int
		linger  time.Duration
	}{{1, 0}, {8, 2 * time.Second}, {3, 1500 * time.Millisecond}}
	for _, tc := range tests {
		cfg := config.Default().Containerd
		cfg.ContainersPerShim, cfg.ShimLinger = tc.perShim, config.Duration(tc.linger)
		cfg.State = t.TempDir()
		m := NewManaged(cfg, "")
		if err := os.WriteFile(m.ShimOptionsPath(), []byte(m.ShimOptions()), 0o644); err != nil {
			t.Fatal(err)
		}
		// What containerd hands the shim for a container created with
		// m.RuntimeOptions().
		value, err := proto.Marshal(m.RuntimeOptions())
		if err != nil {
			t.Fatal(err)
		}
		o, err := options.Decode(options.GenericTypeURL, value)
		if err != nil {
			t.Fatal(err)
		}
		if o.ContainersPerShim != tc.perShim || o.Linger() != tc.linger {
			t.Errorf("shim reads ContainersPerShim %d, linger %s; want %d, %s", o.ContainersPerShim, o.Linger(), tc.perShim, tc.linger)
		}
	}
}

func TestBinary(t *testing.T) {
	tests := []struct {
		name   string
		files  []string // made executable under a temp prefix
		binary string   // containerd.binary, relative to the prefix
		want   string   // relative to the prefix; "" = an error
	}{
		{"installed in libexec", []string{"bin/berth", "libexec/berth/containerd", "bin/containerd"}, "", "libexec/berth/containerd"},
		{"dev tree: beside berth", []string{"bin/berth", "bin/containerd"}, "", "bin/containerd"},
		{"berth.toml wins", []string{"bin/berth", "libexec/berth/containerd", "opt/containerd"}, "opt/containerd", "opt/containerd"},
		{"berth.toml's missing binary is an error", []string{"bin/berth", "bin/containerd"}, "opt/containerd", ""},
		{"none", []string{"bin/berth"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(prefix, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cfg := config.Default().Containerd
			if tc.binary != "" {
				cfg.Binary = filepath.Join(prefix, tc.binary)
			}
			got, err := NewManaged(cfg, filepath.Join(prefix, "bin/berth")).Binary()
			if tc.want == "" {
				if err == nil {
					t.Fatalf("found %s, want an error", got)
				}
				return
			}
			if err != nil || got != filepath.Join(prefix, tc.want) {
				t.Fatalf("got %q, %v; want %s", got, err, filepath.Join(prefix, tc.want))
			}
		})
	}
}

func TestPidFile(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" = no file
		want    int
		wantErr bool
	}{
		{"missing", "", 0, false},
		{"pid", "1234\n", 1234, false},
		{"not a number", "abc\n", 0, true},
		{"zero", "0\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "containerd.pid")
			if tc.content != "" {
				os.WriteFile(path, []byte(tc.content), 0o644)
			}
			got, err := readPid(path)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "containerd.pid")
	if err := writePid(path, 42); err != nil {
		t.Fatal(err)
	}
	if got, err := readPid(path); got != 42 || err != nil {
		t.Fatalf("read back %d, %v; want 42", got, err)
	}
}

// TestRunningPid checks that only a live process started with the managed
// config counts as the managed containerd, and that a stale pid file goes.
func TestRunningPid(t *testing.T) {
	m := testManaged(t)
	fake := startFake(t, m, "")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pid  int
		want int
	}{
		{"our containerd", fake.Process.Pid, fake.Process.Pid},
		{"a process that has exited", dead.Process.Pid, 0},
		{"another live process (a reused pid)", os.Getpid(), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := writePid(m.PidPath(), tc.pid); err != nil {
				t.Fatal(err)
			}
			got, err := m.runningPid()
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
			if _, err := os.Stat(m.PidPath()); (err == nil) != (tc.want != 0) {
				t.Fatalf("pid file kept: %v, want kept: %v", err == nil, tc.want != 0)
			}
		})
	}
}

// TestStop checks Stop's SIGTERM and its SIGKILL after the stop timeout,
// on stand-ins for containerd (a shell started with the managed config's
// path in its arguments), and that it leaves no pid file or socket.
func TestStop(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"exits on SIGTERM", ""},
		{"ignores SIGTERM: killed", "trap '' TERM; "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testManaged(t)
			fake := startFake(t, m, tc.script)
			if err := writePid(m.PidPath(), fake.Process.Pid); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(m.Socket(), nil, 0o600) // a socket left behind
			st, err := m.Status(context.Background())
			if err != nil || !st.Running || st.Pid != fake.Process.Pid || st.Answers {
				t.Fatalf("status before stop: %+v, %v", st, err)
			}
			pid, err := m.Stop(context.Background())
			if err != nil || pid != fake.Process.Pid {
				t.Fatalf("Stop = %d, %v; want %d", pid, err, fake.Process.Pid)
			}
			if alive(fake.Process.Pid) {
				t.Fatal("the process still runs")
			}
			for _, p := range []string{m.PidPath(), m.Socket()} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s left behind", p)
				}
			}
			if pid, err := m.Stop(context.Background()); pid != 0 || err != nil {
				t.Fatalf("second Stop = %d, %v; want 0 (nothing runs)", pid, err)
			}
			if st, _ := m.Status(context.Background()); st.Running {
				t.Fatalf("status after stop: %+v", st)
			}
		})
	}
}

func testManaged(t *testing.T) *Managed {
	cfg := config.Default().Containerd
	dir := t.TempDir()
	cfg.Root, cfg.State, cfg.Socket = filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "state", "c.sock")
	cfg.StopTimeout = config.Duration(200 * time.Millisecond)
	if err := os.MkdirAll(cfg.State, 0o755); err != nil {
		t.Fatal(err)
	}
	return NewManaged(cfg, "")
}

// startFake starts a shell that looks like the managed containerd in
// /proc/PID/cmdline, runs script and sleeps; the test kills and reaps it.
func startFake(t *testing.T, m *Managed, script string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", script+"sleep 60; :", "containerd", "--config", m.ConfigPath())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The shell must have set its trap before the test signals it.
	deadline := time.Now().Add(5 * time.Second)
	for !childSleeps(cmd.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return cmd
}

// childSleeps says whether pid has a child (the sleep), so the script
// before it has run.
func childSleeps(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	return err == nil && len(b) > 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestStartRefusesForeignSocket checks that Start never takes over a
// socket something else answers on.
func TestStartRefusesForeignSocket(t *testing.T) {
	m := testManaged(t)
	l, err := net.Listen("unix", m.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, started, err := m.Start(context.Background())
	if err == nil || started || !strings.Contains(err.Error(), "a containerd berth did not start answers at "+m.Socket()) {
		t.Fatalf("Start = %v, %v; want a refusal naming the socket", started, err)
	}
	if _, err := os.Stat(m.Socket()); err != nil {
		t.Fatalf("the other socket was touched: %v", err)
	}
}
