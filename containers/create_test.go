package containers

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthrt/berth/health"
	"github.com/berthrt/berth/restart"
)

func TestNewID(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for range 100 {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if !hex64.MatchString(id) || strings.Trim(id[:12], "0123456789") == "" || seen[id] {
			t.Fatalf("newID gave %q: want 64 hex digits, unique, whose short form is not all digits", id)
		}
		seen[id] = true
	}
}

func TestValidName(t *testing.T) {
	for name, valid := range map[string]bool{
		"web": true, "web-1.a_b": true, "W9": true, "a": false, "-web": false, "we b": false, "web/x": false, "": false,
	} {
		if validName.MatchString(name) != valid {
			t.Errorf("name %q: valid %v, want %v", name, !valid, valid)
		}
	}
}

// noExt is an image config without docker's extensions.
var noExt dockerspec.DockerOCIImageConfigExt

// TestMetadata checks the labels and record a new container gets.
func TestMetadata(t *testing.T) {
	initOn := true
	cfg := Config{Image: "busybox", Cmd: []string{"echo", "hi"}, Labels: map[string]string{"app": "web"}, StopSignal: "SIGUSR1"}
	hc := HostConfig{AutoRemove: true, RestartPolicy: RestartPolicy{Name: "no"}, Init: &initOn}
	labels, rec := metadata("web", cfg, hc, ocispec.ImageConfig{Entrypoint: []string{"/ep"}}, noExt, "sha256:abc")
	want := map[string]string{LabelName: "web", restart.LabelPolicy: "no", restart.LabelAutoRemove: "true", "app": "web", "io.containerd.image.config.stop-signal": "SIGUSR1"}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	if len(labels) != len(want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if got := strings.Join(rec.command(), " "); got != initPath+" -- /ep echo hi" || rec.ImageID != "sha256:abc" {
		t.Errorf("record: command %q, image %q", got, rec.ImageID)
	}
	// An attached run --rm removes its own container: the monitor must
	// not race it. A --label cannot forge berth's labels.
	cfg.AttachStdout = true
	cfg.Labels = map[string]string{LabelName: "forged", restart.LabelPolicy: "always"}
	labels, _ = metadata("web", cfg, hc, ocispec.ImageConfig{}, noExt, "sha256:abc")
	if _, ok := labels[restart.LabelAutoRemove]; ok || labels[LabelName] != "web" || labels[restart.LabelPolicy] != "no" {
		t.Errorf("attached --rm with forged labels: %v", labels)
	}
}

// TestWithImageConfig checks inspect's .Config: the image's settings
// filled in where the flags gave none.
func TestWithImageConfig(t *testing.T) {
	img := ocispec.ImageConfig{Env: []string{"PATH=/bin", "A=image"}, Cmd: []string{"sh"}, WorkingDir: "/w", User: "app"}
	got := withImageConfig(Config{Env: []string{"A=flag", "B=flag"}}, img, noExt)
	if strings.Join(got.Env, ",") != "PATH=/bin,A=flag,B=flag" || strings.Join(got.Cmd, " ") != "sh" || got.WorkingDir != "/w" || got.User != "app" {
		t.Errorf("from the image: %+v", got)
	}
	got = withImageConfig(Config{Entrypoint: []string{}, User: "0", WorkingDir: "/tmp"}, img, noExt)
	if len(got.Cmd) != 0 || got.Entrypoint == nil || got.User != "0" || got.WorkingDir != "/tmp" {
		t.Errorf("--entrypoint \"\" -u 0 -w /tmp: %+v", got)
	}
	if got := withImageConfig(Config{}, ocispec.ImageConfig{}, noExt); strings.Join(got.Env, ",") != defaultPath {
		t.Errorf("an image without ENV: %v", got.Env)
	}
	// .Config.Volumes: the image's VOLUME and -v PATH, not a bind.
	f := Flags{Volumes: []string{"/scratch", "/tmp:/host-tmp", "named:/named"}}
	cfg, _, err := f.Parse("img", nil)
	if err != nil {
		t.Fatal(err)
	}
	got = withImageConfig(cfg, ocispec.ImageConfig{Volumes: map[string]struct{}{"/var/lib/data": {}}}, noExt)
	_, scratch := got.Volumes["/scratch"]
	_, data := got.Volumes["/var/lib/data"]
	if len(got.Volumes) != 2 || !scratch || !data {
		t.Errorf("Volumes %v, want /scratch and /var/lib/data", got.Volumes)
	}
}

// TestHealthcheckFromImage checks .Config.Healthcheck: the --health-*
// flags over the image's HEALTHCHECK, setting by setting, as docker's
// daemon merges them; --no-healthcheck's NONE wins; SHELL comes along.
func TestHealthcheckFromImage(t *testing.T) {
	image := dockerspec.DockerOCIImageConfigExt{
		Healthcheck: &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Minute, Retries: 5},
		Shell:       []string{"/bin/bash", "-c"},
	}
	for _, tc := range []struct {
		name  string
		flags Flags
		image dockerspec.DockerOCIImageConfigExt
		want  *health.Config
	}{
		{name: "the image's", image: image, want: &health.Config{Test: []string{"CMD", "true"}, Interval: time.Minute, Retries: 5}},
		{name: "no check anywhere", want: nil},
		{name: "flags without an image check", flags: Flags{HealthCmd: "test -f /ok", HealthRetries: 2},
			want: &health.Config{Test: []string{"CMD-SHELL", "test -f /ok"}, Retries: 2}},
		{name: "an interval over the image's command", image: image, flags: Flags{HealthInterval: time.Second},
			want: &health.Config{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 5}},
		{name: "--no-healthcheck", image: image, flags: Flags{NoHealthcheck: true},
			want: &health.Config{Test: []string{"NONE"}, Interval: time.Minute, Retries: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := tc.flags.Parse("img", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := withImageConfig(cfg, ocispec.ImageConfig{}, tc.image).Healthcheck
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Healthcheck = %+v, want %+v", got, tc.want)
			}
			if got.Enabled() != (tc.want != nil && tc.want.Test[0] != "NONE") {
				t.Errorf("Enabled = %v for %+v", got.Enabled(), got)
			}
		})
	}
	if got := withImageConfig(Config{}, ocispec.ImageConfig{}, image).Shell; strings.Join(got, " ") != "/bin/bash -c" {
		t.Errorf("Shell = %q, want the image's", got)
	}
}
