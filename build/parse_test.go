package build

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestParseErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile, want string
	}{
		{"unknown instruction", "FROM scratch\nFOO bar\n", "Dockerfile:2: FOO bar: "},
		{"only ARGs", "ARG A=1\n", "Dockerfile: no FROM instruction"},
		{"empty", "# nothing\n", "Dockerfile:1: # nothing: "},
		{"instruction before FROM", "RUN true\nFROM scratch\n", "Dockerfile:1: RUN true: "},
		{"bad flag", "FROM scratch\nCOPY --bogus=1 a b\n", "Dockerfile:2: COPY --bogus=1 a b: "},
		{"ONBUILD ONBUILD", "FROM scratch\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: ONBUILD ONBUILD RUN x: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("Dockerfile", []byte(tc.dockerfile))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

func TestParseStages(t *testing.T) {
	df, err := Parse("Dockerfile", []byte("ARG BASE=scratch\nFROM $BASE AS one\nRUN a\nFROM one\nCOPY --from=one /a /b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.Stages) != 2 || df.Stages[0].Name != "one" || len(df.Stages[1].Commands) != 1 || len(df.MetaArgs) != 1 {
		t.Fatalf("got %d stages (%+v), %d meta args", len(df.Stages), df.Stages, len(df.MetaArgs))
	}
}

func TestCacheKey(t *testing.T) {
	base := cacheKey("sha256:aa", "RUN make", map[string]string{"A": "1", "B": "2"}, "")
	for _, tc := range []struct {
		name string
		key  string
		same bool
	}{
		{"same inputs, args in another order", cacheKey("sha256:aa", "RUN make", map[string]string{"B": "2", "A": "1"}, ""), true},
		{"another parent", cacheKey("sha256:bb", "RUN make", map[string]string{"A": "1", "B": "2"}, ""), false},
		{"another instruction", cacheKey("sha256:aa", "RUN make all", map[string]string{"A": "1", "B": "2"}, ""), false},
		{"another arg value", cacheKey("sha256:aa", "RUN make", map[string]string{"A": "1", "B": "3"}, ""), false},
		{"an arg less", cacheKey("sha256:aa", "RUN make", map[string]string{"A": "1"}, ""), false},
		{"other sources", cacheKey("sha256:aa", "RUN make", map[string]string{"A": "1", "B": "2"}, "x"), false},
		{"no arg boundary confusion", cacheKey("sha256:aa", "RUN make", map[string]string{"A": "1\"B=2"}, ""), false},
	} {
		if (tc.key == base) != tc.same {
			t.Errorf("%s: same key = %v, want %v", tc.name, tc.key == base, tc.same)
		}
	}
}

func TestUnsupportedFlagsAreRefused(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"COPY --exclude=*.md . /", "--exclude is not supported yet"},
		{"COPY --parents a/b /", "--parents is not supported yet"},
		{"ADD --checksum=sha256:aa http://x/y /", "--checksum is not supported yet"},
	} {
		df, err := Parse("Dockerfile", []byte("FROM scratch\n"+tc.line+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		spec, _ := specOf(df.Stages[0].Commands[0])
		b := &builder{df: df, context: &buildContext{}}
		if _, err := b.sourcesHash(t.Context(), spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.line, err, tc.want)
		}
	}
}

func TestRunFlagsAreRefused(t *testing.T) {
	df, err := Parse("Dockerfile", []byte("FROM scratch\nRUN --mount=type=cache,target=/c true\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{df: df}
	run := df.Stages[0].Commands[0].(*instructions.RunCommand)
	if err := b.run(t.Context(), &state{}, run); err == nil || !strings.Contains(err.Error(), "RUN --mount is not supported yet") {
		t.Errorf("got %v", err)
	}
}
