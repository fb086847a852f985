// Package bundle builds small, runnable OCI bundles for tests and benchmarks.
//
// The only image source on the CI machine is the static busybox from Debian's
// busybox-static package: there is no registry to pull from, and a static
// binary needs no libraries inside the rootfs, so one file plus symlinks is a
// complete userland.
package bundle

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berthrt/berth/libcontainer/specdefault"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BusyboxPath is the host busybox copied into every bundle. It is a variable
// only so tests can point it at a bad binary; callers should leave it alone.
var BusyboxPath = "/bin/busybox"

// installHint is appended to every "busybox unusable" error so that the fix
// is in the failure message itself.
const installHint = "install it with: apt-get install busybox-static"

// Passwd and Group are the account files of the rootfs: root for the default
// spec and nobody (65534) for tests that switch to an unprivileged user.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	Group = "root:x:0:\nnobody:x:65534:\n"
)

// Busybox writes a runnable OCI bundle at dir: dir/rootfs holding a static
// busybox at /bin/busybox with a symlink in /bin for each of its applets,
// /etc/passwd and /etc/group, /tmp, and dir/config.json from
// specdefault.Spec() with no terminal and the given args. dir is created if
// needed. It returns the spec it wrote so callers can change and rewrite it.
func Busybox(dir string, args ...string) (*specs.Spec, error) {
	if err := checkStatic(BusyboxPath); err != nil {
		return nil, err
	}
	applets, err := appletList(BusyboxPath)
	if err != nil {
		return nil, err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := makeRootfs(rootfs, applets); err != nil {
		return nil, fmt.Errorf("bundle: rootfs %s: %w", rootfs, err)
	}
	s := specdefault.Spec()
	s.Process.Terminal = false
	s.Process.Args = append([]string(nil), args...)
	if err := WriteSpec(dir, s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkStatic fails unless path is a statically linked ELF executable. A
// dynamic busybox would start on the host but not inside a rootfs that has no
// libc, so catching it here gives a clear error instead of an exec failure.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("bundle: need a static busybox at %s (%v); %s", path, err, installHint)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("bundle: %s is dynamically linked, need a static busybox; %s", path, installHint)
		}
	}
	return nil
}

// appletList asks busybox itself which applets it has, so the symlinks
// always match the installed build.
func appletList(path string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(path, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bundle: %s --list: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	var applets []string
	for _, name := range strings.Fields(string(out)) {
		// Skip busybox itself and anything that is not a plain file name.
		if name == "busybox" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
			continue
		}
		applets = append(applets, name)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("bundle: %s --list printed no applets", path)
	}
	return applets, nil
}

// makeRootfs lays out the rootfs. /proc, /dev and /sys are created empty so a
// runtime never has to make mount points in it, which matters once the
// default spec makes the root read-only.
func makeRootfs(rootfs string, applets []string) error {
	dirs := map[string]os.FileMode{
		"bin": 0o755, "etc": 0o755, "root": 0o700, "proc": 0o555,
		"dev": 0o755, "sys": 0o555, "tmp": os.ModeSticky | 0o777,
	}
	for d, mode := range dirs {
		p := filepath.Join(rootfs, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// Chmod because MkdirAll applies the umask and drops the sticky bit
		// (Go spells it os.ModeSticky; a numeric 0o1000 is ignored).
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	if err := CopyFile(BusyboxPath, filepath.Join(rootfs, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		link := filepath.Join(rootfs, "bin", a)
		if err := os.Symlink("busybox", link); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	files := map[string]string{"etc/passwd": Passwd, "etc/group": Group}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CopyFile copies src to dst, with mode whatever the umask, by a plain
// read/write: a hard link would fail when the bundle is on another
// filesystem (t.TempDir is often a tmpfs), and would let a container that
// writes /bin/busybox change the host's copy.
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// WriteSpec (re)writes dir/config.json from s, indented like `runc spec`.
func WriteSpec(dir string, s *specs.Spec) error {
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("bundle: encode spec: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// ReadSpec reads dir/config.json.
func ReadSpec(dir string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("bundle: decode %s/config.json: %w", dir, err)
	}
	return &s, nil
}
