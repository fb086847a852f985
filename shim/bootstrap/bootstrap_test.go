package bootstrap

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	shimapi "github.com/containerd/containerd/api/runtime/task/v3"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/shim/pack"
	"github.com/berthrt/berth/shim/record"
)

// TestMain lets a test run Handover in a child: it replaces the process.
func TestMain(m *testing.M) {
	if os.Getenv("BOOTSTRAP_TEST_HANDOVER") != "" {
		err := Handover("/bin/sh", []string{"-c", `printf '%s|' "$0" "$1"; cat`, "zero", "one"}, []byte("the start input"))
		os.Stderr.WriteString(err.Error())
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAny(t *testing.T, v any) *bootapi.Extension {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return &bootapi.Extension{Value: a}
}

// The messages read and written here agree with containerd's generated
// types.
func TestMessages(t *testing.T) {
	dir := "/run/x/s"
	in := &bootapi.BootstrapParams{
		InstanceID: "c1", Namespace: "ns", LogLevel: bootapi.LogLevel_LOG_LEVEL_DEBUG,
		ContainerdVersion: "v2.4.2", ContainerdTtrpcAddress: "/run/c.sock.ttrpc",
		ContainerdGrpcAddress: "/run/c.sock", ContainerdBinary: "/usr/bin/containerd",
		Extensions: []*bootapi.Extension{
			mustAny(t, &runcoptions.Options{Root: "/r"}),
			mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("ContainersPerShim = 3\n")}),
		},
		SocketDir: &dir,
	}
	p, err := DecodeParams(mustMarshal(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if p.InstanceID != "c1" || p.Namespace != "ns" || p.LogLevel != -4 || p.TTRPCAddress != "/run/c.sock.ttrpc" ||
		p.GRPCAddress != "/run/c.sock" || p.SocketDir != dir || len(p.Extensions) != 2 ||
		p.Extensions[0].TypeURL != "containerd.runc.v1.Options" {
		t.Fatalf("DecodeParams = %+v", p)
	}
	if n := ContainersPerShim(p.Extensions); n != 3 {
		t.Errorf("ContainersPerShim = %d, want 3", n)
	}
	if n := ContainersPerShim(nil); n != DefaultContainersPerShim {
		t.Errorf("ContainersPerShim without options = %d", n)
	}
	if _, err := DecodeParams([]byte{0x0a, 0x10, 'c'}); err == nil {
		t.Error("truncated parameters were accepted")
	}

	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(Result("unix:///run/s/abc"), &res); err != nil {
		t.Fatal(err)
	}
	if res.Version != 3 || res.Address != "unix:///run/s/abc" || res.Protocol != "ttrpc" {
		t.Errorf("Result reads as %+v", &res)
	}

	at := time.Date(2026, 11, 27, 14, 0, 0, 123456789, time.UTC)
	for _, e := range []record.Exit{{Pid: 42, Status: 137, At: at}, {}} {
		var dr shimapi.DeleteResponse
		if err := proto.Unmarshal(DeleteResponse(e), &dr); err != nil {
			t.Fatal(err)
		}
		if int(dr.Pid) != e.Pid || int(dr.ExitStatus) != e.Status || !dr.ExitedAt.AsTime().Equal(e.At) {
			t.Errorf("DeleteResponse(%+v) reads as %+v", e, &dr)
		}
	}
}

// Sockets are where containerd's shim library puts them.
func TestSocketAddress(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "ns")
	for _, debug := range []bool{false, true} {
		want, err := shim.CreateSocketAddress(ctx, "/run/x/s", "/run/c.sock", "g1", debug)
		if err != nil {
			t.Fatal(err)
		}
		if got := SocketAddress("/run/x/s", "/run/c.sock", "ns", "g1", debug); got != want {
			t.Errorf("debug %v: SocketAddress = %s, want %s", debug, got, want)
		}
	}
}

// liveShim listens where a group's shim would.
func liveShim(t *testing.T, socketDir, group string) string {
	t.Helper()
	addr := SocketAddress(socketDir, "/run/c.sock", "ns", group, false)
	l, err := net.Listen("unix", strings.TrimPrefix(addr, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return addr
}

// newBundle makes a bundle dir id with config.json carrying annotations,
// and enters it, as containerd runs the shim there.
func newBundle(t *testing.T, id, annotations string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	os.Mkdir(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"annotations":{`+annotations+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return dir
}

func startInput(t *testing.T, id, socketDir string) []byte {
	return mustMarshal(t, &bootapi.BootstrapParams{InstanceID: id, Namespace: "ns", ContainerdGrpcAddress: "/run/c.sock", SocketDir: &socketDir})
}

func answer(t *testing.T, input []byte, args ...string) (reply []byte, done bool) {
	t.Helper()
	var out bytes.Buffer
	stdin := bytes.NewReader(input)
	got, done, err := Answer(args, stdin, &out, "/usr/bin/berth-test-server")
	if err != nil {
		t.Fatal(err)
	}
	// What Answer read goes to the server again; what it did not read is
	// still there for the server to read.
	if got == nil && stdin.Len() != len(input) || got != nil && !bytes.Equal(got, input) {
		t.Errorf("Answer returned %q of the input %q, and left %d bytes", got, input, stdin.Len())
	}
	if !done && out.Len() > 0 {
		t.Errorf("Answer wrote %q and left the call to the server", out.Bytes())
	}
	return out.Bytes(), done
}

// start is answered when the container's group has a live shim, and left
// to the server otherwise, with nothing changed.
func TestAnswerStartGroup(t *testing.T) {
	socketDir := t.TempDir()
	bundle := newBundle(t, "c1", `"io.containerd.runc.v2.group":"g1"`)
	args := []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "start"}

	if _, done := answer(t, startInput(t, "c1", socketDir), args...); done {
		t.Fatal("start answered without a live shim")
	}
	if _, err := os.Stat(filepath.Join(bundle, "berth-shim-group")); err == nil {
		t.Error("an unanswered start recorded a group")
	}

	addr := liveShim(t, socketDir, "g1")
	reply, done := answer(t, startInput(t, "c1", socketDir), args...)
	if !done {
		t.Fatal("start with the group's shim alive went to the server")
	}
	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(reply, &res); err != nil || res.Address != addr {
		t.Fatalf("reply %+v, %v; want address %s", &res, err, addr)
	}
	if g, _ := record.Group(bundle, "c1"); g != "g1" {
		t.Errorf("recorded group %q", g)
	}
	if link, _ := os.Readlink(filepath.Join(bundle, "s")); link != socketDir {
		t.Errorf("socket dir link %q, want %s", link, socketDir)
	}

	for name, a := range map[string][]string{
		"other id":     {"-namespace", "ns", "-id", "c2", "-address", "/run/c.sock", "start"},
		"no namespace": {"-id", "c1", "-address", "/run/c.sock", "start"},
		"version":      {"-v"},
		"info":         {"-info"},
		"serve":        {"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock"},
		"unknown flag": {"-namespace", "ns", "-id", "c1", "-frobnicate", "start"},
	} {
		if _, done := answer(t, startInput(t, "c1", socketDir), a...); done {
			t.Errorf("%s: answered, want the server", name)
		}
	}
}

// A container without a group joins a pack slot whose shim is alive; a
// slot without one is left to the server, and the reservation undone.
func TestAnswerStartPacked(t *testing.T) {
	socketDir := t.TempDir()
	packs := pack.Open(socketDir, "/run/c.sock", "ns", "/usr/bin/berth-test-server")
	args := []string{"-namespace", "ns", "-id", "c2", "-address", "/run/c.sock", "start"}
	bundle := newBundle(t, "c2", "")

	if _, done := answer(t, startInput(t, "c2", socketDir), args...); done {
		t.Fatal("start answered without a live shim")
	}
	if names, _ := os.ReadDir(filepath.Join(packs.Path(), "0")); len(names) != 0 {
		t.Fatalf("an unanswered start left members %v", names)
	}

	var addr string
	if _, err := packs.Reserve("c1", DefaultContainersPerShim, func(g string) error {
		addr = liveShim(t, socketDir, g)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reply, done := answer(t, startInput(t, "c2", socketDir), args...)
	if !done {
		t.Fatal("start with the slot's shim alive went to the server")
	}
	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(reply, &res); err != nil || res.Address != addr {
		t.Fatalf("reply %+v, %v; want address %s", &res, err, addr)
	}
	if _, err := os.Stat(filepath.Join(packs.Path(), "0", "c2")); err != nil {
		t.Errorf("c2 is not a member of the slot: %v", err)
	}
	if g, _ := record.Group(bundle, "c2"); !strings.HasPrefix(g, "berth-pack-0-") {
		t.Errorf("recorded group %q", g)
	}
}

// delete is answered for a container the shim deleted itself.
func TestAnswerDelete(t *testing.T) {
	bundle := newBundle(t, "c1", "")
	args := []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "delete"}
	if _, done := answer(t, nil, args...); done {
		t.Fatal("delete answered for a container the shim did not delete")
	}
	e := record.Exit{Pid: 7, Status: 3, At: time.Unix(1800000000, 0)}
	if err := record.WriteExit(bundle, e); err != nil {
		t.Fatal(err)
	}
	if err := record.MarkDeleted(bundle); err != nil {
		t.Fatal(err)
	}
	reply, done := answer(t, nil, args...)
	if !done || !reflect.DeepEqual(reply, DeleteResponse(e)) {
		t.Fatalf("delete: done %v, reply %x", done, reply)
	}
}

// Without its server beside it, the shim says what to do.
func TestServerMissing(t *testing.T) {
	_, err := Server()
	if err == nil || !strings.Contains(err.Error(), ServerName) || !strings.Contains(err.Error(), "make install") {
		t.Fatalf("Server() beside the test binary: %v", err)
	}
}

// The server gets the arguments and, on its stdin, the input already read.
func TestHandover(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "BOOTSTRAP_TEST_HANDOVER=1")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "zero|one|the start input" {
		t.Fatalf("handed-over process: %v, output %q", err, out)
	}
}
