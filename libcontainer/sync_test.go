package libcontainer

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The init protocol's version must change whenever what travels between
// a runtime and the init it starts changes: the shim and berth-runtime
// may come from different builds. This pins the shape of initConfig (and
// the spec inside it) and the sync messages to the version. When it
// fails, bump initProtocol and update pinnedInitShape.
const pinnedInitShape = "ce958b8bc952dc14"

func TestInitProtocolPinned(t *testing.T) {
	var b strings.Builder
	writeShape(&b, reflect.TypeOf(initConfig{}), map[reflect.Type]bool{})
	writeShape(&b, reflect.TypeOf(syncMsg{}), map[reflect.Type]bool{})
	for _, m := range []string{msgHooks, msgHooksDone, msgReady, msgError, envInitPipe, envInitProtocol} {
		b.WriteString(m + ";")
	}
	got := fmt.Sprintf("%x", sha256.Sum256([]byte(b.String())))[:16]
	if got != pinnedInitShape {
		t.Fatalf("initConfig, the spec or the sync messages changed (shape %s, pinned %s): bump initProtocol (now %q) and set pinnedInitShape to %q",
			got, pinnedInitShape, initProtocol, got)
	}
}

// writeShape writes the names, JSON tags and kinds of t's fields, through
// pointers, slices, arrays and maps, each named type once.
func writeShape(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		b.WriteString(t.Kind().String() + "(")
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Map:
		b.WriteString("map(")
		writeShape(b, t.Key(), seen)
		b.WriteString(",")
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Struct:
		b.WriteString(t.String())
		if seen[t] {
			return
		}
		seen[t] = true
		b.WriteString("{")
		for i := range t.NumField() {
			f := t.Field(i)
			b.WriteString(f.Name + " `" + f.Tag.Get("json") + "` ")
			writeShape(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	default:
		b.WriteString(t.String())
	}
}

// The spec reaches init whole but for the sections init never reads.
func TestWireSpecRoundTrip(t *testing.T) {
	limit := int64(1 << 20)
	in := &specs.Spec{
		Version:  specs.Version,
		Process:  &specs.Process{Args: []string{"sh"}, Cwd: "/", Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "h", Domainname: "d",
		Mounts:      []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Hooks:       &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}},
		Annotations: map[string]string{"a": "b"},
		Linux: &specs.Linux{
			UIDMappings: []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}, Sysctl: map[string]string{"net.ipv4.ip_forward": "1"},
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}, Devices: []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
			Seccomp:     &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}},
			MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}, RootfsPropagation: "rslave",
			Personality: &specs.LinuxPersonality{Domain: specs.PerLinux},
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
			IntelRdt:    &specs.LinuxIntelRdt{ClosID: "x"},
		},
		Windows: &specs.Windows{},
	}
	b, err := json.Marshal(newWireSpec(in))
	if err != nil {
		t.Fatal(err)
	}
	var w wireSpec
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	want := *in
	l := *in.Linux
	l.Resources, l.IntelRdt = nil, nil
	want.Linux, want.Windows = &l, nil
	if got := w.full(); !reflect.DeepEqual(got, &want) {
		t.Errorf("init got\n%+v\nwant\n%+v\n(wire %s)", got, &want, b)
	}
	for _, left := range []string{"resources", "intelRdt", "windows"} {
		if strings.Contains(string(b), `"`+left+`"`) {
			t.Errorf("%s travels to init: %s", left, b)
		}
	}
}

// A wait for init that stalls (its cgroup frozen under it) ends with the
// stalled check's error; messages already sent, or read ahead, are read
// without asking it.
func TestSyncConnStalled(t *testing.T) {
	errFrozen := errors.New("frozen")
	for _, tc := range []struct {
		name   string
		sent   []syncMsg // what init has written before the reads
		reads  int
		want   error // of the last read
		checks bool  // stalled was asked
	}{
		{name: "nothing comes", reads: 1, want: errFrozen, checks: true},
		{name: "a message waiting", sent: []syncMsg{{Type: msgReady}}, reads: 1},
		{name: "two at once, the second read ahead", sent: []syncMsg{{Type: msgHooks}, {Type: msgReady}}, reads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, child, err := socketPair()
			if err != nil {
				t.Fatal(err)
			}
			defer parent.Close()
			defer child.Close()
			in := newSyncConn(child)
			for _, m := range tc.sent {
				in.send(m)
			}
			asked := false
			c := newSyncConn(parent)
			c.stalled = func() error { asked = true; return errFrozen }
			for i := 0; i < tc.reads; i++ {
				_, err = c.recvMsg()
			}
			if !errors.Is(err, tc.want) || asked != tc.checks {
				t.Errorf("last read: %v, stalled asked %v; want %v, %v", err, asked, tc.want, tc.checks)
			}
		})
	}
}
