package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadMissingFileIsDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "berth.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("got %+v, want the defaults %+v", cfg, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want func(*Config)
	}{
		{"empty file", "", func(*Config) {}},
		{"top level", "address = \"unix:///run/c.sock\"\nnamespace = \"ns1\"\ndata_root = \"/srv/berth\"\ndebug = true\n",
			func(c *Config) {
				c.Address, c.Namespace, c.DataRoot, c.Debug = "unix:///run/c.sock", "ns1", "/srv/berth", true
			}},
		{"containerd", `[containerd]
binary = "/opt/containerd"
root = "/srv/ctrd"
state = "/run/b"
socket = "/run/b/c.sock"
log_level = "debug"
containers_per_shim = 1
shim_linger = "0s"
stop_timeout = "1m30s"
`, func(c *Config) {
			c.Containerd = Containerd{Binary: "/opt/containerd", Root: "/srv/ctrd", State: "/run/b", Socket: "/run/b/c.sock",
				LogLevel: "debug", ContainersPerShim: 1, ShimLinger: 0, StopTimeout: Duration(90 * time.Second)}
		}},
		{"only one containerd key keeps the other defaults", "[containerd]\ncontainers_per_shim = 4\n",
			func(c *Config) { c.Containerd.ContainersPerShim = 4 }},
		{"registry", `[registry]
insecure = ["registry.local:5000", "10.0.0.1"]
[registry.mirrors]
"docker.io" = ["https://mirror.example", "http://127.0.0.1:5000"]
`, func(c *Config) {
			c.Registry.Insecure = []string{"registry.local:5000", "10.0.0.1"}
			c.Registry.Mirrors = map[string][]string{"docker.io": {"https://mirror.example", "http://127.0.0.1:5000"}}
		}},
		{"cni", "[cni]\nconf_dir = \"/etc/cni\"\nplugin_dir = \"/opt/cni/bin\"\ndefault_network = \"none\"\n",
			func(c *Config) { c.CNI = CNI{ConfDir: "/etc/cni", PluginDir: "/opt/cni/bin", DefaultNetwork: "none"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.toml)
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestLoadRefuses checks that a bad file is refused with a message that
// names the file, the line or key, and what is allowed.
func TestLoadRefuses(t *testing.T) {
	long := "/run/" + strings.Repeat("x", 40)
	tests := []struct {
		name string
		toml string
		want []string // substrings of the error, besides the file's path
	}{
		{"unknown key", "adress = \"/run/c.sock\"\n", []string{":1:", `unknown key "adress"`, "docs/CONFIG.md"}},
		{"unknown nested key", "[containerd]\nroot = \"/a\"\nsockett = \"/b\"\n", []string{":3:", `unknown key "containerd.sockett"`}},
		{"unknown table", "[network]\nx = 1\n", []string{`unknown key "network`}},
		{"wrong type", "[containerd]\ncontainers_per_shim = \"8\"\n", []string{"containers_per_shim"}},
		{"bad duration", "[containerd]\nshim_linger = \"2 seconds\"\n", []string{"shim_linger", `"2 seconds" is not a duration`, `"2s"`}},
		{"syntax", "namespace = \n", []string{":1:"}},
		{"relative data root", "data_root = \"var/lib/berth\"\n", []string{`data_root = "var/lib/berth"`, "absolute path"}},
		{"relative address", "address = \"c.sock\"\n", []string{"address", "absolute path"}},
		{"relative binary", "[containerd]\nbinary = \"bin/containerd\"\n", []string{"containerd.binary", "absolute path"}},
		{"bad namespace", "namespace = \"a/b\"\n", []string{`namespace = "a/b"`, "letters, digits"}},
		{"state too long", "[containerd]\nstate = \"" + long + "\"\n", []string{"containerd.state", "at most 40"}},
		{"socket too long", "[containerd]\nsocket = \"/run/" + strings.Repeat("s", 100) + "\"\n", []string{"containerd.socket", "at most 101"}},
		{"log level", "[containerd]\nlog_level = \"verbose\"\n", []string{"containerd.log_level", "trace, debug, info"}},
		{"no shims", "[containerd]\ncontainers_per_shim = 0\n", []string{"containers_per_shim = 0", "1 (a shim per container) to 64"}},
		{"negative linger", "[containerd]\nshim_linger = \"-1s\"\n", []string{"shim_linger", "0s or more"}},
		{"zero stop timeout", "[containerd]\nstop_timeout = \"0s\"\n", []string{"stop_timeout", "above 0s"}},
		{"insecure with scheme", "[registry]\ninsecure = [\"http://r:5000\"]\n", []string{"registry.insecure", "without a scheme"}},
		{"mirror without scheme", "[registry.mirrors]\n\"docker.io\" = [\"mirror.example\"]\n", []string{"registry.mirrors", "http:// or https://"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.toml)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			t.Log(err)
			for _, w := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory cannot be read as a file
	if _, err := Load(dir); err == nil {
		t.Fatal("loaded a directory")
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "berth.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
