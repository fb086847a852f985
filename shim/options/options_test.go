package options

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

func mustAny(t *testing.T, v any) typeurl.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The options arrive as an Any made from containerd's generated types;
// Decode reads them without those types (shim/wire).
func TestDecode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "opts.toml")
	if err := os.WriteFile(file, []byte("Root = \"/from/file\"\nIoUid = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   typeurl.Any
		want Options
	}{
		{"nil", nil, Options{}},
		{"empty any", &anypb.Any{}, Options{}},
		{"runc", mustAny(t, &runcoptions.Options{Root: "/r", NoPivotRoot: true, IoUid: 1, IoGid: 2, ShimCgroup: "/s", BinaryName: "runc"}),
			Options{Root: "/r", NoPivotRoot: true, IoUID: 1, IoGID: 2, ShimCgroup: "/s", BinaryName: "runc"}},
		{"runc, none apply", mustAny(t, &runcoptions.Options{NoNewKeyring: true, BinaryName: "runc", SystemdCgroup: true, CriuImagePath: "/i", CriuWorkPath: "/w", TaskApiVersion: 3}),
			Options{BinaryName: "runc", Ignored: []string{"NoNewKeyring", "SystemdCgroup", "CriuImagePath", "CriuWorkPath"}}},
		{"runc, empty", mustAny(t, &runcoptions.Options{}), Options{}},
		{"toml body", mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("Root = \"/b\"\nNoPivotRoot = true\nUnknown = 3\n")}),
			Options{Root: "/b", NoPivotRoot: true}},
		{"containers per shim", mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("ContainersPerShim = 1\n")}),
			Options{ContainersPerShim: 1}},
		{"berth's own", mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("RuntimeBinary = \"/opt/berth-runtime\"\nShimLinger = \"0s\"\nBinaryName = \"runc\"\n")}),
			Options{RuntimeBinary: "/opt/berth-runtime", ShimLinger: "0s", BinaryName: "runc"}},
		{"toml file", mustAny(t, &runtimeoptions.Options{ConfigPath: file}), Options{Root: "/from/file", IoUID: 5}},
		{"unknown type", &anypb.Any{TypeUrl: "example.com/unknown", Value: []byte{1, 2, 3}},
			Options{Ignored: []string{"options of unknown type example.com/unknown"}}},
	} {
		got, err := decodeAny(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, *got, tc.want)
		}
	}
	for _, body := range []string{"Root = ", "ShimLinger = \"2\"", "ShimLinger = \"-1s\"", "ShimLinger = \"soon\""} {
		if _, err := decodeAny(mustAny(t, &runtimeoptions.Options{ConfigBody: []byte(body)})); err == nil {
			t.Errorf("options %q were accepted", body)
		}
	}
	for _, url := range []string{RuncTypeURL, GenericTypeURL} {
		if _, err := Decode(url, []byte{0x1a, 0x05, 'a'}); err == nil {
			t.Errorf("a truncated %s was accepted", url)
		}
	}
}

func decodeAny(a typeurl.Any) (*Options, error) {
	if a == nil {
		return Decode("", nil)
	}
	return Decode(a.GetTypeUrl(), a.GetValue())
}

func TestLinger(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultShimLinger, "0s": 0, "500ms": 500 * time.Millisecond, "1m": time.Minute} {
		if got := (&Options{ShimLinger: in}).Linger(); got != want {
			t.Errorf("ShimLinger %q: Linger() = %v, want %v", in, got, want)
		}
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	if o, err := Read(dir); err != nil || o.Root != "" {
		t.Fatalf("Read of a bundle without options: %+v, %v", o, err)
	}
	if err := Write(dir, &Options{Root: "/x", IoUID: 3}); err != nil {
		t.Fatal(err)
	}
	o, err := Read(dir)
	if err != nil || o.Root != "/x" || o.IoUID != 3 {
		t.Fatalf("Read after Write: %+v, %v", o, err)
	}
	if got := o.StateRoot("ns"); got != "/x/ns" {
		t.Errorf("StateRoot = %s", got)
	}
	if got := (&Options{}).StateRoot("ns"); got != DefaultRoot+"/ns" {
		t.Errorf("default StateRoot = %s", got)
	}
}
