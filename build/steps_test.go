package build

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// metadataOf applies the instructions after FROM of dockerfile to a
// state whose config is base, as a build does (expansion first).
func metadataOf(t *testing.T, dockerfile string, base ocispec.ImageConfig, args map[string]string) ocispec.ImageConfig {
	t.Helper()
	df, err := Parse("Dockerfile", []byte("FROM scratch\n"+dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{df: df}
	st := &state{args: args}
	st.img.Config.Env = base.Env
	st.img.Config.Cmd = base.Cmd
	st.img.Config.WorkingDir = base.WorkingDir
	for _, cmd := range df.Stages[0].Commands {
		if err := b.expand(st, cmd); err != nil {
			t.Fatal(err)
		}
		if err := b.metadata(st, cmd); err != nil {
			t.Fatal(err)
		}
	}
	return st.img.Config.ImageConfig
}

func TestMetadataInstructions(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile string
		base             ocispec.ImageConfig
		args             map[string]string
		check            func(c ocispec.ImageConfig) bool
	}{
		{"ENV replaces and expands", "ENV A=1\nENV B=${A}2 A=3\n", ocispec.ImageConfig{Env: []string{"A=0"}}, nil,
			func(c ocispec.ImageConfig) bool { return slices.Equal(c.Env, []string{"A=3", "B=12"}) }},
		{"ARG values expand but stay out of ENV", "ENV V=$VERSION\n", ocispec.ImageConfig{}, map[string]string{"VERSION": "9"},
			func(c ocispec.ImageConfig) bool { return slices.Equal(c.Env, []string{"V=9"}) }},
		{"ENV wins over an ARG of the same name", "ENV X=env\nLABEL x=$X\n", ocispec.ImageConfig{}, map[string]string{"X": "arg"},
			func(c ocispec.ImageConfig) bool { return c.Labels["x"] == "env" }},
		{"WORKDIR relative to the last", "WORKDIR a\nWORKDIR b/../c\n", ocispec.ImageConfig{WorkingDir: "/base"}, nil,
			func(c ocispec.ImageConfig) bool { return c.WorkingDir == "/base/a/c" }},
		{"WORKDIR absolute", "WORKDIR /x\n", ocispec.ImageConfig{WorkingDir: "/base"}, nil,
			func(c ocispec.ImageConfig) bool { return c.WorkingDir == "/x" }},
		{"EXPOSE defaults to tcp", "EXPOSE 80 53/udp\n", ocispec.ImageConfig{}, nil,
			func(c ocispec.ImageConfig) bool {
				_, a := c.ExposedPorts["80/tcp"]
				_, b := c.ExposedPorts["53/udp"]
				return a && b
			}},
		{"ENTRYPOINT resets an inherited CMD", "ENTRYPOINT [\"/e\"]\n", ocispec.ImageConfig{Cmd: []string{"old"}}, nil,
			func(c ocispec.ImageConfig) bool { return c.Cmd == nil && slices.Equal(c.Entrypoint, []string{"/e"}) }},
		{"ENTRYPOINT keeps this stage's CMD", "CMD [\"new\"]\nENTRYPOINT [\"/e\"]\n", ocispec.ImageConfig{Cmd: []string{"old"}}, nil,
			func(c ocispec.ImageConfig) bool { return slices.Equal(c.Cmd, []string{"new"}) }},
		{"shell form through SHELL", "SHELL [\"/bin/bash\", \"-xc\"]\nCMD echo hi\n", ocispec.ImageConfig{}, nil,
			func(c ocispec.ImageConfig) bool { return slices.Equal(c.Cmd, []string{"/bin/bash", "-xc", "echo hi"}) }},
		{"VOLUME, USER, STOPSIGNAL", "VOLUME [\"/a\", \"/b\"]\nUSER app:app\nSTOPSIGNAL SIGINT\n", ocispec.ImageConfig{}, nil,
			func(c ocispec.ImageConfig) bool {
				return len(c.Volumes) == 2 && c.User == "app:app" && c.StopSignal == "SIGINT"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := metadataOf(t, tc.dockerfile, tc.base, tc.args); !tc.check(c) {
				t.Errorf("config: %+v", c)
			}
		})
	}
}

func TestTailWriterKeepsTheLastLines(t *testing.T) {
	w := &tailWriter{max: 2}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree\nfour"))
	if got := w.String(); got != "three\nfour" {
		t.Errorf("got %q", got)
	}
}
