// Package jsonfile writes and reads a container's log in docker's
// json-file format: one JSON object per line, {"log":"...","stream":
// "stdout","time":"..."}, rotated to <path>.1, <path>.2 … as docker's
// json-file driver does. Berth's shim writes it (so the package stays
// small: the shim links it); `berth logs` reads it through package logs.
package jsonfile

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// The OCI spec annotations that turn the log on. Whoever makes the
// container (berth run) sets them; Berth's shim reads them at Create.
const (
	// AnnotationPath is the absolute path of the json-file log:
	// <DataRoot>/containers/<id>/<id>-json.log.
	AnnotationPath = "io.berth.log.path"
	// AnnotationMaxSize is the size in bytes (decimal) at which the log
	// is rotated; absent or 0: never.
	AnnotationMaxSize = "io.berth.log.max-size"
	// AnnotationMaxFile is how many files the log keeps, the current one
	// included (decimal, default 1: rotation truncates it).
	AnnotationMaxFile = "io.berth.log.max-file"
)

// Config is where a container's log goes and how it is rotated.
type Config struct {
	Path string
	// MaxSize is the size in bytes at which the log is rotated; 0 never.
	MaxSize int64
	// MaxFile is how many files are kept, the current one included (at
	// least 1).
	MaxFile int
}

// ConfigFromAnnotations reads a container's log configuration from its
// spec's annotations. ok is false when the container has no log.
func ConfigFromAnnotations(a map[string]string) (cfg Config, ok bool, err error) {
	path, ok := a[AnnotationPath]
	if !ok {
		return Config{}, false, nil
	}
	if !filepath.IsAbs(path) {
		return Config{}, false, fmt.Errorf("annotation %s: %q is not an absolute path", AnnotationPath, path)
	}
	cfg = Config{Path: filepath.Clean(path), MaxFile: 1}
	if s, ok := a[AnnotationMaxSize]; ok {
		if cfg.MaxSize, err = strconv.ParseInt(s, 10, 64); err != nil || cfg.MaxSize < 0 {
			return Config{}, false, fmt.Errorf("annotation %s: %q is not a size in bytes", AnnotationMaxSize, s)
		}
	}
	if s, ok := a[AnnotationMaxFile]; ok {
		if cfg.MaxFile, err = strconv.Atoi(s); err != nil || cfg.MaxFile < 1 {
			return Config{}, false, fmt.Errorf("annotation %s: %q is not a count of at least 1", AnnotationMaxFile, s)
		}
	}
	return cfg, true, nil
}

// PathFor is where a container's log lives under berth's data root, as
// docker keeps it: <dataRoot>/containers/<id>/<id>-json.log.
func PathFor(dataRoot, id string) string {
	return filepath.Join(dataRoot, "containers", id, id+"-json.log")
}

// Annotations are the spec annotations that give a container this log
// (what ConfigFromAnnotations reads back).
func (c Config) Annotations() map[string]string {
	a := map[string]string{AnnotationPath: c.Path}
	if c.MaxSize > 0 {
		a[AnnotationMaxSize] = strconv.FormatInt(c.MaxSize, 10)
	}
	if c.MaxFile > 1 {
		a[AnnotationMaxFile] = strconv.Itoa(c.MaxFile)
	}
	return a
}

// Files lists the files of a log, oldest first: <path>.N … <path>.1,
// <path>. Some may not exist.
func (c Config) Files() []string {
	n := max(c.MaxFile, 1)
	out := make([]string, 0, n)
	for i := n - 1; i >= 1; i-- {
		out = append(out, rotatedName(c.Path, i))
	}
	return append(out, c.Path)
}

func rotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }
