package bootstrap

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
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
	if p.InstanceID != "c1" || p.Namespace != "ns" || p.LogLevel != -4 ||
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

// shortDir is a socket directory short enough for a socket path (108
// bytes) with a 64-character name, which t.TempDir is not always.
func shortDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "bs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startInput(t *testing.T, id, socketDir string, exts ...*bootapi.Extension) []byte {
	return mustMarshal(t, &bootapi.BootstrapParams{
		InstanceID: id, Namespace: "ns", ContainerdGrpcAddress: "/run/c.sock", SocketDir: &socketDir, Extensions: exts,
	})
}

// fakeServer is a server binary that, run as a shim, records its
// arguments, environment and fd 3, then waits to be killed.
type fakeServer struct{ path, dir string }

func newFakeServer(t *testing.T) fakeServer {
	t.Helper()
	dir := t.TempDir()
	s := fakeServer{path: filepath.Join(dir, "server"), dir: dir}
	script := "#!/bin/sh\ncd " + dir + "\necho \"$@\" > args.tmp; env > env; readlink /proc/self/fd/3 > fd3; echo $$ > pid; mv args.tmp args\nexec sleep 60\n"
	if err := os.WriteFile(s.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return s
}

// started waits for the fake shim to record itself and returns its
// arguments and environment; ok is false if it never ran.
func (s fakeServer) started() (args, env string, ok bool) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if a, err := os.ReadFile(filepath.Join(s.dir, "args")); err == nil {
			e, _ := os.ReadFile(filepath.Join(s.dir, "env"))
			fd3, _ := os.ReadFile(filepath.Join(s.dir, "fd3"))
			return strings.TrimSpace(string(a)), string(e) + "fd3=" + string(fd3), true
		}
	}
	return "", "", false
}

func answer(t *testing.T, server string, input []byte, args ...string) (reply []byte, done bool) {
	t.Helper()
	var out bytes.Buffer
	stdin := bytes.NewReader(input)
	got, done, err := Answer(args, stdin, &out, server)
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

func resultAddress(t *testing.T, reply []byte) string {
	t.Helper()
	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(reply, &res); err != nil || res.Version != 3 || res.Protocol != "ttrpc" {
		t.Fatalf("reply %+v, %v", &res, err)
	}
	return res.Address
}

// A start in a group spawns the group's shim from the server, serving an
// owner-only socket passed as fd 3; the next start of the group goes to
// that shim.
func TestAnswerStartGroup(t *testing.T) {
	socketDir := shortDir(t)
	server := newFakeServer(t)
	bundle := newBundle(t, "c1", `"io.containerd.runc.v2.group":"g1"`)
	args := []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "start"}

	reply, done := answer(t, server.path, startInput(t, "c1", socketDir), args...)
	want := SocketAddress(socketDir, "/run/c.sock", "ns", "g1", false)
	if !done || resultAddress(t, reply) != want {
		t.Fatalf("start: done %v, reply %x; want address %s", done, reply, want)
	}
	shimArgs, env, ok := server.started()
	if !ok {
		t.Fatal("no shim was started")
	}
	if shimArgs != "-namespace ns -id c1 -address /run/c.sock" || !strings.Contains(env, EnvSocket+"="+want+"\n") ||
		!strings.Contains(env, "GOMAXPROCS=1\n") || !strings.Contains(env, "fd3=socket:") {
		t.Errorf("shim started with args %q, env and fd 3:\n%s", shimArgs, env)
	}
	if st, err := os.Stat(socketPath(want)); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("shim socket: %v, %v", st.Mode(), err)
	}
	if g, _ := record.Group(bundle, "c1"); g != "g1" {
		t.Errorf("recorded group %q", g)
	}
	if link, _ := os.Readlink(filepath.Join(bundle, "s")); link != socketDir {
		t.Errorf("socket dir link %q, want %s", link, socketDir)
	}

	// The group's shim answers now (the fake one does not serve: this
	// stands in for it).
	os.Remove(socketPath(want))
	liveShim(t, socketDir, "g1")
	other := newFakeServer(t)
	bundle2 := newBundle(t, "c2", `"io.containerd.runc.v2.group":"g1"`)
	reply, done = answer(t, other.path, startInput(t, "c2", socketDir), "-namespace", "ns", "-id", "c2", "-address", "/run/c.sock", "start")
	if !done || resultAddress(t, reply) != want {
		t.Fatalf("second start: done %v; want address %s", done, want)
	}
	if _, err := os.Stat(filepath.Join(other.dir, "args")); err == nil {
		t.Error("a second shim was started for a group whose shim runs")
	}
	if g, _ := record.Group(bundle2, "c2"); g != "g1" {
		t.Errorf("recorded group %q", g)
	}
}

