package libcontainer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The process's user gets its stdio, but /dev/null, as runc does.
func TestChownStdio(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change owners")
	}
	dir := t.TempDir()
	file := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, tc := range []struct {
		name string
		f    *os.File
		want uint32 // owner afterwards
	}{
		{"a file", file("out"), 1000},
		{"a pipe", w, 1000},
		{"/dev/null", null, 0},
	} {
		chownStdio([]*os.File{tc.f}, 1000)
		var st unix.Stat_t
		if err := unix.Fstat(int(tc.f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != tc.want {
			t.Errorf("%s: owner %d, want %d", tc.name, st.Uid, tc.want)
		}
	}
}
