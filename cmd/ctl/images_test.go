package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containerd/console"

	"github.com/berthrt/berth/images"
)

// TestWriteImages checks `images`' table, -q (each ID once), --digests,
// --no-trunc and --format as a user sees them.
func TestWriteImages(t *testing.T) {
	const id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	rows := []images.Summary{
		{ID: id, Repository: "busybox", Tag: "latest", Digest: "sha256:feed", CreatedSince: "2 hours ago", Size: "4.26MB"},
		{ID: id, Repository: "berthtest/busybox", Tag: "v1", Digest: "sha256:feed", CreatedSince: "2 hours ago", Size: "4.26MB"},
	}
	for _, tc := range []struct {
		name string
		o    imagesOptions
		want string
	}{
		{"table", imagesOptions{}, "" +
			"REPOSITORY          TAG      IMAGE ID       CREATED       SIZE\n" +
			"busybox             latest   0123456789ab   2 hours ago   4.26MB\n" +
			"berthtest/busybox   v1       0123456789ab   2 hours ago   4.26MB\n"},
		{"quiet shows each ID once", imagesOptions{quiet: true}, "0123456789ab\n"},
		{"quiet no-trunc", imagesOptions{quiet: true, noTrunc: true}, id + "\n"},
		{"digests", imagesOptions{digests: true}, "" +
			"REPOSITORY          TAG      DIGEST        IMAGE ID       CREATED       SIZE\n" +
			"busybox             latest   sha256:feed   0123456789ab   2 hours ago   4.26MB\n" +
			"berthtest/busybox   v1       sha256:feed   0123456789ab   2 hours ago   4.26MB\n"},
		{"format", imagesOptions{format: "{{.Repository}}:{{.Tag}} {{.ID}}"}, "busybox:latest 0123456789ab\nberthtest/busybox:v1 0123456789ab\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeImages(&out, rows, tc.o); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
	if err := writeImages(&bytes.Buffer{}, rows, imagesOptions{format: "{{.Nope"}); !isUsageError(err) {
		t.Errorf("a bad --format: %v, want a usage error", err)
	}
}

// TestLoadRefusesATerminal checks that `load` without -i on a terminal
// says what to do instead of waiting for an archive to be typed.
func TestLoadRefusesATerminal(t *testing.T) {
	pty, slavePath, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer pty.Close()
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	stdin := os.Stdin
	os.Stdin = slave
	defer func() { os.Stdin = stdin }()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "berth.toml", "[containerd]\nsocket = \""+dir+"/none.sock\"\n")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--config", cfg, "load"}, &stdout, &stderr)
	if code != 125 || !strings.Contains(stderr.String(), "stdin is a terminal: give the archive with -i FILE") {
		t.Fatalf("load on a terminal: exit %d, stderr %q", code, stderr.String())
	}
}