// Calls the server must answer are left to it, stdin unread, nothing made.
func TestAnswerLeavesToServer(t *testing.T) {
	socketDir := shortDir(t)
	server := newFakeServer(t)
	bundle := newBundle(t, "c1", "")
	shimCgroup := mustAny(t, &runcoptions.Options{ShimCgroup: "/shims"})
	for name, c := range map[string]struct {
		input []byte
		args  []string
	}{
		"other id":     {startInput(t, "c1", socketDir), []string{"-namespace", "ns", "-id", "c2", "-address", "/run/c.sock", "start"}},
		"no namespace": {startInput(t, "c1", socketDir), []string{"-id", "c1", "-address", "/run/c.sock", "start"}},
		"version":      {nil, []string{"-v"}},
		"info":         {nil, []string{"-info"}},
		"serve":        {nil, []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock"}},
		"unknown flag": {nil, []string{"-namespace", "ns", "-id", "c1", "-frobnicate", "start"}},
		"no params":    {nil, []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "start"}},
		"shim cgroup":  {startInput(t, "c1", socketDir, shimCgroup), []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "start"}},
	} {
		if _, done := answer(t, server.path, c.input, c.args...); done {
			t.Errorf("%s: answered, want the server", name)
		}
	}
	if _, err := os.Stat(filepath.Join(server.dir, "args")); err == nil {
		t.Error("a shim was started")
	}
	if _, err := os.Stat(filepath.Join(bundle, "berth-shim-group")); err == nil {
		t.Error("a group was recorded")
	}
}

// A failed start leaves nothing: no socket, no pack membership, no group.
func TestStartFailureLeavesNothing(t *testing.T) {
	socketDir := shortDir(t)
	bundle := newBundle(t, "c1", "")
	missing := filepath.Join(t.TempDir(), "no-such-server")
	_, done, err := Answer([]string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "start"},
		bytes.NewReader(startInput(t, "c1", socketDir)), io.Discard, missing)
	if !done || err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("start with a missing server: done %v, err %v", done, err)
	}
	packs := pack.Open(socketDir, "/run/c.sock", "ns", missing, ShimOptionsKey(nil))
	if names, _ := os.ReadDir(filepath.Join(packs.Path(), "0")); len(names) != 0 {
		t.Errorf("a failed start left pack members %v", names)
	}
	socks, _ := filepath.Glob(filepath.Join(socketDir, "[0-9a-f]*"))
	if len(socks) != 0 {
		t.Errorf("a failed start left sockets %v", socks)
	}
	if _, err := os.Stat(filepath.Join(bundle, "berth-shim-group")); err == nil {
		t.Error("a failed start recorded a group")
	}
}

