package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLoggerRecords(t *testing.T) {
	for _, tc := range []struct {
		format string
		debug  bool
		want   []string // substrings, one line each, in order
	}{
		{"text", false, []string{`level=warning msg=careful`, `level=error msg="it failed"`}},
		{"text", true, []string{`level=debug msg=step id=c1`, `level=warning msg=careful`, `level=error msg="it failed"`}},
		{"json", false, []string{`"level":"warning","msg":"careful"`, `"level":"error","msg":"it failed"`}},
		{"json", true, []string{`"level":"debug","msg":"step","id":"c1"`, `"level":"warning","msg":"careful"`, `"level":"error","msg":"it failed"`}},
	} {
		var out bytes.Buffer
		l := newLogger(&out, tc.format, tc.debug)
		l.Debug("step", "id", "c1")
		l.Warn("careful")
		l.Error("it failed")
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != len(tc.want) {
			t.Fatalf("%s debug=%v: %d lines, want %d:\n%s", tc.format, tc.debug, len(lines), len(tc.want), out.String())
		}
		for i, w := range tc.want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("%s debug=%v: line %q lacks %q", tc.format, tc.debug, lines[i], w)
			}
		}
		if tc.format != "json" {
			continue
		}
		// containerd's runc shim (go-runc) decodes these fields as strings.
		for _, line := range lines {
			var rec struct{ Level, Msg, Time string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("json line %q: %v", line, err)
			}
			if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
				t.Errorf("time %q is not RFC 3339: %v", rec.Time, err)
			}
		}
	}
}

func TestSetupLoggingRefusesUnknownFormat(t *testing.T) {
	for _, f := range []string{"", "yaml", "JSON", "logfmt"} {
		g := &globals{logFormat: f}
		if err := g.setupLogging(); err == nil || !strings.Contains(err.Error(), "use text or json") {
			t.Errorf("--log-format %q: %v, want a refusal naming text and json", f, err)
		}
	}
}
