package libcontainer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A provisional state (create not done) derives its status from the
// creating process, whatever init is doing.
func TestStatusWhileCreating(t *testing.T) {
	me, err := self()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		creator *ProcessID
		want    Status
	}{
		{name: "create at work", creator: me, want: Creating},
		{name: "create killed, pid reused", creator: &ProcessID{Pid: me.Pid, StartTime: me.StartTime + 1}, want: Stopped},
		{name: "create killed", creator: &ProcessID{Pid: 1 << 30, StartTime: 1}, want: Stopped},
		{name: "create done", creator: nil, want: Running},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// init "is" this test process: alive, so only Creator decides.
			st := &State{ID: "c1", InitPid: me.Pid, InitStartTime: me.StartTime, Creator: tt.creator, CgroupPath: "/berth-no-such-cgroup"}
			c := &Container{dir: t.TempDir(), state: st}
			if got := c.Status(); got != tt.want {
				t.Errorf("Status() = %s, want %s", got, tt.want)
			}
		})
	}
}

// The state directory appears with its state in it, and only once.
func TestMakeStateDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	st := &State{ID: "c1", CgroupPath: "/berth/c1"}
	dir, err := makeStateDir(root, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir, "c1")
	if err != nil || got.CgroupPath != st.CgroupPath {
		t.Fatalf("state after makeStateDir: %+v, %v", got, err)
	}
	if _, err := makeStateDir(root, st); err == nil {
		t.Fatalf("a second makeStateDir of the same id succeeded")
	}
	cs, err := List(root)
	if err != nil || len(cs) != 1 || cs[0].ID() != "c1" {
		t.Fatalf("List after a refused second create: %v, %v; want only c1", cs, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(root, "~*")); len(matches) != 0 {
		t.Errorf("temporary directories left: %v", matches)
	}
}

// A create that panics midway (the shim recovers panics and lives on, so
// its pid would stay the creator of a "creating" container that no delete
// could remove) is undone like one that fails, and the panic goes on.
func TestCreatePanicUndone(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	me, err := self()
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{cgReady: make(chan struct{}), state: &State{ID: "c1", Creator: me}}
	close(b.cgReady)
	if b.dir, err = makeStateDir(root, b.state); err != nil {
		t.Fatal(err)
	}
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		var err error
		defer b.undoOnFailure(context.Background(), &err)
		panic("create bug")
	}()
	if recovered != "create bug" {
		t.Errorf("recovered %v: want the create's own panic to go on", recovered)
	}
	if cs, err := List(root); err != nil || len(cs) != 0 {
		t.Errorf("after a panicking create, List gives %v, %v: want nothing left", cs, err)
	}
}

// TestListRemovesStaleCreating: a create killed between making its
// temporary state directory and renaming it leaves the directory; List
// removes it once it is clearly no running create's, and never lists it.
func TestListRemovesStaleCreating(t *testing.T) {
	root := t.TempDir()
	stale := filepath.Join(root, creatingPrefix+"old")
	fresh := filepath.Join(root, creatingPrefix+"new")
	for _, d := range []string{stale, fresh} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleCreating)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	cs, err := List(root)
	if err != nil || len(cs) != 0 {
		t.Fatalf("List = %v, %v; want no containers", cs, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s still there (%v)", stale, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a create's fresh %s was removed: %v", fresh, err)
	}
}
