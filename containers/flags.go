package containers

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/berthrt/berth/health"
	"github.com/berthrt/berth/restart"
)

// Flags are `docker run`/`create`'s flags as the user typed them. Parse
// turns them into a Config and HostConfig, refusing a bad value with an
// error that names the flag and what it allows.
type Flags struct {
	Interactive, TTY, Detach, AutoRemove bool
	Name                                 string

	Env, EnvFile                            []string
	Workdir, User, Hostname, Entrypoint     string
	EntrypointSet                           bool // --entrypoint given, even empty
	Labels                                  []string
	Volumes, Mounts, Tmpfs                  []string
	ReadOnly                                bool
	Memory, MemorySwap, MemoryReservation   string
	OomKillDisable                          bool
	CPUShares                               int64
	CPUs                                    string
	CPUQuota, CPUPeriod                     int64
	CpusetCpus                              string
	BlkioWeight                             uint16
	DeviceReadBps, DeviceWriteBps           []string
	PidsLimit                               int64
	PidsLimitSet                            bool
	Ulimits, CapAdd, CapDrop                []string
	Privileged                              bool
	SecurityOpt, Devices, Sysctls, GroupAdd []string
	Restart, StopSignal                     string
	StopTimeout                             int
	StopTimeoutSet                          bool
	Init                                    bool
	Pull, CIDFile, ShmSize, Ipc, Pid, UTS   string
	LogDriver                               string
	LogOpts                                 []string

	// The health check flags (parseHealth); zero values inherit the
	// image's HEALTHCHECK.
	HealthCmd                              string
	HealthInterval, HealthTimeout          time.Duration
	HealthStartPeriod, HealthStartInterval time.Duration
	HealthRetries                          int
	NoHealthcheck                          bool

	// The network flags (parseNetwork); DefaultNetwork, berth.toml's,
	// stands in for a missing --net (empty: DefaultNetwork).
	DefaultNetwork                            string
	Networks, NetworkAliases, Publish, Expose []string
	PublishAll                                bool
	IP, MACAddress                            string
	DNS, DNSSearch, DNSOptions, AddHosts      []string
}

// Parse gives the Config and HostConfig the flags describe for image and
// the command args.
func (f *Flags) Parse(image string, args []string) (Config, HostConfig, error) {
	cfg := Config{
		Image: image, Cmd: args, Hostname: f.Hostname, User: f.User, WorkingDir: f.Workdir,
		Tty: f.TTY, OpenStdin: f.Interactive, StdinOnce: f.Interactive && !f.Detach,
		AttachStdin: f.Interactive && !f.Detach, AttachStdout: !f.Detach, AttachStderr: !f.Detach,
		StopSignal: f.StopSignal,
	}
	hc := HostConfig{AutoRemove: f.AutoRemove, ReadonlyRootfs: f.ReadOnly, Privileged: f.Privileged,
		CapAdd: f.CapAdd, CapDrop: f.CapDrop, GroupAdd: f.GroupAdd, SecurityOpt: f.SecurityOpt}
	if f.EntrypointSet {
		cfg.Entrypoint = []string{}
		if f.Entrypoint != "" {
			cfg.Entrypoint = []string{f.Entrypoint}
		}
	}
	if f.StopTimeoutSet {
		t := f.StopTimeout
		cfg.StopTimeout = &t
	}
	if f.Init {
		hc.Init = &f.Init
	}
	var err error
	steps := []func() error{
		func() (err error) { cfg.Env, err = parseEnv(f.Env, f.EnvFile); return err },
		func() (err error) { cfg.Labels, err = parseKeyValues("--label", f.Labels, false); return err },
		func() (err error) { hc.Sysctls, err = parseKeyValues("--sysctl", f.Sysctls, true); return err },
		func() error { return f.parseStorage(&hc) },
		func() error { return f.parseResources(&hc.Resources) },
		func() error { return f.parseModes(&hc) },
		func() error { return f.parseNetwork(&cfg, &hc) },
		func() (err error) { hc.RestartPolicy, err = restartPolicy(f.Restart); return err },
		func() (err error) { hc.LogConfig, err = parseLogConfig(f.LogDriver, f.LogOpts); return err },
		func() error { return checkSecurityOpts(f.SecurityOpt) },
		func() (err error) { cfg.Healthcheck, err = f.parseHealth(); return err },
	}
	for _, step := range steps {
		if err = step(); err != nil {
			return Config{}, HostConfig{}, err
		}
	}
	if err := restart.CheckAutoRemove(hc.RestartPolicy.Policy(), f.AutoRemove); err != nil {
		return Config{}, HostConfig{}, err
	}
	for _, v := range f.Volumes {
		if m, err := parseBind(v); err == nil && m.Type == "volume" && m.Source == "" {
			addVolume(&cfg, m.Target)
		}
	}
	if f.ShmSize != "" {
		if hc.ShmSize, err = units.RAMInBytes(f.ShmSize); err != nil || hc.ShmSize <= 0 {
			return Config{}, HostConfig{}, fmt.Errorf("invalid --shm-size %q: want a positive size such as 64m", f.ShmSize)
		}
	}
	return cfg, hc, nil
}

