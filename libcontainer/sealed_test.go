package libcontainer

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Both ways of sealing must give the running binary, and neither may be
// opened for writing, even by root.
func TestSealedExe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (fsopen, memfd sealing checks)")
	}
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	for name, seal := range map[string]func(string) (*os.File, error){"overlay": overlayExe, "memfd": memfdExe} {
		// "" is the running binary; a path names another one (the shim
		// seals berth-runtime), here the same file by name.
		for _, path := range []string{"", self} {
			t.Run(name+"/"+strconv.Quote(path), func(t *testing.T) {
				testSealed(t, seal, path, want)
			})
		}
	}
}

func testSealed(t *testing.T, seal func(string) (*os.File, error), path string, want []byte) {
	f, err := seal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fdPath := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	got, err := os.ReadFile(fdPath)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("sealed binary differs from the one asked for (err %v)", err)
	}
	// The overlay refuses the open (EROFS); a memfd opens, but its seal
	// refuses every write.
	if w, err := os.OpenFile(fdPath, os.O_WRONLY, 0); err == nil {
		_, werr := w.Write([]byte("x"))
		w.Close()
		if werr == nil {
			t.Fatal("wrote to the sealed binary")
		}
	}
}

// Processes started from one binary share one sealed view; a binary
// replaced at its path gets a new view, and the old one is closed once the
// last process starting from it is out.
func TestSealedExeShared(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (fsopen)")
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "berth-runtime")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	a, releaseA, err := sealedExe(bin)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := sealedExe(bin)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two starts from one binary got two sealed views")
	}
	releaseB()

	// Replaced, as an upgrade does: a new file renamed over the old.
	next := bin + ".new"
	if err := os.WriteFile(next, append(self[:len(self):len(self)], 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	c, releaseC, err := sealedExe(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseC()
	if c == a {
		t.Fatal("a replaced binary kept its old sealed view")
	}
	if n, err := fileSize(c); err != nil || n != int64(len(self)+1) {
		t.Fatalf("the new view shows %d bytes (%v), want the new binary's %d", n, err, len(self)+1)
	}
	if _, err := fileSize(a); err != nil {
		t.Fatalf("the old view was closed while a start still used it: %v", err)
	}
	releaseA()
	if _, err := fileSize(a); err == nil {
		t.Fatal("the old view stayed open after its last start")
	}
}

func fileSize(f *os.File) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}
