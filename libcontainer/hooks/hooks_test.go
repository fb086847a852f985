package hooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	one := 1
	state := &specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b"}
	tests := []struct {
		name    string
		hooks   []specs.Hook
		wantErr string
		wantOut string
	}{
		{name: "none"},
		{
			name:    "state on stdin and env",
			hooks:   []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + out + "; echo \" $FOO\" >> " + out}, Env: []string{"FOO=bar"}}},
			wantOut: `"id":"c1"`,
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
			err := Run(context.Background(), Prestart, tt.hooks, state)
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
