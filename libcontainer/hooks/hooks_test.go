package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	one := 1
	state := &specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b"}
	tests := []struct {
		name       string
		hooks      []specs.Hook
		defaultEnv []string
		dir        string
		wantErr    string
		wantOut    string
	}{
		{name: "none"},
		{
			name:    "state on stdin and env",
			hooks:   []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + out + "; echo \" $FOO\" >> " + out}, Env: []string{"FOO=bar"}}},
			wantOut: `"id":"c1"`,
		},
		{
			name:       "own env wins over the default",
			hooks:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo \"$FOO-$BAR\" > " + out}, Env: []string{"FOO=own"}}},
			defaultEnv: []string{"FOO=default", "BAR=default"},
			wantOut:    "own-\n",
		},
		{
			name:       "default env without one of its own",
			hooks:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo \"$FOO-$BAR\" > " + out}}},
			defaultEnv: []string{"FOO=default", "BAR=default"},
			wantOut:    "default-default\n",
		},
		{
			name:    "no env without a default",
			hooks:   []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo \"[$HOME]\" > " + out}}},
			wantOut: "[]\n",
		},
		{
			name:    "order kept",
			hooks:   []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo a > " + out}}, {Path: "/bin/sh", Args: []string{"sh", "-c", "echo b >> " + out}}},
			wantOut: "a\nb\n",
		},
		{
			name:    "failure stops the list",
			hooks:   []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo boom; exit 3"}}, {Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + out}}},
			wantErr: "boom",
		},
		{
			name:    "runs in the given dir",
			hooks:   []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "pwd > " + out}}},
			dir:     dir,
			wantOut: dir + "\n",
		},
		{
			name:    "names the point, index and path as runc does",
			hooks:   []specs.Hook{{Path: "/bin/true"}, {Path: "/bin/false"}},
			wantErr: "error running prestart hook #1: /bin/false: exit status 1",
		},
		{
			name:    "timeout kills",
			hooks:   []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}},
			wantErr: "timed out after 1s",
		},
		{
			name:    "missing program",
			hooks:   []specs.Hook{{Path: "/nonexistent/hook"}},
			wantErr: "/nonexistent/hook",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(out)
			err := RunWith(context.Background(), Prestart, tt.hooks, state, Options{Env: tt.defaultEnv, Dir: tt.dir})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, statErr := os.Stat(out); statErr == nil {
					t.Fatalf("a hook after the failing one ran")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOut != "" {
				b, _ := os.ReadFile(out)
				if !strings.Contains(string(b), tt.wantOut) {
					t.Fatalf("output %q does not contain %q", b, tt.wantOut)
				}
			}
		})
	}
}

// A hook without a timeout of its own, cut short by the caller's deadline
// (a shim request's, say), fails with that reason.
func TestCallerDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	hook := specs.Hook{Path: "/bin/sleep", Args: []string{"sleep", "10"}}
	err := Run(ctx, Prestart, []specs.Hook{hook}, &specs.State{ID: "c1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
}
