package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindRuntime(t *testing.T) {
	dir := t.TempDir()
	onPath := filepath.Join(dir, "bin")
	other := filepath.Join(dir, "other")
	for _, d := range []string{onPath, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, runtimeName), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "not-executable"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onPath)
	for _, tc := range []struct {
		name, want, err string
	}{
		// The test binary has no berth-runtime beside it: PATH decides.
		{"", filepath.Join(onPath, runtimeName), ""},
		{runtimeName, filepath.Join(onPath, runtimeName), ""},
		{filepath.Join(other, runtimeName), filepath.Join(other, runtimeName), ""},
		{"missing-runtime", "", "set RuntimeBinary"},
		{filepath.Join(other, "not-executable"), "", "runtime binary"},
	} {
		got, err := FindRuntime(tc.name)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("FindRuntime(%q) = %q, %v; want an error saying %q", tc.name, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("FindRuntime(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
