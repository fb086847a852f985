package record

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A bundle is marked deleted only once MarkDeleted ran: `shim delete`
// skips its cleanup for such a bundle alone, and only with an exit to
// report.
func TestDeletedExit(t *testing.T) {
	bundle := t.TempDir()
	if WasDeleted(bundle) {
		t.Fatal("a fresh bundle reads as deleted")
	}
	want := Exit{Pid: 42, Status: 137, At: time.Unix(1700000000, 5).UTC()}
	if err := WriteExit(bundle, want); err != nil {
		t.Fatal(err)
	}
	if _, ok := DeletedExit(bundle); ok {
		t.Fatal("an exit without the delete mark reads as deleted")
	}
	if err := MarkDeleted(bundle); err != nil {
		t.Fatal(err)
	}
	got, ok := DeletedExit(bundle)
	if !ok || got.Pid != want.Pid || got.Status != want.Status || !got.At.Equal(want.At) {
		t.Fatalf("DeletedExit = %+v, %v; want %+v", got, ok, want)
	}
	if err := MarkDeleted(filepath.Join(bundle, "missing")); err == nil {
		t.Error("MarkDeleted of a missing bundle succeeded")
	}
	os.Remove(filepath.Join(bundle, exitFile))
	if _, ok := DeletedExit(bundle); ok {
		t.Error("a delete mark without an exit reads as done")
	}
}

func TestGroup(t *testing.T) {
	for _, c := range []struct {
		name, config, want string
		annotated          bool
	}{
		{"none", `{"annotations":{}}`, "c1", false},
		{"runc group", `{"annotations":{"io.containerd.runc.v2.group":"g"}}`, "g", true},
		{"sandbox", `{"annotations":{"io.kubernetes.cri.sandbox-id":"pod"}}`, "pod", true},
		{"runc group first", `{"annotations":{"io.kubernetes.cri.sandbox-id":"pod","io.containerd.runc.v2.group":"g"}}`, "g", true},
		{"empty group", `{"annotations":{"io.containerd.runc.v2.group":""}}`, "c1", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			bundle := t.TempDir()
			os.WriteFile(filepath.Join(bundle, "config.json"), []byte(c.config), 0o644)
			g, annotated, err := GroupOf(bundle, "c1")
			if err != nil || g != c.want || annotated != c.annotated {
				t.Fatalf("GroupOf = %q, %v, %v; want %q, %v", g, annotated, err, c.want, c.annotated)
			}
			if g, err := Group(bundle, "c1"); err != nil || g != c.want {
				t.Fatalf("Group without a record = %q, %v; want %q", g, err, c.want)
			}
			if err := WriteGroup(bundle, "berth-pack-0-abcd"); err != nil {
				t.Fatal(err)
			}
			if g, err := Group(bundle, "c1"); err != nil || g != "berth-pack-0-abcd" {
				t.Fatalf("Group = %q, %v; want the recorded one", g, err)
			}
		})
	}
	if _, _, err := GroupOf(t.TempDir(), "c1"); err == nil {
		t.Error("GroupOf a bundle without config.json succeeded")
	}
}
