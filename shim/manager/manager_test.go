package manager

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	_ "github.com/containerd/containerd/v2/core/runtime" // registers the features document's type URL
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"
)

// Info carries the features document of the berth-runtime the options
// choose, and echoes runc's options; a BinaryName that names nothing
// fails, as create does.
func TestInfoFeatures(t *testing.T) {
	dir := t.TempDir()
	runtime := filepath.Join(dir, "my-berth-runtime")
	script := "#!/bin/sh\ncase $1 in\n--version) echo 'berth-runtime version test';;\n" +
		"features) echo '{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.3.0\",\"hooks\":[\"prestart\"]}';;\nesac\n"
	if err := os.WriteFile(runtime, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	optionsInput := func(o *runcoptions.Options) *bytes.Reader {
		a, err := typeurl.MarshalAnyToProto(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(b)
	}
	m := manager{name: "io.containerd.berth.v2"}
	info, err := m.Info(context.Background(), optionsInput(&runcoptions.Options{BinaryName: runtime}))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("Info's features (%v): %v", info.Features, err)
	}
	feat, ok := v.(*features.Features)
	if !ok || feat.OCIVersionMax != "1.3.0" || len(feat.Hooks) != 1 {
		t.Errorf("Info's features: %#v, want the runtime's document", v)
	}
	if info.Options == nil || info.Options.GetTypeUrl() != "containerd.runc.v1.Options" {
		t.Errorf("Info's options: %v, want runc's echoed", info.Options)
	}
	_, err = m.Info(context.Background(), optionsInput(&runcoptions.Options{BinaryName: "/no/such/runc"}))
	if err == nil || !strings.Contains(err.Error(), "/no/such/runc") {
		t.Errorf("Info with a missing BinaryName: %v, want an error naming it", err)
	}
}
