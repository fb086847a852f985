package pack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestReserveFillsSlotsInOrder(t *testing.T) {
	d := Open(t.TempDir(), "/run/containerd/containerd.sock", "default", "/usr/local/bin/containerd-shim-berth-v2", "")
	var groups []string
	bind := func(g string) error { groups = append(groups, g); return nil }
	for i := range 5 {
		slot, err := d.Reserve(fmt.Sprintf("c%d", i), 2, bind)
		if err != nil {
			t.Fatal(err)
		}
		if want := i / 2; slot != want {
			t.Errorf("container %d: slot %d, want %d", i, slot, want)
		}
	}
	// One group per slot: containers of a slot go to one shim.
	for i, g := range groups {
		if slot, ok := SlotOf(g); !ok || slot != i/2 {
			t.Errorf("container %d: group %q is not one of slot %d", i, g, i/2)
		}
		if i%2 == 1 && g != groups[i-1] {
			t.Errorf("containers %d and %d share slot %d but got groups %q and %q", i-1, i, i/2, groups[i-1], g)
		}
	}
	if groups[0] == groups[2] {
		t.Errorf("slots 0 and 1 got the same group %q", groups[0])
	}
	// A member leaving makes room in its slot, which is filled first.
	if err := d.Release(0, "c1", alive); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(0, "c1", alive); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if slot, err := d.Reserve("c5", 2, bind); err != nil || slot != 0 {
		t.Errorf("after a release: slot %d, %v; want 0", slot, err)
	}
}

func TestReserveUndoneWhenBindFails(t *testing.T) {
	d := Open(t.TempDir(), "addr", "ns", "shim", "")
	boom := errors.New("boom")
	if _, err := d.Reserve("c0", 1, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the bind error", err)
	}
	// The failed container holds no place: the next one gets slot 0.
	if slot, err := d.Reserve("c1", 1, func(string) error { return nil }); err != nil || slot != 0 {
		t.Errorf("slot %d, %v; want 0", slot, err)
	}
	if _, err := d.Reserve("c2", 0, func(string) error { return nil }); err == nil {
		t.Error("0 containers per shim was accepted")
	}
}

// TestVacate: a shim stays while its slot has members, and once it
// leaves, the slot's next container gets a new shim (a new group, so a
// socket address the leaving shim does not remove on its way out).
func TestVacate(t *testing.T) {
	d := Open(t.TempDir(), "addr", "ns", "shim", "")
	var first, second string
	if _, err := d.Reserve("c0", 4, func(g string) error { first = g; return nil }); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Vacate(0); err != nil || ok {
		t.Fatalf("Vacate with a member: %v, %v; want false, nil", ok, err)
	}
	if err := d.Release(0, "c0", alive); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Vacate(0); err != nil || !ok {
		t.Fatalf("Vacate when empty: %v, %v; want true, nil", ok, err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the vacated slot's directory is still there: %v", err)
	}
	if _, err := d.Reserve("c1", 4, func(g string) error { second = g; return nil }); err != nil {
		t.Fatal(err)
	}
	if slot, _ := SlotOf(second); slot != 0 || second == first {
		t.Errorf("after vacating, slot 0 got group %q (before: %q): want a new one of slot 0", second, first)
	}
}

func TestFromEnv(t *testing.T) {
	d := Open(t.TempDir(), "addr", "ns", "shim", "")
	for _, kv := range d.Env(3) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	got, slot, ok := FromEnv()
	if !ok || slot != 3 || got != d {
		t.Errorf("FromEnv() = %v, %d, %v; want %v, 3, true", got, slot, ok, d)
	}
	t.Setenv(EnvSlot, "")
	if _, _, ok := FromEnv(); ok {
		t.Error("FromEnv without a slot reports a pack")
	}
}

// TestReserveConcurrent reserves from many goroutines at once, as many
// `shim start` processes do: no slot ever holds more than the limit.
func TestReserveConcurrent(t *testing.T) {
	d := Open(t.TempDir(), "addr", "ns", "shim", "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	perSlot := map[int]int{}
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot, err := d.Reserve(fmt.Sprintf("c%d", i), 8, func(string) error { return nil })
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			perSlot[slot]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	for slot := range 7 {
		want := 8
		if slot == 6 {
			want = 2
		}
		if perSlot[slot] != want {
			t.Errorf("slot %d has %d members, want %d (all: %v)", slot, perSlot[slot], want, perSlot)
		}
	}
}

func TestSlotOf(t *testing.T) {
	for _, tc := range []struct {
		group string
		slot  int
		ok    bool
	}{
		{"berth-pack-0-1a2b3c4d", 0, true},
		{"berth-pack-12-00000000", 12, true},
		{"berth-pack-3", 0, false},
		{"berth-pack-", 0, false},
		{"berth-pack--1-1a2b3c4d", 0, false},
		{"my-pod", 0, false},
	} {
		if slot, ok := SlotOf(tc.group); slot != tc.slot || ok != tc.ok {
			t.Errorf("SlotOf(%q) = %d, %v; want %d, %v", tc.group, slot, ok, tc.slot, tc.ok)
		}
	}
}

func alive(string) bool { return true }

// TestNothingLeft: once the last shim of a namespace has left, or died
// and had its containers released by `shim delete`, no state is left.
func TestNothingLeft(t *testing.T) {
	root := t.TempDir()
	d := Open(root, "addr", "ns", "shim", "")
	nop := func(string) error { return nil }
	for _, id := range []string{"a", "b", "c"} {
		if _, err := d.Reserve(id, 2, nop); err != nil {
			t.Fatal(err)
		}
	}
	// Slot 0's shim exits normally; slot 1's dies.
	for _, id := range []string{"a", "b"} {
		if err := d.Release(0, id, alive); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := d.Vacate(0); !ok || err != nil {
		t.Fatalf("Vacate: %v, %v", ok, err)
	}
	if _, err := os.Stat(d.Path()); err != nil {
		t.Fatalf("state went while slot 1 still has a member: %v", err)
	}
	if err := d.Release(1, "c", func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	// And the next container starts from scratch.
	if slot, err := d.Reserve("d", 2, nop); err != nil || slot != 0 {
		t.Errorf("Reserve after cleanup: %d, %v", slot, err)
	}
}
