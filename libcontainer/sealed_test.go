package libcontainer

import (
	"bytes"
	"os"
	"strconv"
	"testing"
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
