package process

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// After a shim died, the client's fifos of the init and of an exec that
// was not deleted go; a plain file, a file:// log, and the fifos of an
// exec the client deleted (its own business) stay.
func TestRemoveFifos(t *testing.T) {
	bundle, io := t.TempDir(), t.TempDir()
	mk := func(name string) string {
		p := filepath.Join(io, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := filepath.Join(io, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(io, "log")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	initIn, initOut, initErr := mk("init-stdin"), mk("init-stdout"), mk("init-stderr")
	execOut, gone := mk("e1-stdout"), mk("e2-stdout")
	for _, r := range []struct {
		exec string
		s    Stdio
	}{
		{"", Stdio{Stdin: initIn, Stdout: initOut, Stderr: initErr}},
		{"e1", Stdio{Stdout: execOut, Stderr: plain}},
		{"e2", Stdio{Stdout: gone}},
		{"e3", Stdio{Stdout: "file://" + log}},
	} {
		if err := recordStdio(bundle, r.exec, r.s); err != nil {
			t.Fatal(err)
		}
	}
	forgetStdio(bundle, "e2")

	removeFifos(context.Background(), bundle)
	for _, p := range []string{initIn, initOut, initErr, execOut} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("fifo %s is still there", p)
		}
	}
	for _, p := range []string{plain, log, gone} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
