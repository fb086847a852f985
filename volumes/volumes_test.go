package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
)

// fakeUsers says which containers use which volumes.
type fakeUsers map[string][]string

func (f fakeUsers) VolumeUsers(context.Context) (map[string][]string, error) { return f, nil }

func TestCreateGetListRemove(t *testing.T) {
	ctx := context.Background()
	s := NewStore(t.TempDir())
	v, made, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil || !made {
		t.Fatalf("create: %v, made %v", err, made)
	}
	if v.Driver != "local" || v.Scope != "local" || v.Mountpoint != filepath.Join(s.root, "data", "_data") || v.Labels["a"] != "b" {
		t.Fatalf("created %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	again, made, err := s.Create(ctx, CreateOptions{Name: "data"})
	if err != nil || made || again.CreatedAt != v.CreatedAt {
		t.Fatalf("second create of one name: %+v made %v err %v, want the first", again, made, err)
	}
	anon, _, err := s.Create(ctx, CreateOptions{})
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Fatalf("anonymous: %+v %v", anon, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	err = s.Remove(ctx, "data", fakeUsers{"data": {"c1"}})
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errdefs.IsConflict(err) || !reflect.DeepEqual(inUse.Containers, []string{"c1"}) {
		t.Fatalf("remove of a volume in use: %v", err)
	}
	if err := s.Remove(ctx, "data", fakeUsers{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data"); !errdefs.IsNotFound(err) {
		t.Fatalf("get after remove: %v", err)
	}
	if err := s.Remove(ctx, "data", fakeUsers{}); !errdefs.IsNotFound(err) {
		t.Fatalf("remove of a missing volume: %v", err)
	}
	left, _ := os.ReadDir(s.root)
	if len(left) != 1 {
		t.Fatalf("store holds %v, want only the anonymous volume", left)
	}
}

func TestCreateRefuses(t *testing.T) {
	s := NewStore(t.TempDir())
	for _, o := range []CreateOptions{
		{Name: "a"},
		{Name: "../x"},
		{Name: "-x"},
		{Name: "ok", Driver: "nfs"},
		{Name: "ok", Options: map[string]string{"type": "tmpfs"}},
	} {
		if _, _, err := s.Create(context.Background(), o); err == nil {
			t.Errorf("create %+v succeeded", o)
		}
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("refused creates left %v", list)
	}
}

func TestFilter(t *testing.T) {
	v := Volume{Name: "webdata", Driver: "local", Labels: map[string]string{"tier": "front", "x": ""}}
	for _, tc := range []struct {
		args  []string
		inUse bool
		want  bool
	}{
		{nil, false, true},
		{[]string{"name=web"}, false, true},
		{[]string{"name=db"}, false, false},
		{[]string{"name=db", "name=data"}, false, true},
		{[]string{"label=tier"}, false, true},
		{[]string{"label=tier=back"}, false, false},
		{[]string{"label=tier=front", "name=web"}, false, true},
		{[]string{"dangling=true"}, true, false},
		{[]string{"dangling=true"}, false, true},
		{[]string{"dangling=false"}, true, true},
		{[]string{"driver=local"}, false, true},
	} {
		f, err := ParseFilters(tc.args, "name", "label", "dangling", "driver")
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Match(v, tc.inUse)
		if err != nil || got != tc.want {
			t.Errorf("%v (in use %v): %v %v, want %v", tc.args, tc.inUse, got, err, tc.want)
		}
	}
	if _, err := ParseFilters([]string{"colour=red"}, "name"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unknown filter key: %v", err)
	}
	f, _ := ParseFilters([]string{"dangling=maybe"}, "dangling")
	if _, err := f.Match(v, false); err == nil {
		t.Error("dangling=maybe accepted")
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := NewStore(t.TempDir())
	named, _, _ := s.Create(ctx, CreateOptions{Name: "named"})
	used, _, _ := s.Create(ctx, CreateOptions{Name: "used"})
	anon, _, _ := s.Create(ctx, CreateOptions{})
	if err := os.WriteFile(filepath.Join(anon.Mountpoint, "f"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	users := fakeUsers{used.Name: {"c1"}}
	rep, err := s.Prune(ctx, PruneOptions{}, users)
	if err != nil || !reflect.DeepEqual(rep.Deleted, []string{anon.Name}) || rep.SpaceReclaimed < 8192 {
		t.Fatalf("prune: %+v %v, want only the anonymous volume and its 8 KiB", rep, err)
	}
	rep, err = s.Prune(ctx, PruneOptions{All: true}, users)
	if err != nil || !reflect.DeepEqual(rep.Deleted, []string{named.Name}) {
		t.Fatalf("prune -a: %+v %v, want the named, unused volume", rep, err)
	}
	if list, _ := s.List(); len(list) != 1 || list[0].Name != "used" {
		t.Fatalf("left %v, want the volume in use", list)
	}
}

func TestCopyUp(t *testing.T) {
	ctx := context.Background()
	s := NewStore(t.TempDir())
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "var/lib/app"), 0o750)
	os.WriteFile(filepath.Join(rootfs, "var/lib/app/seed"), []byte("seed"), 0o640)
	// An image's symlink pointing out of the rootfs stays inside it.
	os.Symlink("/", filepath.Join(rootfs, "escape"))

	v, _, _ := s.Create(ctx, CreateOptions{Name: "app"})
	if err := CopyUp(v, rootfs, "/var/lib/app"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "seed")); err != nil || string(b) != "seed" {
		t.Fatalf("copied seed: %q %v", b, err)
	}
	if fi, _ := os.Stat(v.Mountpoint); fi.Mode().Perm() != 0o750 {
		t.Errorf("volume root mode %v, want the image directory's 0750", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(v.Mountpoint, "seed")); fi.Mode().Perm() != 0o640 {
		t.Errorf("seed mode %v, want 0640", fi.Mode().Perm())
	}
	// Not again into a volume that has data.
	os.WriteFile(filepath.Join(rootfs, "var/lib/app/later"), nil, 0o644)
	if err := CopyUp(v, rootfs, "/var/lib/app"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "later")); err == nil {
		t.Error("copied into a volume that had data")
	}
	w, _, _ := s.Create(ctx, CreateOptions{Name: "escape"})
	if err := CopyUp(w, rootfs, "/escape/etc"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(w.Mountpoint); len(entries) != 0 {
		t.Errorf("a symlink out of the rootfs copied host files: %v", entries)
	}
}

// TestRemoveRace removes one volume from many goroutines at once, as run
// --rm and the restart monitor both do: one removes it, the others are
// told it is not found, never another error.
func TestRemoveRace(t *testing.T) {
	ctx := context.Background()
	s := NewStore(t.TempDir())
	for range 20 {
		v, _, err := s.Create(ctx, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() { errs <- s.Remove(ctx, v.Name, fakeUsers{}) }()
		}
		removed := 0
		for range 4 {
			err := <-errs
			switch {
			case err == nil:
				removed++
			case !errdefs.IsNotFound(err):
				t.Fatalf("concurrent remove: %v, want nil or not found", err)
			}
		}
		if removed != 1 {
			t.Fatalf("%d removes succeeded, want 1", removed)
		}
	}
}
