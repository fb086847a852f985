package process

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berthrt/berth/logs/jsonfile"
)

// openLog reads the log annotations from the bundle's config.json: none
// is no log, a bad one refuses the create.
func TestOpenLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "c", "c-json.log")
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		wantLog     bool
		wantErr     error
	}{
		{name: "no annotations"},
		{name: "other annotations", annotations: map[string]string{"org.example": "x"}},
		{name: "log", annotations: map[string]string{jsonfile.AnnotationPath: logPath}, wantLog: true},
		{name: "relative path", annotations: map[string]string{jsonfile.AnnotationPath: "c.log"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "bad size", annotations: map[string]string{jsonfile.AnnotationPath: logPath, jsonfile.AnnotationMaxSize: "1x"}, wantErr: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			b, _ := json.Marshal(map[string]any{"ociVersion": "1.2.0", "annotations": tc.annotations})
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := openLog(bundle)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (w != nil) != tc.wantLog {
				t.Fatalf("log %v, want one: %v", w, tc.wantLog)
			}
			if w != nil {
				w.Close()
				if _, err := os.Stat(logPath); err != nil {
					t.Errorf("the log was not made: %v", err)
				}
			}
		})
	}
}
