package rootfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.MkdirAll(filepath.Join(src, "a/b"), 0o750)
	os.WriteFile(filepath.Join(src, "a/b/file"), []byte("data"), 0o640)
	os.Chtimes(filepath.Join(src, "a/b/file"), old, old)
	os.Symlink("/etc/passwd", filepath.Join(src, "a/link"))
	os.Symlink("../../../../../../../etc", filepath.Join(src, "up"))
	os.Chmod(filepath.Join(src, "a"), 0o711)

	h, err := os.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := copyTree(h, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a/b/file")); err != nil || string(b) != "data" {
		t.Errorf("file: %q, %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(dst, "a/b/file"))
	if err != nil || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(old) {
		t.Errorf("file metadata: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "a")); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("dir mode: %v, %v", fi, err)
	}
	for name, want := range map[string]string{"a/link": "/etc/passwd", "up": "../../../../../../../etc"} {
		if l, err := os.Readlink(filepath.Join(dst, name)); err != nil || l != want {
			t.Errorf("%s -> %q, %v; want a copied, unfollowed symlink", name, l, err)
		}
	}
}
