package images

import (
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	base := func() ocispec.ImageConfig {
		return ocispec.ImageConfig{Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh"}}
	}
	for _, tc := range []struct {
		name    string
		changes []string
		want    func(*ocispec.ImageConfig)
		err     string
	}{
		{name: "exec form", changes: []string{`CMD ["echo", "hi"]`}, want: func(c *ocispec.ImageConfig) { c.Cmd = []string{"echo", "hi"} }},
		{name: "shell form", changes: []string{"ENTRYPOINT top -b"}, want: func(c *ocispec.ImageConfig) { c.Entrypoint = []string{"/bin/sh", "-c", "top -b"} }},
		{name: "env pairs replace and add", changes: []string{`ENV A=2 B="x y"`}, want: func(c *ocispec.ImageConfig) { c.Env = []string{"PATH=/bin", "A=2", "B=x y"} }},
		{name: "env legacy form", changes: []string{"env C hello world"}, want: func(c *ocispec.ImageConfig) { c.Env = append(c.Env, "C=hello world") }},
		{name: "label, user, workdir, stopsignal", changes: []string{"LABEL a=b", "USER 1000:1000", "WORKDIR /srv", "STOPSIGNAL SIGINT"},
			want: func(c *ocispec.ImageConfig) {
				c.Labels, c.User, c.WorkingDir, c.StopSignal = map[string]string{"a": "b"}, "1000:1000", "/srv", "SIGINT"
			}},
		{name: "expose and volume", changes: []string{"EXPOSE 80 53/udp", `VOLUME ["/data"]`},
			want: func(c *ocispec.ImageConfig) {
				c.ExposedPorts = map[string]struct{}{"80/tcp": {}, "53/udp": {}}
				c.Volumes = map[string]struct{}{"/data": {}}
			}},
		{name: "unknown instruction", changes: []string{"RUN echo"}, err: `invalid change "RUN echo": RUN is not one of`},
		{name: "no argument", changes: []string{"CMD"}, err: "CMD needs an argument"},
		{name: "bad pair", changes: []string{"ENV A=1 B"}, err: `"B" is not KEY=VALUE`},
		{name: "open quote", changes: []string{`LABEL a="b`}, err: "unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := base()
			err := applyChanges(&got, tc.changes)
			if !wantError(t, err, tc.err) {
				return
			}
			want := base()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// wantError checks err against a table's want: an error containing want,
// or none when want is "". It says whether the test goes on to check
// the result (no error was wanted).
func wantError(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	return false
}
