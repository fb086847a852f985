package containers

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/logs/jsonfile"
)

// specFor makes the spec flags give for an image with config img, as
// Create does less the user (which reads the rootfs).
func specFor(t *testing.T, f Flags, img ocispec.ImageConfig, args ...string) (*oci.Spec, error) {
	t.Helper()
	if len(f.Networks) == 0 {
		f.Networks = []string{"none"} // no network store here
	}
	cfg, hc, err := f.Parse("img", args)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	id := strings.Repeat("ab", 32)
	dir := t.TempDir()
	net, err := prepareNetwork(context.Background(), networkRequest{id: id, dir: dir, hostname: "host1", cfg: cfg, hc: hc, image: img})
	if err != nil {
		t.Fatal(err)
	}
	plan := specPlan{id: id, cfg: cfg, hc: hc, image: img, network: net.opts}
	if hc.LogConfig.Type != "none" {
		plan.logPath = jsonfile.PathFor(dir, id)
	}
	opts, err := specOpts(plan)
	if err != nil {
		return nil, err
	}
	ctx := namespaces.WithNamespace(context.Background(), "default")
	return oci.GenerateSpec(ctx, nil, &containers.Container{ID: id}, opts...)
}

func hasMount(s *oci.Spec, dest string, pred func(specs.Mount) bool) bool {
	for _, m := range s.Mounts {
		if m.Destination == dest && pred(m) {
			return true
		}
	}
	return false
}