// Containers without a group share a slot's shim: the first start spawns
// it, the next joins it while it answers.
func TestAnswerStartPacked(t *testing.T) {
	socketDir := shortDir(t)
	server := newFakeServer(t)
	perShim := mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("ContainersPerShim = 2\n")})
	key := ShimOptionsKey([]Any{{TypeURL: perShim.Value.GetTypeUrl(), Value: perShim.Value.GetValue()}})
	packs := pack.Open(socketDir, "/run/c.sock", "ns", server.path, key)

	newBundle(t, "c1", "")
	reply, done := answer(t, server.path, startInput(t, "c1", socketDir, perShim), "-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "start")
	if !done {
		t.Fatal("start not answered")
	}
	addr := resultAddress(t, reply)
	_, env, ok := server.started()
	if !ok || !strings.Contains(env, pack.EnvDir+"="+packs.Path()+"\n") || !strings.Contains(env, pack.EnvSlot+"=0\n") {
		t.Fatalf("shim started %v, with env:\n%s", ok, env)
	}

	// Stand in for the slot's shim, as in TestAnswerStartGroup.
	os.Remove(socketPath(addr))
	l, err := net.Listen("unix", socketPath(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bundle := newBundle(t, "c2", "")
	reply, done = answer(t, server.path, startInput(t, "c2", socketDir, perShim), "-namespace", "ns", "-id", "c2", "-address", "/run/c.sock", "start")
	if !done || resultAddress(t, reply) != addr {
		t.Fatalf("second start: done %v; want address %s", done, addr)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := os.Stat(filepath.Join(packs.Path(), "0", id)); err != nil {
			t.Errorf("%s is not a member of slot 0: %v", id, err)
		}
	}
	if g, _ := record.Group(bundle, "c2"); !strings.HasPrefix(g, "berth-pack-0-") {
		t.Errorf("recorded group %q", g)
	}
	if dir, ok := record.Pack(bundle); !ok || dir != packs.Path() {
		t.Errorf("recorded shared shims' state %q (%v), want %s", dir, ok, packs.Path())
	}
}

// The options that shape a shim are its packing key: containers with
// other ones never share it. Options that do not shape a shim, and the
// defaults spelled out, leave the key as it is.
func TestShimOptionsKey(t *testing.T) {
	toml := func(body string) []Any {
		a, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigBody: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		return []Any{{TypeURL: a.GetTypeUrl(), Value: a.GetValue()}}
	}
	base := ShimOptionsKey(nil)
	for _, tc := range []struct {
		body string
		same bool
	}{
		{"Root = \"/elsewhere\"\nIoUid = 3\n", true},
		{"ContainersPerShim = 1\nShimLinger = \"2s\"\n", true},
		{"ShimCgroup = \"/shims\"\n", false},
		{"ContainersPerShim = 4\n", false},
		{"ShimLinger = \"0s\"\n", false},
	} {
		key := ShimOptionsKey(toml(tc.body))
		if (key == base) != tc.same {
			t.Errorf("options %q: key %q, default %q; want same %v", tc.body, key, base, tc.same)
		}
		dir := pack.Open("/run/s", "/run/c.sock", "ns", "/bin/shim", key).Path()
		if (dir == pack.Open("/run/s", "/run/c.sock", "ns", "/bin/shim", base).Path()) != tc.same {
			t.Errorf("options %q: shared shims' state %s; want the default's %v", tc.body, dir, tc.same)
		}
	}
}

// delete is answered for a container the shim deleted itself.
func TestAnswerDelete(t *testing.T) {
	bundle := newBundle(t, "c1", "")
	args := []string{"-namespace", "ns", "-id", "c1", "-address", "/run/c.sock", "delete"}
	if _, done := answer(t, "/no/server", nil, args...); done {
		t.Fatal("delete answered for a container the shim did not delete")
	}
	e := record.Exit{Pid: 7, Status: 3, At: time.Unix(1800000000, 0)}
	if err := record.WriteExit(bundle, e); err != nil {
		t.Fatal(err)
	}
	if err := record.MarkDeleted(bundle); err != nil {
		t.Fatal(err)
	}
	reply, done := answer(t, "/no/server", nil, args...)
	if !done || !reflect.DeepEqual(reply, DeleteResponse(e)) {
		t.Fatalf("delete: done %v, reply %x", done, reply)
	}
}

// The server beside the shim wins; without one there, the one on PATH
// serves (a shim started by an absolute runtime_path); with neither, the
// shim says what to do.
func TestFindServer(t *testing.T) {
	beside, onPath, empty := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{beside, onPath} {
		if err := os.WriteFile(filepath.Join(dir, ServerName), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", onPath)
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"beside", beside, filepath.Join(beside, ServerName)},
		{"on PATH", empty, filepath.Join(onPath, ServerName)},
	} {
		got, err := findServer(tc.dir)
		if err != nil || got != tc.want {
			t.Errorf("%s: findServer(%s) = %q, %v; want %q", tc.name, tc.dir, got, err, tc.want)
		}
	}
	t.Setenv("PATH", empty)
	_, err := findServer(empty)
	if err == nil || !strings.Contains(err.Error(), ServerName) || !strings.Contains(err.Error(), "make install") {
		t.Fatalf("findServer with no server anywhere: %v; want an error naming it and what to do", err)
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