// parseHealth is the health check the flags give, as docker's CLI makes
// it: nil without any; {"NONE"} for --no-healthcheck, which no other
// --health-* may join; else --health-cmd as a CMD-SHELL test and the
// settings given (zero: the image's, see health.Merge).
func (f *Flags) parseHealth() (*health.Config, error) {
	given := f.HealthCmd != "" || f.HealthInterval != 0 || f.HealthTimeout != 0 || f.HealthStartPeriod != 0 ||
		f.HealthStartInterval != 0 || f.HealthRetries != 0
	if f.NoHealthcheck {
		if given {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &health.Config{Test: []string{"NONE"}}, nil
	}
	if !given {
		return nil, nil
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--health-interval", f.HealthInterval}, {"--health-timeout", f.HealthTimeout}, {"--health-start-period", f.HealthStartPeriod}, {"--health-start-interval", f.HealthStartInterval}} {
		if d.value < 0 {
			return nil, fmt.Errorf("%s cannot be negative", d.flag)
		}
		if d.value != 0 && d.value < health.MinimumDuration {
			return nil, fmt.Errorf("%s %v: cannot be less than %v", d.flag, d.value, health.MinimumDuration)
		}
	}
	if f.HealthRetries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	cfg := &health.Config{Interval: f.HealthInterval, Timeout: f.HealthTimeout, StartPeriod: f.HealthStartPeriod,
		StartInterval: f.HealthStartInterval, Retries: f.HealthRetries}
	if f.HealthCmd != "" {
		cfg.Test = []string{"CMD-SHELL", f.HealthCmd}
	}
	return cfg, nil
}

// parseEnv reads --env-file files, then -e values (later ones win in the
// spec); "NAME" alone takes NAME's value from berth's environment, as
// docker does, and is dropped when unset.
func parseEnv(env, files []string) ([]string, error) {
	var out []string
	for _, file := range files {
		lines, err := readEnvFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	for _, e := range env {
		v, err := envValue("-e", e)
		if err != nil {
			return nil, err
		}
		if v != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

func envValue(flag, e string) (string, error) {
	name, _, hasValue := strings.Cut(e, "=")
	if name == "" || strings.ContainsAny(name, " \t") {
		return "", fmt.Errorf("invalid %s %q: want NAME=VALUE or NAME", flag, e)
	}
	if hasValue {
		return e, nil
	}
	if v, ok := os.LookupEnv(name); ok {
		return name + "=" + v, nil
	}
	return "", nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := envValue("--env-file "+path+": line", line)
		if err != nil {
			return nil, err
		}
		if v != "" {
			out = append(out, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return out, nil
}

// parseKeyValues parses KEY=VALUE flags; with needValue false a bare KEY
// has the empty value (docker's -l).
func parseKeyValues(flag string, values []string, needValue bool) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(values))
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if k == "" || (needValue && !ok) {
			return nil, fmt.Errorf("invalid %s %q: want KEY=VALUE", flag, v)
		}
		if strings.HasPrefix(k, "berth/") {
			return nil, fmt.Errorf("invalid %s %q: keys under berth/ are berth's own", flag, v)
		}
		out[k] = val
	}
	return out, nil
}

// parseStorage parses -v, --mount and --tmpfs; two of them on one
// container path are an error, as with docker.
func (f *Flags) parseStorage(hc *HostConfig) error {
	taken := map[string]bool{}
	claim := func(dest string) error {
		dest = filepath.Clean(dest)
		if taken[dest] {
			return fmt.Errorf("Duplicate mount point: %s: give each container path one -v, --mount or --tmpfs", dest)
		}
		taken[dest] = true
		return nil
	}
	for _, v := range f.Volumes {
		m, err := parseBind(v)
		if err != nil {
			return err
		}
		if err := claim(m.Target); err != nil {
			return err
		}
		hc.Binds = append(hc.Binds, v)
	}
	for _, m := range f.Mounts {
		mnt, err := parseMountFlag(m)
		if err != nil {
			return err
		}
		if err := claim(mnt.Target); err != nil {
			return err
		}
		hc.Mounts = append(hc.Mounts, mnt)
	}
	for _, t := range f.Tmpfs {
		dest, opts, _ := strings.Cut(t, ":")
		if !filepath.IsAbs(dest) {
			return fmt.Errorf("invalid --tmpfs %q: the container path must be absolute", t)
		}
		if err := claim(dest); err != nil {
			return err
		}
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[filepath.Clean(dest)] = opts
	}
	return nil
}

// parseBind parses -v by docker's rule: HOST:CONTAINER[:OPTIONS] is a
// bind when HOST is an absolute path, NAME:CONTAINER[:OPTIONS] a named
// volume (a name is [a-zA-Z0-9][a-zA-Z0-9_.-]+), and a lone CONTAINER
// path an anonymous volume (Type "volume", no Source). Anything else in
// HOST, such as ./data, is an error that asks for an absolute path.
func parseBind(v string) (Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) == 1 {
		if !filepath.IsAbs(v) {
			return Mount{}, fmt.Errorf("invalid -v %q: the container path must be absolute", v)
		}
		return Mount{Type: "volume", Target: v}, nil
	}
	if len(parts) > 3 {
		return Mount{}, fmt.Errorf("invalid -v %q: want HOST-PATH:CONTAINER-PATH[:OPTIONS], VOLUME:CONTAINER-PATH[:OPTIONS] or CONTAINER-PATH", v)
	}
	m := Mount{Type: "bind", Source: parts[0], Target: parts[1]}
	switch {
	case filepath.IsAbs(m.Source):
	case validName.MatchString(m.Source):
		m.Type = "volume"
	default:
		return Mount{}, fmt.Errorf("invalid -v %q: %q is neither a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+) nor an absolute host path; to bind a host directory, give its absolute path (e.g. \"$PWD/%s\")",
			v, m.Source, strings.TrimPrefix(m.Source, "./"))
	}
	if !filepath.IsAbs(m.Target) {
		return Mount{}, fmt.Errorf("invalid -v %q: the container path %q must be absolute", v, m.Target)
	}
	if len(parts) == 3 {
		for _, opt := range strings.Split(parts[2], ",") {
			switch opt {
			case "ro":
				m.ReadOnly = true
			case "rw":
			case "nocopy":
				if m.Type != "volume" {
					return Mount{}, fmt.Errorf("invalid -v %q: nocopy is a volume's option, not a bind's", v)
				}
				m.VolumeOptions = &VolumeOptions{NoCopy: true}
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				if m.Type != "bind" {
					return Mount{}, fmt.Errorf("invalid -v %q: propagation %s is a bind's option, not a volume's", v, opt)
				}
				m.Propagation = opt
			default:
				return Mount{}, fmt.Errorf("invalid -v %q: unknown option %q: want ro, rw, nocopy (volumes) or a propagation (binds: rprivate, rshared, rslave, …)", v, opt)
			}
		}
	}
	return m, nil
}

// parseMountFlag parses --mount type=bind|volume|tmpfs,source=…,target=…[,readonly].
func parseMountFlag(v string) (Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return Mount{}, fmt.Errorf("invalid --mount %q: %w", v, err)
	}
	m := Mount{Type: "volume"}
	for _, field := range fields {
		key, val, hasVal := strings.Cut(field, "=")
		switch strings.ToLower(key) {
		case "type":
			m.Type = val
		case "source", "src":
			m.Source = val
		case "target", "destination", "dst":
			m.Target = val
		case "readonly", "ro":
			m.ReadOnly = !hasVal || val == "true" || val == "1"
		case "bind-propagation":
			m.Propagation = val
		case "volume-nocopy":
			m.VolumeOptions = &VolumeOptions{NoCopy: !hasVal || val == "true" || val == "1"}
		case "tmpfs-size":
			if m.TmpfsSize, err = units.RAMInBytes(val); err != nil {
				return Mount{}, fmt.Errorf("invalid --mount %q: tmpfs-size %q: %w", v, val, err)
			}
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return Mount{}, fmt.Errorf("invalid --mount %q: tmpfs-mode %q: want octal such as 1777", v, val)
			}
			m.TmpfsMode = uint32(mode)
		default:
			return Mount{}, fmt.Errorf("invalid --mount %q: unknown key %q", v, key)
		}
	}
	switch {
	case m.Type != "bind" && m.Type != "tmpfs" && m.Type != "volume":
		return Mount{}, fmt.Errorf("invalid --mount %q: type %q is not supported: want type=bind, type=volume or type=tmpfs", v, m.Type)
	case !filepath.IsAbs(m.Target):
		return Mount{}, fmt.Errorf("invalid --mount %q: target must be an absolute path", v)
	case m.Type == "bind" && !filepath.IsAbs(m.Source):
		return Mount{}, fmt.Errorf("invalid --mount %q: a bind's source must be an absolute host path", v)
	case m.Type == "tmpfs" && m.Source != "":
		return Mount{}, fmt.Errorf("invalid --mount %q: a tmpfs takes no source", v)
	case m.Type == "volume" && m.Source != "" && !validName.MatchString(m.Source):
		return Mount{}, fmt.Errorf("invalid --mount %q: volume name %q: a name is 2 or more of [a-zA-Z0-9_.-], starting with a letter or digit", v, m.Source)
	case m.Type != "volume" && m.VolumeOptions != nil:
		return Mount{}, fmt.Errorf("invalid --mount %q: volume-nocopy is for type=volume", v)
	}
	return m, nil
}

