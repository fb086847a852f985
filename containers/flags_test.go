package containers

import (
	"reflect"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestParseFlagsRefusals checks that a bad value names the flag and what
// it allows.
func TestParseFlagsRefusals(t *testing.T) {
	tests := []struct {
		name string
		f    Flags
		want string
	}{
		{"memory", Flags{Memory: "lots"}, `invalid --memory "lots": want a positive size`},
		{"memory too small", Flags{Memory: "1m"}, "the minimum is 6m"},
		{"swap below memory", Flags{Memory: "64m", MemorySwap: "32m"}, "must be at least --memory"},
		{"swap without memory", Flags{MemorySwap: "64m"}, "it needs --memory"},
		{"cpus", Flags{CPUs: "zero"}, `invalid --cpus "zero"`},
		{"cpus and quota", Flags{CPUs: "1", CPUQuota: 50000}, "conflicting options: --cpus and --cpu-quota"},
		{"cpu period", Flags{CPUPeriod: 10}, "want 1000 to 1000000"},
		{"blkio weight", Flags{BlkioWeight: 5}, "want 10 to 1000"},
		{"read bps", Flags{DeviceReadBps: []string{"sda:1mb"}}, "want /dev/DEVICE:RATE"},
		{"ulimit", Flags{Ulimits: []string{"nofile"}}, `invalid --ulimit "nofile"`},
		{"device", Flags{Devices: []string{"fuse"}}, `invalid --device "fuse"`},
		{"restart", Flags{Restart: "sometimes"}, "allowed are no, always, unless-stopped, on-failure and on-failure:N"},
		{"restart count", Flags{Restart: "always:3"}, "a maximum retry count is allowed with on-failure only"},
		{"restart and rm", Flags{Restart: "always", AutoRemove: true}, "conflicting options: --restart always and --rm"},
		{"log driver", Flags{LogDriver: "syslog"}, "want json-file or none"},
		{"no-healthcheck and health-cmd", Flags{NoHealthcheck: true, HealthCmd: "true"}, "--no-healthcheck conflicts with --health-* options"},
		{"negative health interval", Flags{HealthInterval: -time.Second}, "--health-interval cannot be negative"},
		{"health timeout under 1ms", Flags{HealthTimeout: time.Microsecond}, "--health-timeout 1µs: cannot be less than 1ms"},
		{"negative health retries", Flags{HealthRetries: -1}, "--health-retries cannot be negative"},
		{"log opt", Flags{LogOpts: []string{"tag=x"}}, "the json-file driver takes max-size and max-file"},
		{"max-file without max-size", Flags{LogOpts: []string{"max-file=3"}}, "it needs max-size"},
		{"security opt", Flags{SecurityOpt: []string{"apparmor=x"}}, "want seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges"},
		{"net none beside a network", Flags{Networks: []string{"none", "bridge"}}, "conflicting options"},
		{"alias on the default network", Flags{NetworkAliases: []string{"db"}}, "only supported for user-defined networks"},
		{"publish with container:", Flags{Networks: []string{"container:x"}, Publish: []string{"80"}}, "port publishing"},
		{"bad publish", Flags{Publish: []string{"80:x"}}, "invalid -p"},
		{"bad add-host", Flags{AddHosts: []string{"db"}}, "want NAME:IP"},
		{"bad ip", Flags{Networks: []string{"n1"}, IP: "10.0.0"}, "invalid --ip"},
		{"pid", Flags{Pid: "container:x"}, `invalid --pid "container:x": want host`},
		{"relative bind", Flags{Volumes: []string{"./data:/data"}}, `"./data" is neither a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+) nor an absolute host path`},
		{"mount type", Flags{Mounts: []string{"type=npipe,target=/x"}}, `type "npipe" is not supported`},
		{"relative target", Flags{Volumes: []string{"/data:data"}}, "must be absolute"},
		{"bind option", Flags{Volumes: []string{"/a:/b:rx"}}, `unknown option "rx"`},
		{"tmpfs path", Flags{Tmpfs: []string{"tmp"}}, "the container path must be absolute"},
		{"two volumes on a path", Flags{Volumes: []string{"ab:/data", "/host:/data/"}}, "Duplicate mount point: /data"},
		{"a volume and a tmpfs", Flags{Mounts: []string{"type=volume,target=/x"}, Tmpfs: []string{"/x:size=1m"}}, "Duplicate mount point: /x"},
		{"sysctl", Flags{Sysctls: []string{"net.ipv4.ip_forward"}}, "want KEY=VALUE"},
		{"label under berth/", Flags{Labels: []string{"berth/name=x"}}, "keys under berth/ are berth's own"},
		{"env", Flags{Env: []string{"=x"}}, "want NAME=VALUE or NAME"},
		{"shm size", Flags{ShmSize: "big"}, "invalid --shm-size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.f.Parse("img", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestParseFlags checks the Config and HostConfig flags give.
func TestParseFlags(t *testing.T) {
	t.Setenv("FROM_BERTH", "inherited")
	tests := []struct {
		name  string
		f     Flags
		check func(Config, HostConfig) bool
	}{
		{"defaults", Flags{}, func(c Config, h HostConfig) bool {
			return h.RestartPolicy.Name == "no" && h.NetworkMode == "bridge" && len(h.Endpoints) == 1 && h.IpcMode == "private" && h.LogConfig.Type == "json-file" &&
				c.Entrypoint == nil && c.AttachStdout && !c.OpenStdin
		}},
		{"-e NAME takes berth's value, an unset one is dropped", Flags{Env: []string{"A=1", "FROM_BERTH", "NOT_SET_ANYWHERE"}}, func(c Config, _ HostConfig) bool {
			return strings.Join(c.Env, ",") == "A=1,FROM_BERTH=inherited"
		}},
		{"--entrypoint empty clears it", Flags{EntrypointSet: true}, func(c Config, _ HostConfig) bool { return c.Entrypoint != nil && len(c.Entrypoint) == 0 }},
		{"sizes", Flags{Memory: "32m", MemorySwap: "-1", MemoryReservation: "16m", ShmSize: "1g"}, func(_ Config, h HostConfig) bool {
			return h.Memory == 32<<20 && h.MemorySwap == -1 && h.MemoryReservation == 16<<20 && h.ShmSize == 1<<30
		}},
		{"cpus", Flags{CPUs: "0.3"}, func(_ Config, h HostConfig) bool { return h.NanoCPUs == 300000000 }},
		{"pids-limit 0 is unlimited", Flags{PidsLimitSet: true}, func(_ Config, h HostConfig) bool { return *h.PidsLimit == -1 }},
		{"restart on-failure:3", Flags{Restart: "on-failure:3"}, func(_ Config, h HostConfig) bool {
			return h.RestartPolicy == RestartPolicy{Name: "on-failure", MaximumRetryCount: 3} && h.RestartPolicy.String() == "on-failure:3"
		}},
		{"device with permissions only", Flags{Devices: []string{"/dev/fuse:rw"}}, func(_ Config, h HostConfig) bool {
			return h.Devices[0] == DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rw"}
		}},
		{"mount", Flags{Mounts: []string{"type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777"}}, func(_ Config, h HostConfig) bool {
			return h.Mounts[0] == Mount{Type: "tmpfs", Target: "/t", TmpfsSize: 1 << 20, TmpfsMode: 0o1777}
		}},
		{"log opts", Flags{LogOpts: []string{"max-size=10m", "max-file=3"}}, func(_ Config, h HostConfig) bool {
			return h.LogConfig.Config["max-size"] == "10m" && h.LogConfig.Config["max-file"] == "3"
		}},
		{"networks, aliases and ip on the first", Flags{Networks: []string{"n1", "n2"}, NetworkAliases: []string{"db"}, IP: "10.1.0.5"}, func(_ Config, h HostConfig) bool {
			return h.NetworkMode == "n1" && len(h.Endpoints) == 2 && h.Endpoints[0].IP == "10.1.0.5" && h.Endpoints[0].Aliases[0] == "db" && h.Endpoints[1].Network == "n2" && h.Endpoints[1].IP == ""
		}},
		{"publish forms", Flags{Publish: []string{"8080:80", "127.0.0.1::53/udp", "9000"}, Expose: []string{"7000-7001"}}, func(c Config, h HostConfig) bool {
			return h.PortBindings["80/tcp"][0] == PortBinding{HostPort: "8080"} && h.PortBindings["53/udp"][0] == PortBinding{HostIP: "127.0.0.1"} &&
				h.PortBindings["9000/tcp"][0] == PortBinding{} && len(c.ExposedPorts) == 5
		}},
		{"dns and hosts", Flags{DNS: []string{"10.0.0.2"}, DNSSearch: []string{"example.test"}, AddHosts: []string{"db:10.0.0.9"}}, func(_ Config, h HostConfig) bool {
			return h.DNS[0] == "10.0.0.2" && h.DNSSearch[0] == "example.test" && h.ExtraHosts[0] == "db:10.0.0.9"
		}},
		{"-it -d", Flags{Interactive: true, TTY: true, Detach: true}, func(c Config, _ HostConfig) bool {
			return c.OpenStdin && c.Tty && !c.AttachStdin && !c.AttachStdout && !c.StdinOnce
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, hc, err := tc.f.Parse("img", []string{"cmd"})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg, hc) {
				t.Fatalf("Parse gave %+v\n%+v", cfg, hc)
			}
		})
	}
}

// TestParseVolumeFlags checks docker's rule for -v (an absolute source is
// a bind, a name is a named volume, a lone path an anonymous volume, a
// relative path an error asking for an absolute one) and --mount
// type=volume.
func TestParseVolumeFlags(t *testing.T) {
	v, mount := parseBind, parseMountFlag
	tests := []struct {
		parse   func(string) (Mount, error)
		in      string
		want    Mount
		wantErr string
	}{
		{parse: v, in: "/host:/ctr", want: Mount{Type: "bind", Source: "/host", Target: "/ctr"}},
		{parse: v, in: "/host:/ctr:ro", want: Mount{Type: "bind", Source: "/host", Target: "/ctr", ReadOnly: true}},
		{parse: v, in: "/host:/ctr:rw,rshared", want: Mount{Type: "bind", Source: "/host", Target: "/ctr", Propagation: "rshared"}},
		{parse: v, in: "data:/data", want: Mount{Type: "volume", Source: "data", Target: "/data"}},
		{parse: v, in: "my.vol_1-x:/data:ro", want: Mount{Type: "volume", Source: "my.vol_1-x", Target: "/data", ReadOnly: true}},
		{parse: v, in: "data:/data:nocopy", want: Mount{Type: "volume", Source: "data", Target: "/data", VolumeOptions: &VolumeOptions{NoCopy: true}}},
		{parse: v, in: "/data", want: Mount{Type: "volume", Target: "/data"}},
		{parse: v, in: "./data:/data", wantErr: `"./data" is neither a volume name`},
		{parse: v, in: "data/sub:/data", wantErr: "give its absolute path"},
		{parse: v, in: "../data:/data", wantErr: "give its absolute path"},
		{parse: v, in: "d:/data", wantErr: "neither a volume name"},
		{parse: v, in: "data", wantErr: "the container path must be absolute"},
		{parse: v, in: "data:rel", wantErr: `the container path "rel" must be absolute`},
		{parse: v, in: "/data:ro", wantErr: `the container path "ro" must be absolute`},
		{parse: v, in: "/a:/b:nocopy", wantErr: "nocopy is a volume's option"},
		{parse: v, in: "data:/b:rshared", wantErr: "is a bind's option"},
		{parse: v, in: "/a:/b:rx", wantErr: `unknown option "rx"`},
		{parse: v, in: "/a:/b:ro:x", wantErr: "want HOST-PATH:CONTAINER-PATH"},
		{parse: mount, in: "type=volume,source=data,target=/data", want: Mount{Type: "volume", Source: "data", Target: "/data"}},
		{parse: mount, in: "source=data,target=/data,readonly", want: Mount{Type: "volume", Source: "data", Target: "/data", ReadOnly: true}},
		{parse: mount, in: "type=volume,target=/data,volume-nocopy", want: Mount{Type: "volume", Target: "/data", VolumeOptions: &VolumeOptions{NoCopy: true}}},
		{parse: mount, in: "type=volume,source=./d,target=/data", wantErr: `volume name "./d"`},
		{parse: mount, in: "type=bind,source=/a,target=/data,volume-nocopy", wantErr: "volume-nocopy is for type=volume"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tc.parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse %q = %+v, %v; want an error saying %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parse %q = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestVolumeRequests checks which mounts get volumes: -v and --mount
// volumes, then the image's VOLUMEs that no mount covers.
func TestVolumeRequests(t *testing.T) {
	hc := HostConfig{
		Binds:  []string{"data:/data", "/host:/etc/conf", "/anon"},
		Mounts: []Mount{{Type: "volume", Source: "cache", Target: "/cache", ReadOnly: true}, {Type: "tmpfs", Target: "/scratch"}},
		Tmpfs:  map[string]string{"/run": ""},
	}
	img := ocispec.ImageConfig{Volumes: map[string]struct{}{
		"/data/": {}, "/etc/conf": {}, "/scratch": {}, "/run": {}, "/var/lib/db": {}, "/logs": {},
	}}
	got, err := volumeRequests(hc, img)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Type: "volume", Source: "data", Target: "/data"},
		{Type: "volume", Target: "/anon"},
		{Type: "volume", Source: "cache", Target: "/cache", ReadOnly: true},
		{Type: "volume", Target: "/logs"},
		{Type: "volume", Target: "/var/lib/db"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("volumeRequests:\n got %+v\nwant %+v", got, want)
	}
}
