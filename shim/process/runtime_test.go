package process

import (
	"context"
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

// runc's BinaryName: a berth-runtime it names is the runtime, another
// runtime is ignored, and one that is not there, or cannot say what it
// is, fails.
func TestRuntimeFor(t *testing.T) {
	dir := t.TempDir()
	onPath := filepath.Join(dir, "bin")
	if err := os.Mkdir(onPath, 0o755); err != nil {
		t.Fatal(err)
	}
	script := func(name, version string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho '"+version+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	berth := script("my-berth", "berth-runtime version test")
	runc := script("runc", "runc version 1.1.5")
	broken := filepath.Join(dir, "broken-runtime")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho cannot >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	def := filepath.Join(onPath, runtimeName)
	if err := os.WriteFile(def, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onPath)
	for _, tc := range []struct {
		name, runtimeBinary, binaryName, want, err string
	}{
		{"neither", "", "", def, ""},
		{"BinaryName a berth-runtime", "", berth, berth, ""},
		{"BinaryName runc", "", runc, def, ""},
		{"BinaryName missing", "", "/no/such/runc", "", "BinaryName"},
		{"BinaryName missing on PATH", "", "no-such-runc", "", "no such executable"},
		{"BinaryName whose --version fails", "", broken, "", "--version"},
		{"RuntimeBinary wins", berth, "/no/such/runc", berth, ""},
	} {
		got, err := RuntimeFor(context.Background(), tc.runtimeBinary, tc.binaryName)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.binaryName)):
			t.Errorf("%s: RuntimeFor = %q, %v; want an error naming %s and saying %q", tc.name, got, err, tc.binaryName, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s: RuntimeFor = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