// TestSpecFromFlags checks the OCI spec an image's config and the flags
// give: docker's defaults, the image honoured, each flag group.
func TestSpecFromFlags(t *testing.T) {
	busybox := ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", "A=image"}}
	tests := []struct {
		name  string
		f     Flags
		img   ocispec.ImageConfig
		args  []string
		check func(*oci.Spec) bool
	}{
		{"docker's defaults", Flags{}, busybox, nil, func(s *oci.Spec) bool {
			caps := s.Process.Capabilities.Bounding
			return strings.Join(s.Process.Args, " ") == "sh" && !s.Process.NoNewPrivileges && s.Process.Rlimits == nil &&
				len(caps) == 14 && slices.Contains(caps, "CAP_NET_RAW") && !slices.Contains(caps, "CAP_SYS_ADMIN") &&
				s.Linux.Seccomp != nil && s.Linux.Seccomp.DefaultAction == specs.ActErrno &&
				slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") && slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") &&
				!hasMount(s, "/run", func(specs.Mount) bool { return true }) &&
				hasMount(s, "/sys/fs/cgroup", func(m specs.Mount) bool { return slices.Contains(m.Options, "ro") }) &&
				hasMount(s, "/etc/hosts", func(m specs.Mount) bool { return m.Type == "bind" }) &&
				s.Hostname == "abababababab" && s.Process.Cwd == "/" &&
				shimLog(s) == jsonfile.Config{Path: s.Annotations[jsonfile.AnnotationPath], MaxFile: 1}
		}},
		{"image entrypoint, cmd, env, workdir", Flags{Env: []string{"A=flag"}}, ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"x"}, Env: []string{"A=image", "B=image"}, WorkingDir: "/w"}, nil, func(s *oci.Spec) bool {
			env := strings.Join(s.Process.Env, ",")
			return strings.Join(s.Process.Args, " ") == "/ep x" && strings.Contains(env, "A=flag") && !strings.Contains(env, "A=image") &&
				strings.Contains(env, "B=image") && strings.Contains(env, "HOSTNAME=abababababab") && s.Process.Cwd == "/w"
		}},
		{"args replace the image's cmd, not its entrypoint", Flags{}, ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"x"}}, []string{"y"}, func(s *oci.Spec) bool {
			return strings.Join(s.Process.Args, " ") == "/ep y"
		}},
		{"--entrypoint drops the image's cmd", Flags{Entrypoint: "/bin/echo", EntrypointSet: true}, busybox, nil, func(s *oci.Spec) bool {
			return strings.Join(s.Process.Args, " ") == "/bin/echo"
		}},
		{"no PATH in the image gets docker's", Flags{}, ocispec.ImageConfig{Cmd: []string{"sh"}}, nil, func(s *oci.Spec) bool {
			return slices.Contains(s.Process.Env, defaultPath)
		}},
		{"an image with ENV but no PATH gets docker's beside it", Flags{}, ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"A=1"}}, nil, func(s *oci.Spec) bool {
			return slices.Contains(s.Process.Env, defaultPath) && slices.Contains(s.Process.Env, "A=1")
		}},
		{"-t -h -w", Flags{TTY: true, Hostname: "box", Workdir: "/tmp"}, busybox, nil, func(s *oci.Spec) bool {
			return s.Process.Terminal && s.Hostname == "box" && s.Process.Cwd == "/tmp" && slices.Contains(s.Process.Env, "TERM=xterm")
		}},
		{"memory", Flags{Memory: "32m", MemoryReservation: "16m", OomKillDisable: true}, busybox, nil, func(s *oci.Spec) bool {
			m := s.Linux.Resources.Memory
			return *m.Limit == 32<<20 && *m.Swap == 64<<20 && *m.Reservation == 16<<20 && *m.DisableOOMKiller
		}},
		{"cpu", Flags{CPUs: "0.5", CPUShares: 512, CpusetCpus: "0"}, busybox, nil, func(s *oci.Spec) bool {
			c := s.Linux.Resources.CPU
			return *c.Quota == 50000 && *c.Period == 100000 && *c.Shares == 512 && c.Cpus == "0"
		}},
		{"pids and ulimits", Flags{PidsLimit: 10, PidsLimitSet: true, Ulimits: []string{"nofile=100:200"}}, busybox, nil, func(s *oci.Spec) bool {
			r := s.Process.Rlimits
			return *s.Linux.Resources.Pids.Limit == 10 && len(r) == 1 && r[0] == specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}
		}},
		{"blkio weight", Flags{BlkioWeight: 300}, busybox, nil, func(s *oci.Spec) bool { return *s.Linux.Resources.BlockIO.Weight == 300 }},
		{"capabilities", Flags{CapDrop: []string{"ALL"}, CapAdd: []string{"net_admin", "CAP_KILL"}}, busybox, nil, func(s *oci.Spec) bool {
			return strings.Join(s.Process.Capabilities.Bounding, ",") == "CAP_KILL,CAP_NET_ADMIN"
		}},
		{"cap-drop one", Flags{CapDrop: []string{"NET_RAW"}}, busybox, nil, func(s *oci.Spec) bool {
			return len(s.Process.Capabilities.Effective) == 13 && !slices.Contains(s.Process.Capabilities.Effective, "CAP_NET_RAW")
		}},
		{"privileged", Flags{Privileged: true}, busybox, nil, func(s *oci.Spec) bool {
			return s.Linux.Seccomp == nil && len(s.Linux.MaskedPaths) == 0 && slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		}},
		{"seccomp unconfined, no-new-privileges", Flags{SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges"}}, busybox, nil, func(s *oci.Spec) bool {
			return s.Linux.Seccomp == nil && s.Process.NoNewPrivileges
		}},
		{"binds, tmpfs, read-only, shm", Flags{Volumes: []string{"/srv:/data:ro"}, Tmpfs: []string{"/t:size=1m"}, ReadOnly: true, ShmSize: "1m"}, busybox, nil, func(s *oci.Spec) bool {
			return hasMount(s, "/data", func(m specs.Mount) bool { return m.Source == "/srv" && slices.Contains(m.Options, "ro") }) &&
				hasMount(s, "/t", func(m specs.Mount) bool { return m.Type == "tmpfs" && slices.Contains(m.Options, "size=1m") }) &&
				hasMount(s, "/dev/shm", func(m specs.Mount) bool { return slices.Contains(m.Options, "size=1024k") }) && s.Root.Readonly
		}},
		{"namespaces", Flags{Pid: "host", Ipc: "host", Networks: []string{"host"}, UTS: "host"}, busybox, nil, func(s *oci.Spec) bool {
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.PIDNamespace || ns.Type == specs.IPCNamespace || ns.Type == specs.NetworkNamespace || ns.Type == specs.UTSNamespace {
					return false
				}
			}
			return s.Hostname == ""
		}},
		{"sysctl", Flags{Sysctls: []string{"net.ipv4.ip_forward=1"}}, busybox, nil, func(s *oci.Spec) bool {
			return s.Linux.Sysctl["net.ipv4.ip_forward"] == "1"
		}},
		{"log rotation", Flags{LogOpts: []string{"max-size=1k", "max-file=3"}}, busybox, nil, func(s *oci.Spec) bool {
			id := strings.Repeat("ab", 32)
			return shimLog(s) == jsonfile.Config{Path: s.Annotations[jsonfile.AnnotationPath], MaxSize: 1024, MaxFile: 3} &&
				strings.HasSuffix(s.Annotations[jsonfile.AnnotationPath], "/containers/"+id+"/"+id+"-json.log")
		}},
		{"log driver none", Flags{LogDriver: "none"}, busybox, nil, func(s *oci.Spec) bool {
			_, ok, err := jsonfile.ConfigFromAnnotations(s.Annotations)
			return !ok && err == nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := specFor(t, tc.f, tc.img, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Fatalf("spec:\nprocess %+v\nlinux %+v\nmounts %+v\nannotations %v", s.Process, s.Linux, s.Mounts, s.Annotations)
			}
		})
	}
	if _, err := specFor(t, Flags{}, ocispec.ImageConfig{}); err == nil || !strings.Contains(err.Error(), "no command specified") {
		t.Errorf("an image with no command and no args: %v", err)
	}
}

// shimLog is the log Berth's shim makes of the spec's annotations (the
// zero Config when it would write none).
func shimLog(s *oci.Spec) jsonfile.Config {
	cfg, ok, err := jsonfile.ConfigFromAnnotations(s.Annotations)
	if !ok || err != nil {
		return jsonfile.Config{}
	}
	return cfg
}