// restartPolicy parses --restart with restart.ParsePolicy, the one
// parser the monitor reads the label with too, into docker's shape.
func restartPolicy(value string) (RestartPolicy, error) {
	p, err := restart.ParsePolicy(value)
	if err != nil {
		return RestartPolicy{}, err
	}
	return RestartPolicy{Name: string(p.Mode), MaximumRetryCount: p.MaxRetries}, nil
}

// Policy is the policy as package restart knows it.
func (p RestartPolicy) Policy() restart.Policy {
	if p.Name == "" {
		return restart.Policy{Mode: restart.No}
	}
	return restart.Policy{Mode: restart.Mode(p.Name), MaxRetries: p.MaximumRetryCount}
}

// String is the policy as the user gives it (the berth/restart label).
func (p RestartPolicy) String() string { return p.Policy().String() }

// parseLogConfig parses --log-driver and --log-opt.
func parseLogConfig(driver string, opts []string) (LogConfig, error) {
	if driver == "" {
		driver = "json-file"
	}
	if driver != "json-file" && driver != "none" {
		return LogConfig{}, fmt.Errorf("invalid --log-driver %q: want json-file or none", driver)
	}
	lc := LogConfig{Type: driver, Config: map[string]string{}}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return LogConfig{}, fmt.Errorf("invalid --log-opt %q: want KEY=VALUE", o)
		}
		if driver == "none" {
			return LogConfig{}, fmt.Errorf("invalid --log-opt %q: the none log driver takes no options", o)
		}
		switch k {
		case "max-size":
			if n, err := units.RAMInBytes(v); err != nil || n < 0 {
				return LogConfig{}, fmt.Errorf("invalid --log-opt max-size=%s: want a size such as 10m", v)
			}
		case "max-file":
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				return LogConfig{}, fmt.Errorf("invalid --log-opt max-file=%s: want a number ≥ 1", v)
			}
		default:
			return LogConfig{}, fmt.Errorf("invalid --log-opt %q: the json-file driver takes max-size and max-file", o)
		}
		lc.Config[k] = v
	}
	if lc.Config["max-file"] != "" && lc.Config["max-file"] != "1" && lc.Config["max-size"] == "" {
		return LogConfig{}, errors.New("invalid --log-opt max-file: it needs max-size, the size at which the log rotates")
	}
	return lc, nil
}

// checkSecurityOpts accepts --security-opt seccomp=unconfined|FILE and
// no-new-privileges[=true|false].
func checkSecurityOpts(opts []string) error {
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if o == "no-new-privileges" || (k == "no-new-privileges" && (v == "true" || v == "false")) {
			continue
		}
		if k == "seccomp" && v != "" {
			continue
		}
		return fmt.Errorf("invalid --security-opt %q: want seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges", o)
	}
	return nil
}

// addVolume records an anonymous volume's path in cfg.Volumes.
func addVolume(cfg *Config, path string) {
	if cfg.Volumes == nil {
		cfg.Volumes = map[string]struct{}{}
	}
	cfg.Volumes[path] = struct{}{}
}
