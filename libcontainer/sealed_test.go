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
	for name, seal := range map[string]func() (*os.File, error){"overlay": overlayExe, "memfd": memfdExe} {
		t.Run(name, func(t *testing.T) {
			f, err := seal()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			path := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("sealed binary differs from the running one (err %v)", err)
			}
			// The overlay refuses the open (EROFS); a memfd opens, but its
			// seal refuses every write.
			if w, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
				_, werr := w.Write([]byte("x"))
				w.Close()
				if werr == nil {
					t.Fatal("wrote to the sealed binary")
				}
			}
		})
	}
}
