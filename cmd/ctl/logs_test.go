package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/logs"
)

func TestLogsOptions(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		o       logsOptions
		want    logs.Options
		wantErr string
	}{
		{name: "defaults", o: logsOptions{tail: "all"}, want: logs.Options{Tail: -1}},
		{name: "flags", o: logsOptions{tail: "3", since: "10m", until: "2026-12-02T11:55:00Z", follow: true, timestamps: true},
			want: logs.Options{Tail: 3, Since: now.Add(-10 * time.Minute), Until: now.Add(-5 * time.Minute), Follow: true, Timestamps: true}},
		{name: "bad tail", o: logsOptions{tail: "some"}, wantErr: "--tail"},
		{name: "bad since", o: logsOptions{tail: "all", since: "tomorrow"}, wantErr: "--since"},
		{name: "bad until", o: logsOptions{tail: "all", until: "2026-02-30"}, wantErr: "--until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.o.toLogs(now)
			if tc.wantErr != "" {
				if err == nil || !isUsageError(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want a usage error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Tail != tc.want.Tail || !got.Since.Equal(tc.want.Since) || !got.Until.Equal(tc.want.Until) ||
				got.Follow != tc.want.Follow || got.Timestamps != tc.want.Timestamps {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// The command's flags fit with the global ones, and a missing container
// argument is a usage error, before any containerd is asked.
func TestLogsUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--config", filepath.Join(t.TempDir(), "none.toml"), "logs"}, &stdout, &stderr)
	if code != 125 || !strings.Contains(stderr.String(), `"berth logs" requires exactly 1 argument`) {
		t.Errorf("berth logs: exit %d, stderr %q", code, stderr.String())
	}
}
