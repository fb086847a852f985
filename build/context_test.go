package build

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDockerignore(t *testing.T) {
	dir := writeTree(t, map[string]string{
		".dockerignore": "*.log\nsecret/\n!keep.log\n# comment\n",
		"a.txt":         "a", "b.log": "b", "keep.log": "k", "secret/key": "s", "sub/c.txt": "c",
	})
	c, err := openContext(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path    string
		ignored bool
	}{
		{"a.txt", false}, {"b.log", true}, {"keep.log", false}, {"secret", true}, {"secret/key", true}, {"sub/c.txt", false},
	} {
		if got := c.ignored(tc.path); got != tc.ignored {
			t.Errorf("ignored(%q) = %v, want %v", tc.path, got, tc.ignored)
		}
	}
	if _, err := match(dir, "build context", []string{"b.log"}, c.ignored); err == nil {
		t.Error("COPY of an ignored file: no error")
	}
	got, err := match(dir, "build context", []string{"*.log", "sub"}, c.ignored)
	if err != nil || !slices.Equal(got, []string{"keep.log", "sub"}) {
		t.Errorf("match: got %v, %v", got, err)
	}
	// The ignored file does not change the hash of what is copied.
	h1, _ := hashTree(dir, []string{"."}, c.ignored)
	if err := os.WriteFile(filepath.Join(dir, "b.log"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2, _ := hashTree(dir, []string{"."}, c.ignored)
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	h3, _ := hashTree(dir, []string{"."}, c.ignored)
	if h1 != h2 || h2 == h3 {
		t.Errorf("hash: ignored change moved it (%v) or a copied change did not (%v)", h1 != h2, h2 == h3)
	}
}

func TestMatchStaysInsideTheContext(t *testing.T) {
	dir := writeTree(t, map[string]string{"in.txt": "x"})
	if err := os.Symlink("/etc", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"../../etc/passwd", "out/passwd", "/etc/passwd"} {
		if got, err := match(dir, "build context", []string{src}, func(string) bool { return false }); err == nil {
			t.Errorf("match(%q) = %v: want not found inside the context", src, got)
		}
	}
}
