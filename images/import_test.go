package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/archive/compression"
)

func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCopyTar: a tar is copied whole (its end blocks too, so the diff ID
// is the tar's digest); anything else is refused with a clear error.
func TestCopyTar(t *testing.T) {
	good := tarball(t, map[string]string{"./bin/sh": "#!", "./etc/hostname": "x\n"})
	for _, tc := range []struct {
		name string
		in   []byte
		err  string
	}{
		{name: "tar", in: good},
		{name: "tar with padding after its end", in: append(append([]byte(nil), good...), make([]byte, 4096)...)},
		{name: "text", in: []byte(strings.Repeat("not a tar\n", 200)), err: "not a tar archive"},
		{name: "empty tar", in: tarball(t, nil), err: "the tarball is empty"},
		{name: "nothing", in: nil, err: "the tarball is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := copyTar(&out, bytes.NewReader(tc.in))
			if !wantError(t, err, tc.err) {
				return
			}
			if !bytes.Equal(out.Bytes(), tc.in) {
				t.Fatalf("copied %d bytes of %d, or not the same ones", out.Len(), len(tc.in))
			}
		})
	}
}

// TestDecompressedInput: gzip input is decompressed before it is checked.
func TestDecompressedInput(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarball(t, map[string]string{"a": "b"}))
	zw.Close()
	var out bytes.Buffer
	if err := copyTar(&out, mustDecompress(t, gz.Bytes())); err != nil {
		t.Fatalf("a gzip'd tarball: %v", err)
	}
}

func mustDecompress(t *testing.T, b []byte) *bytes.Reader {
	t.Helper()
	r, err := compression.DecompressStream(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(out.Bytes())
}
