package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/docker/go-units"
	"github.com/moby/profiles/seccomp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/logs/jsonfile"
)

// specPlan is what a container's OCI spec is made from.
type specPlan struct {
	id    string
	cfg   Config
	hc    HostConfig
	image ocispec.ImageConfig
	// logPath is the json-file log, empty for --log-driver none.
	logPath string
	// network is the network step's share of the spec.
	network []oci.SpecOpts
	// volumes are the container's volumes, made already.
	volumes []volumeMount
}

// specOpts gives the options that turn containerd's default spec into the
// container's: docker's defaults, the image's config, then the flags.
// Seccomp comes last: docker's profile allows syscalls by capability.
// The user (which needs the rootfs) is left to userOpts.
func specOpts(p specPlan) ([]oci.SpecOpts, error) {
	process, err := processOpts(p.id, p.cfg, p.image)
	if err != nil {
		return nil, err
	}
	mounts, err := mountOpts(p.hc, p.volumes)
	if err != nil {
		return nil, err
	}
	resources, err := resourceOpts(p.hc.Resources)
	if err != nil {
		return nil, err
	}
	security, err := securityOpts(p.hc)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{dockerDefaults}
	opts = append(opts, process...)
	opts = append(opts, consoleSizeOpt(p.cfg, p.hc)...)
	opts = append(opts, namespaceOpts(p.hc)...)
	opts = append(opts, p.network...)
	opts = append(opts, mounts...)
	opts = append(opts, resources...)
	opts = append(opts, security...)
	if p.logPath != "" {
		opts = append(opts, oci.WithAnnotations(logAnnotations(p.logPath, p.hc.LogConfig)))
	}
	return append(opts, seccompOpt(p.hc)), nil
}

// dockerDefaults turns containerd's default spec into docker's: no
// no_new_privs and no rlimits unless asked for, no /run tmpfs, a
// read-only cgroup filesystem, and the default devices.
func dockerDefaults(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
	s.Process.NoNewPrivileges = false
	s.Process.Rlimits = nil
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
	if err := oci.WithoutRunMount(ctx, client, c, s); err != nil {
		return err
	}
	return oci.WithDefaultUnixDevices(ctx, client, c, s)
}

// defaultPath is docker's PATH for an image that sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Command is the container's command as docker works it out: the
// entrypoint (--entrypoint, else the image's) and then the args given,
// or the image's CMD when none are given and the entrypoint is the
// image's.
func Command(cfg Config, image ocispec.ImageConfig) []string {
	entrypoint, cmd := image.Entrypoint, cfg.Cmd
	if cfg.Entrypoint != nil {
		entrypoint = cfg.Entrypoint
	} else if len(cmd) == 0 {
		cmd = image.Cmd
	}
	return append(append([]string{}, entrypoint...), cmd...)
}

func processOpts(id string, cfg Config, image ocispec.ImageConfig) ([]oci.SpecOpts, error) {
	args := Command(cfg, image)
	if len(args) == 0 {
		return nil, errors.New("no command specified: the image has no CMD or ENTRYPOINT, so give one after the image name")
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = id[:12]
	}
	env := image.Env
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		// An image with ENV but no PATH (an imported rootfs) gets docker's too.
		env = append([]string{defaultPath}, env...)
	}
	env = append(append([]string{}, env...), "HOSTNAME="+hostname)
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("invalid working directory %q: it must be absolute", cwd)
	}
	opts := []oci.SpecOpts{
		oci.WithProcessArgs(args...),
		oci.WithEnv(env), oci.WithEnv(cfg.Env), // later values replace earlier ones
		oci.WithProcessCwd(cwd),
		oci.WithHostname(hostname),
	}
	if cfg.Domainname != "" {
		opts = append(opts, oci.WithDomainname(cfg.Domainname))
	}
	if cfg.Tty {
		opts = append(opts, oci.WithTTY)
	}
	return opts, nil
}

// consoleSizeOpt sizes the container's terminal from its first moment,
// so that a program that asks at once gets the size, not 0x0.
func consoleSizeOpt(cfg Config, hc HostConfig) []oci.SpecOpts {
	if !cfg.Tty || hc.ConsoleSize[0] == 0 || hc.ConsoleSize[1] == 0 {
		return nil
	}
	return []oci.SpecOpts{oci.WithTTYSize(int(hc.ConsoleSize[1]), int(hc.ConsoleSize[0]))}
}

// userOpts sets the user (-u, else the image's USER) and supplementary
// groups as docker does: the user's groups from the image's /etc/group,
// then --group-add. Both read the container's rootfs.
func userOpts(user string, groupAdd []string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if user == "" {
		opts = append(opts, oci.WithAdditionalGIDs("root"))
	} else {
		opts = append(opts, withUser(user), withUserGroups)
	}
	if len(groupAdd) > 0 {
		opts = append(opts, oci.WithAppendAdditionalGroups(groupAdd...))
	}
	return opts
}

