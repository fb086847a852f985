package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/containers"
)

// TestWriteContainers checks ps's outputs: docker's table, -q, --format
// and --format table.
func TestWriteContainers(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	rows := []containers.Summary{{ID: id, Image: "busybox", Command: "sh -c 'while :; do sleep 1; done'", CreatedAt: time.Unix(0, 0),
		RunningFor: "2 minutes ago", Status: "Up 2 minutes", State: "running", Names: "web", Labels: map[string]string{"app": "x"}}}
	tests := []struct {
		name string
		o    psOptions
		want string
	}{
		{"table", psOptions{}, "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS   NAMES\n" +
			"0123456789ab   busybox   \"sh -c 'while :; do …\"   2 minutes ago   Up 2 minutes           web\n"},
		{"quiet", psOptions{quiet: true}, "0123456789ab\n"},
		{"quiet no-trunc", psOptions{quiet: true, noTrunc: true}, id + "\n"},
		{"format", psOptions{format: `{{.Names}} {{.Label "app"}} {{.Command}}`}, "web x \"sh -c 'while :; do …\"\n"},
		{"format no-trunc", psOptions{format: "{{.ID}} {{.Command}}", noTrunc: true}, id + ` "sh -c 'while :; do sleep 1; done'"` + "\n"},
		{"format table", psOptions{format: `table {{.Names}}\t{{.State}}`}, "NAMES   STATE\nweb     running\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeContainers(&b, rows, tc.o); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

// TestWriteInspected checks inspect --format with Go field names and,
// as docker allows, JSON ones ({{.Id}}), numbers printed as written.
func TestWriteInspected(t *testing.T) {
	c := containers.InspectResponse{ID: "abc", Name: "/web"}
	c.State.Pid = 42
	c.HostConfig.Memory = 67108864
	for format, want := range map[string]string{
		"{{.ID}} {{.State.Pid}}":              "abc 42\n",
		"{{.Id}} {{.HostConfig.Memory}}":      "abc 67108864\n",
		"{{json .State.Status}} {{.Name}}":    "\"\" /web\n",
		`{{index .HostConfig "NetworkMode"}}`: "\n",
	} {
		var b bytes.Buffer
		if err := writeInspected(&b, format, []any{c}); err != nil {
			t.Errorf("%s: %v", format, err)
		} else if b.String() != want {
			t.Errorf("%s: %q, want %q", format, b.String(), want)
		}
	}
	var b bytes.Buffer
	if err := writeInspected(&b, "{{.Nosuch}}", []any{c}); err == nil || !strings.Contains(err.Error(), "Nosuch") {
		t.Errorf("a field neither form has: %v", err)
	}
}
