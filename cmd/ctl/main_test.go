package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestExitCodes checks what a user sees when berth itself fails: docker's
// 125 and a message that says what is wrong.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", "[containerd]\nroot = \""+dir+"/root\"\nstate = \""+dir+"/st\"\nsocket = \""+dir+"/st/c.sock\"\n")
	bad := writeFile(t, dir, "bad.toml", "[containerd]\nsockett = \"/x\"\n")
	nowhere := filepath.Join(dir, "none.sock")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"unknown flag", []string{"--bogus", "version"}, 125, "", []string{"berth: unknown flag: --bogus", "See 'berth --help'."}},
		{"bad config", []string{"--config", bad, "version"}, 125, "", []string{bad + ":2:", `unknown key "containerd.sockett"`}},
		{"nothing at --address", []string{"--config", good, "--address", nowhere, "info"}, 125, "", []string{"nothing answers at " + nowhere + " (from --address)"}},
		{"version without a server shows the client", []string{"--config", good, "--address", nowhere, "version"}, 125, "Client:\n Version:", []string{"nothing answers"}},
		{"arguments refused", []string{"--config", good, "info", "x"}, 125, "", []string{`"berth info" accepts no arguments`}},
		{"status of the managed containerd", []string{"--config", good, "system", "status"}, 0, "containerd: not running\nsocket:     " + dir + "/st/c.sock", nil},
		{"stop never started", []string{"--config", good, "system", "stop"}, 0, "containerd was not running", nil},
		{"system stop of another containerd", []string{"--config", good, "--address", nowhere, "system", "stop"}, 125, "", []string{"which berth does not manage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONTAINERD_ADDRESS", "")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q does not have %q", stdout.String(), tc.stdout)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not say %q", stderr.String(), w)
				}
			}
		})
	}
}

// TestNamespace checks the namespace's order: the flag, then
// $CONTAINERD_NAMESPACE, then berth.toml, then "default".
func TestNamespace(t *testing.T) {
	dir := t.TempDir()
	withNS := writeFile(t, dir, "ns.toml", "namespace = \"fromconfig\"\n")
	none := filepath.Join(dir, "missing.toml")
	tests := []struct {
		name, config, env string
		flag              []string
		want              string
	}{
		{"default", none, "", nil, "default"},
		{"berth.toml", withNS, "", nil, "fromconfig"},
		{"env over berth.toml", withNS, "fromenv", nil, "fromenv"},
		{"flag over env", withNS, "fromenv", []string{"--namespace", "fromflag"}, "fromflag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONTAINERD_NAMESPACE", tc.env)
			g := &globalOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
			root := newRootCommand(g)
			if err := root.ParseFlags(append([]string{"--config", tc.config}, tc.flag...)); err != nil {
				t.Fatal(err)
			}
			if err := g.setup(root); err != nil {
				t.Fatal(err)
			}
			if g.namespace != tc.want {
				t.Fatalf("namespace %q, want %q", g.namespace, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEveryCommandHelps runs `--help` on every command: cobra panics when
// a command's flag takes a shorthand a global flag has, and only when
// that command runs.
func TestEveryCommandHelps(t *testing.T) {
	var paths [][]string
	var walk func(prefix []string, cmd *cobra.Command)
	walk = func(prefix []string, cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			path := append(append([]string(nil), prefix...), sub.Name())
			paths = append(paths, path)
			walk(path, sub)
		}
	}
	walk(nil, newRootCommand(&globalOptions{}))
	if len(paths) < 20 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, path := range paths {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append(path, "--help"), &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("berth %s --help: exit %d, stderr %q", strings.Join(path, " "), code, errb.String())
		}
	}
}
