package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
)

// writer writes a COPY's files into a rootfs: every destination resolved
// inside root (its symlinks, absolute ones too, cannot lead out), owned by
// owner, with mode when --chmod gave one.
type writer struct {
	root  string
	owner *user.ExecUser
	mode  *fs.FileMode
}

// resolve is the host path of the image path p, inside root.
func (w *writer) resolve(p string) (string, error) {
	full, err := securejoin.SecureJoin(w.root, p)
	if err != nil {
		return "", fmt.Errorf("resolve %s in the image: %w", p, err)
	}
	return full, nil
}

// mkdirAll makes the image directory p and its missing parents (root's,
// 0755, as docker's) and gives its host path.
func (w *writer) mkdirAll(p string) (string, error) {
	full, err := w.resolve(p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(full, 0o755); err != nil {
		return "", fmt.Errorf("make directory %s in the image: %w", p, err)
	}
	return full, nil
}

// copyAll copies srcs (relative to srcRoot) to dest: a directory's
// contents into dest, a file to dest, or into it when dest is a
// directory (it ends in "/", or there are several sources).
func (w *writer) copyAll(srcRoot string, srcs []string, dest string, destIsDir bool, ignored func(string) bool) error {
	destIsDir = destIsDir || strings.HasSuffix(dest, "/")
	for _, src := range srcs {
		full := filepath.Join(srcRoot, src)
		fi, err := os.Lstat(full)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := w.tree(srcRoot, src, dest, ignored); err != nil {
				return err
			}
			continue
		}
		target := dest
		if destIsDir {
			target = path.Join(dest, filepath.Base(src))
		} else if full, err := w.resolve(dest); err == nil {
			if st, err := os.Stat(full); err == nil && st.IsDir() {
				target = path.Join(dest, filepath.Base(src))
			}
		}
		if err := w.entry(full, fi, target); err != nil {
			return err
		}
	}
	return nil
}

// tree copies the contents of the directory src to the directory dest.
func (w *writer) tree(srcRoot, src, dest string, ignored func(string) bool) error {
	base := filepath.Join(srcRoot, src)
	return walk(srcRoot, src, ignored, func(p, _ string, fi fs.FileInfo) error {
		inner, _ := filepath.Rel(base, p)
		return w.entry(p, fi, path.Join(dest, filepath.ToSlash(inner)))
	})
}

// entry copies one file, directory or symlink to the image path target.
func (w *writer) entry(src string, fi fs.FileInfo, target string) error {
	switch {
	case fi.IsDir():
		full, err := w.mkdirAll(target)
		if err != nil {
			return err
		}
		return w.own(full, fi.Mode().Perm())
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		full, err := w.replace(target)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, full); err != nil {
			return fmt.Errorf("symlink %s in the image: %w", target, err)
		}
		return os.Lchown(full, w.owner.Uid, w.owner.Gid)
	case fi.Mode().IsRegular():
		return w.file(src, target)
	}
	return fmt.Errorf("copy %s: only files, directories and symlinks can be copied", src)
}

// replace makes target's parent and removes what target was, giving the
// host path to create.
func (w *writer) replace(target string) (string, error) {
	if _, err := w.mkdirAll(path.Dir(target)); err != nil {
		return "", err
	}
	dir, err := w.resolve(path.Dir(target))
	if err != nil {
		return "", err
	}
	full := filepath.Join(dir, path.Base(target))
	if fi, err := os.Lstat(full); err == nil && !fi.IsDir() {
		if err := os.Remove(full); err != nil {
			return "", fmt.Errorf("replace %s in the image: %w", target, err)
		}
	}
	return full, nil
}

// file copies the regular file src to the image path target.
func (w *writer) file(src, target string) error {
	full, err := w.replace(target)
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s in the image: %w", target, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("write %s in the image: %w", target, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return w.own(full, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// own sets the owner and the mode (--chmod's, else mode) of full.
func (w *writer) own(full string, mode fs.FileMode) error {
	if err := os.Lchown(full, w.owner.Uid, w.owner.Gid); err != nil {
		return err
	}
	if w.mode != nil {
		mode = *w.mode
	}
	return os.Chmod(full, mode)
}

// isTar says r starts with a tar header.
func isTar(r io.Reader) bool {
	_, err := tar.NewReader(r).Next()
	return err == nil
}

// workdir makes the WORKDIR directory when the image lacks it, owned by
// the USER in effect, as docker's builder does: a layer then, none when
// the directory is there. Without it a later `COPY f .` or a container's
// cwd would find no directory.
func (b *builder) workdir(ctx context.Context, st *state) (bool, error) {
	wd := st.img.Config.WorkingDir
	exists := false
	if err := b.withView(ctx, st, func(root string) error {
		full, err := securejoin.SecureJoin(root, wd)
		if err != nil {
			return fmt.Errorf("WORKDIR %s: %w", wd, err)
		}
		fi, err := os.Stat(full)
		exists = err == nil && fi.IsDir()
		return nil
	}); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	return true, b.withLayer(ctx, st, func(key string) error {
		return b.withMounted(ctx, key, func(root string) error {
			owner, err := parseChown(root, st.img.Config.User)
			if err != nil {
				return fmt.Errorf("WORKDIR %s: USER %s: %w", wd, st.img.Config.User, err)
			}
			full, err := (&writer{root: root}).mkdirAll(wd)
			if err != nil {
				return fmt.Errorf("WORKDIR %s: %w", wd, err)
			}
			if owner.Uid != 0 || owner.Gid != 0 {
				if err := os.Lchown(full, owner.Uid, owner.Gid); err != nil {
					return fmt.Errorf("WORKDIR %s: chown to USER %s: %w", wd, st.img.Config.User, err)
				}
			}
			return nil
		})
	})
}
