package restart

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/berthrt/berth/logs/jsonfile"
)

// TestLogAnnotation: the monitor reads the log annotation berth run sets
// (logs/jsonfile's), and finds the container's directory in the path
// jsonfile.PathFor gives, so --rm's removal takes that directory.
func TestLogAnnotation(t *testing.T) {
	if annotationLogPath != jsonfile.AnnotationPath {
		t.Fatalf("the monitor reads annotation %q, berth run sets %q", annotationLogPath, jsonfile.AnnotationPath)
	}
	id := "0123456789abcdef"
	root := "/var/lib/berth"
	if got, want := containerDataDir(id, jsonfile.PathFor(root, id)), filepath.Join(root, "containers", id); got != want {
		t.Fatalf("containerDataDir of jsonfile.PathFor: %q, want %q", got, want)
	}
}

func TestRecordedByUser(t *testing.T) {
	at := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"berth's start, just before", map[string]string{LabelStartedAt: formatTime(at.Add(-40 * time.Millisecond))}, true},
		{"no record", map[string]string{}, false},
		{"an earlier run's start", map[string]string{LabelStartedAt: formatTime(at.Add(-time.Hour))}, false},
		{"the last exit still recorded", map[string]string{LabelStartedAt: formatTime(at.Add(-time.Second)), LabelExitCode: "0"}, false},
		{"an OOM still recorded", map[string]string{LabelStartedAt: formatTime(at.Add(-time.Second)), LabelOOMKilled: "true"}, false},
		{"a start recorded after this one", map[string]string{LabelStartedAt: formatTime(at.Add(time.Second))}, false},
	} {
		if got := recordedByUser(tc.labels, at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
