package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildContext is the build's context directory and its .dockerignore.
type buildContext struct {
	dir    string // "" : no context
	ignore *patternmatcher.PatternMatcher
}

// openContext opens the context dir and reads its .dockerignore.
func openContext(dir string) (*buildContext, error) {
	if dir == "" {
		return &buildContext{}, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory (%v)", dir, err)
	}
	c := &buildContext{dir: abs}
	f, err := os.Open(filepath.Join(abs, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/.dockerignore: %w", dir, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s/.dockerignore: %w", dir, err)
	}
	if c.ignore, err = patternmatcher.New(patterns); err != nil {
		return nil, fmt.Errorf("%s/.dockerignore: %w", dir, err)
	}
	return c, nil
}

// ignored says .dockerignore leaves rel (slash-separated, relative to
// the context) out.
func (c *buildContext) ignored(rel string) bool {
	if c.ignore == nil || rel == "." {
		return false
	}
	m, err := c.ignore.MatchesOrParentMatches(filepath.ToSlash(rel))
	return err == nil && m
}

// match finds the sources of a COPY or ADD under root: each pattern,
// resolved inside root (a path or symlink cannot leave it), with
// wildcards expanded. A source that matches nothing fails, naming it and
// where it was looked for (what).
func match(root, what string, patterns []string, ignored func(string) bool) ([]string, error) {
	var out []string
	for _, p := range patterns {
		clean := filepath.Clean("/" + p)
		var found []string
		if strings.ContainsAny(clean, "*?[") {
			all, err := filepath.Glob(filepath.Join(root, clean))
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", p, err)
			}
			for _, m := range all {
				rel, err := filepath.Rel(root, m)
				if err == nil && !strings.HasPrefix(rel, "..") {
					found = append(found, rel)
				}
			}
		} else if full, err := securejoin.SecureJoin(root, clean); err == nil {
			if _, err := os.Lstat(full); err == nil {
				rel, _ := filepath.Rel(root, full)
				found = append(found, rel)
			}
		}
		var kept []string
		for _, rel := range found {
			if !ignored(rel) {
				kept = append(kept, rel)
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("file not found in %s: %s", what, p)
		}
		out = append(out, kept...)
	}
	return out, nil
}

// walk walks src under root as a COPY does, leaving out what ignored
// says (a directory with all below it); fn gets each path and its path
// relative to root.
func walk(root, src string, ignored func(string) bool, fn func(p, rel string, fi fs.FileInfo) error) error {
	base := filepath.Join(root, src)
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if p != base && ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(p, rel, fi)
	})
}

// hashTree hashes what a COPY would copy from root: every path under each
// source (not ignored), its mode, its link target and its content.
func hashTree(root string, sources []string, ignored func(string) bool) (string, error) {
	h := sha256.New()
	for _, src := range sources {
		err := walk(root, src, ignored, func(p, rel string, fi fs.FileInfo) error {
			fmt.Fprintf(h, "%q %o\n", rel, fi.Mode())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "-> %q\n", target)
			case fi.Mode().IsRegular():
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(h, f)
				f.Close()
				return err
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", src, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sortedKeys is m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