// withUser is oci.WithUser with an error that says where the user was
// looked for.
func withUser(user string) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		if err := oci.WithUser(user)(ctx, client, c, s); err != nil {
			return fmt.Errorf("unable to find user %s in the image's /etc/passwd and /etc/group: %w", user, err)
		}
		return nil
	}
}

// withUserGroups adds the groups the image's /etc/group gives the
// process's uid.
func withUserGroups(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
	return oci.WithAdditionalGIDs(strconv.FormatUint(uint64(s.Process.User.UID), 10))(ctx, client, c, s)
}

// namespaceOpts applies --ipc, --pid and --uts (--net is the network
// step's).
func namespaceOpts(hc HostConfig) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if hc.PidMode == "host" {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if hc.UTSMode == "host" {
		opts = append(opts, oci.WithHostNamespace(specs.UTSNamespace), withoutHostname)
	}
	switch hc.IpcMode {
	case "host":
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace), oci.WithoutMounts("/dev/shm", "/dev/mqueue"),
			oci.WithMounts([]specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}}))
	case "none":
		opts = append(opts, oci.WithoutMounts("/dev/shm"))
	}
	return opts
}

// withoutHostname leaves the host's hostname to a container in the host's
// uts namespace.
func withoutHostname(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Hostname = ""
	return nil
}

// mountOpts applies -v, --mount, --tmpfs, --read-only and --shm-size;
// the volumes among them are vols, bound from their _data directories.
func mountOpts(hc HostConfig, vols []volumeMount) ([]oci.SpecOpts, error) {
	var mounts []specs.Mount
	for _, vm := range vols {
		mounts = append(mounts, bindMount(Mount{Source: vm.Source, Target: vm.Destination, ReadOnly: vm.ReadOnly}))
	}
	for _, b := range hc.Binds {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if m.Type == "volume" {
			continue
		}
		// docker makes a missing -v host directory; --mount refuses it.
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return nil, fmt.Errorf("-v %s: create the host directory: %w", b, err)
		}
		mounts = append(mounts, bindMount(m))
	}
	for _, m := range hc.Mounts {
		if m.Type == "volume" {
			continue
		}
		if m.Type == "bind" {
			if _, err := os.Stat(m.Source); err != nil {
				return nil, fmt.Errorf("--mount: invalid bind source %s: %w", m.Source, err)
			}
			mounts = append(mounts, bindMount(m))
			continue
		}
		opts := []string{"nosuid", "nodev", "noexec"}
		if m.TmpfsSize > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsSize))
		}
		if m.TmpfsMode != 0 {
			opts = append(opts, fmt.Sprintf("mode=%o", m.TmpfsMode))
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	for dest, o := range hc.Tmpfs {
		opts := []string{"nosuid", "nodev", "noexec"}
		if o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		mounts = append(mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	var dests []string
	for _, m := range mounts {
		dests = append(dests, m.Destination)
	}
	opts := []oci.SpecOpts{oci.WithoutMounts(dests...), oci.WithMounts(mounts)}
	if hc.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if hc.ShmSize > 0 {
		opts = append(opts, oci.WithDevShmSize(hc.ShmSize/1024))
	}
	return opts, nil
}

func bindMount(m Mount) specs.Mount {
	opts := []string{"rbind"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	if m.Propagation != "" {
		opts = append(opts, m.Propagation)
	}
	return specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts}
}

// logAnnotations are the annotations that make Berth's shim write the
// json-file log at path, rotated as --log-opt says (parseLogConfig has
// checked the values).
func logAnnotations(path string, lc LogConfig) map[string]string {
	cfg := jsonfile.Config{Path: path, MaxFile: 1}
	if v := lc.Config["max-size"]; v != "" {
		cfg.MaxSize, _ = units.RAMInBytes(v)
	}
	if v := lc.Config["max-file"]; v != "" {
		cfg.MaxFile, _ = strconv.Atoi(v)
	}
	return cfg.Annotations()
}

// seccompOpt applies docker's default seccomp profile, a profile file, or
// none (seccomp=unconfined, --privileged).
func seccompOpt(hc HostConfig) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		profile := ""
		for _, o := range hc.SecurityOpt {
			if v, ok := strings.CutPrefix(o, "seccomp="); ok {
				profile = v
			}
		}
		var err error
		switch {
		case profile == "unconfined" || (hc.Privileged && profile == ""):
			s.Linux.Seccomp = nil
		case profile != "":
			body, rerr := os.ReadFile(profile)
			if rerr != nil {
				return fmt.Errorf("--security-opt seccomp=%s: %w", profile, rerr)
			}
			if s.Linux.Seccomp, err = seccomp.LoadProfile(string(body), s); err != nil {
				return fmt.Errorf("--security-opt seccomp=%s: %w", profile, err)
			}
		default:
			if s.Linux.Seccomp, err = seccomp.GetDefaultProfile(s); err != nil {
				return fmt.Errorf("docker's default seccomp profile: %w", err)
			}
		}
		return nil
	}
}

// deviceNumbers gives the major and minor numbers of the block device at
// path, for the blkio limits.
func deviceNumbers(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, fmt.Errorf("%s is not a block device", path)
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}
