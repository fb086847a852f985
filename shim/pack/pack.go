// Package pack shares shim processes between containers that ask for no
// shim group of their own.
//
// containerd's runc shim runs one process per container unless the
// containers share a group (a pod's sandbox id): twenty containers, twenty
// Go processes of a few MiB each, almost all of it the same runtime and
// libraries over again. Berth's shim serves containers in-process, so one
// process can serve several: ungrouped containers of a namespace are
// packed into shared shims, up to a limit per shim (Options
// ContainersPerShim; 1 gives every container a shim of its own again).
// The limit bounds what one shim's failure takes down with it.
//
// The shims of a namespace are numbered slots. A slot's members are files
// in its directory, one per container, written by `shim start` before
// containerd is told the address and removed when the container is
// deleted (by the shim, or by `shim delete` after the shim died). All of
// it happens under one lock per namespace, and a shim decides to exit
// under that lock too, only when its slot has no members: so a container
// is never handed the address of a shim that is on its way out. Each shim
// a slot gets has a group name (so a socket address) of its own: the one
// leaving removes its socket as it exits, and must not remove its
// successor's.
package pack

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// groupPrefix starts the group name of a slot's shim:
// "berth-pack-3-1a2b3c4d" for slot 3.
const groupPrefix = "berth-pack-"

// Env names the variables that tell a shim process which slot it serves.
const (
	EnvDir  = "BERTH_SHIM_PACK_DIR"
	EnvSlot = "BERTH_SHIM_PACK_SLOT"
)

// Dir is the packing state of one containerd (by address) and namespace.
type Dir struct{ path string }

// Open returns the packing state of the shim binary for containerd at
// address, namespace ns, and the shim options key, kept under socketDir
// (containerd's shim socket directory, a tmpfs that a reboot empties
// along with the shims). The binary is part of the key: two builds of the
// shim, configured as two runtimes, never serve each other's containers.
// So is options, the runtime options that shape a shim process (its
// cgroup, how many it serves, how long it lingers): a container never
// joins a shim started with options other than its own.
func Open(socketDir, address, ns, binary, options string) Dir {
	sum := sha256.Sum256([]byte(binary + "\x00" + address + "\x00" + ns + "\x00" + options))
	return Dir{filepath.Join(socketDir, "berth-pack-"+hex.EncodeToString(sum[:8]))}
}

// At is the packing state kept at path (a Dir's Path).
func At(path string) Dir { return Dir{path} }

// Path is where the state lives.
func (d Dir) Path() string { return d.path }

// newGroup names a new shim for slot.
func newGroup(slot int) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("shim pack: %w", err)
	}
	return groupPrefix + strconv.Itoa(slot) + "-" + hex.EncodeToString(b[:]), nil
}

// SlotOf returns the slot of a shim group name, if it is a packed one.
func SlotOf(group string) (int, bool) {
	rest, ok := strings.CutPrefix(group, groupPrefix)
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	slot, err := strconv.Atoi(n)
	if err != nil || slot < 0 {
		return 0, false
	}
	return slot, true
}

// Reserve makes id a member of the first slot with fewer than perShim
// members and calls bind with that slot's group name, all under the
// lock; bind must find or start the group's shim before it returns. If
// bind fails, id's membership is undone.
func (d Dir) Reserve(id string, perShim int, bind func(group string) error) (slot int, err error) {
	if perShim < 1 {
		return 0, fmt.Errorf("containers per shim must be at least 1, not %d", perShim)
	}
	unlock, err := d.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	for slot = 0; ; slot++ {
		members, err := d.members(slot)
		if err != nil {
			return 0, err
		}
		if len(members) < perShim {
			break
		}
	}
	sd := d.slotDir(slot)
	if err := os.MkdirAll(sd, 0o711); err != nil {
		return 0, fmt.Errorf("shim pack: %w", err)
	}
	member := filepath.Join(sd, id)
	if err := os.WriteFile(member, nil, 0o600); err != nil {
		return 0, fmt.Errorf("shim pack: %w", err)
	}
	group, err := d.group(slot)
	if err == nil {
		err = bind(group)
	}
	if err != nil {
		os.Remove(member)
		return 0, err
	}
	return slot, nil
}

// group is the group name of slot's shim, made on first use.
func (d Dir) group(slot int) (string, error) {
	file := d.groupFile(slot)
	b, err := os.ReadFile(file)
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("shim pack: %w", err)
	}
	group, err := newGroup(slot)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(group), 0o600); err != nil {
		return "", fmt.Errorf("shim pack: %w", err)
	}
	return group, nil
}

// Release ends id's membership of slot; releasing twice is fine. When
// the slot is left empty and its shim is gone (alive reports on the
// slot's group), the slot is forgotten: `shim delete` after a shim died.
func (d Dir) Release(slot int, id string, alive func(group string) bool) error {
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(filepath.Join(d.slotDir(slot), id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shim pack: %w", err)
	}
	if members, err := d.members(slot); err != nil || len(members) > 0 {
		return err
	}
	if b, err := os.ReadFile(d.groupFile(slot)); err == nil && alive(string(b)) {
		return nil // the shim leaves when containerd shuts it down
	}
	return d.forget(slot)
}

// Vacate is a shim's decision to exit: if slot has no members, it
// forgets the shim's group, so that the next container gets a new shim,
// and reports true; otherwise a container is on its way to this shim, and
// the shim must stay.
func (d Dir) Vacate(slot int) (bool, error) {
	unlock, err := d.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	members, err := d.members(slot)
	if err != nil || len(members) > 0 {
		return false, err
	}
	return true, d.forget(slot)
}

// forget removes slot's group and directory, and the whole state when no
// slot is left, so that nothing stays behind once a namespace's shims are
// gone. Called under the lock; lock copes with its file going.
func (d Dir) forget(slot int) error {
	if err := os.Remove(d.groupFile(slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shim pack: %w", err)
	}
	if err := os.Remove(d.slotDir(slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shim pack: %w", err)
	}
	names, err := readDirNames(d.path)
	if err != nil || len(names) != 1 {
		return nil // other slots, or already gone: nothing more to do
	}
	if err := os.Remove(d.lockFile()); err != nil {
		return fmt.Errorf("shim pack: %w", err)
	}
	os.Remove(d.path)
	return nil
}

// FromEnv returns the slot a shim process serves, from the environment
// Start gave it; ok is false for a shim of a group.
func FromEnv() (d Dir, slot int, ok bool) {
	dir := os.Getenv(EnvDir)
	slot, err := strconv.Atoi(os.Getenv(EnvSlot))
	if dir == "" || err != nil {
		return Dir{}, 0, false
	}
	return Dir{dir}, slot, true
}

// Env is the environment that tells a shim process it serves slot.
func (d Dir) Env(slot int) []string {
	return []string{EnvDir + "=" + d.path, EnvSlot + "=" + strconv.Itoa(slot)}
}

func (d Dir) slotDir(slot int) string { return filepath.Join(d.path, strconv.Itoa(slot)) }

func (d Dir) groupFile(slot int) string { return filepath.Join(d.path, strconv.Itoa(slot)+".group") }

func (d Dir) members(slot int) ([]string, error) {
	names, err := readDirNames(d.slotDir(slot))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shim pack: %w", err)
	}
	return names, nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d Dir) lockFile() string { return filepath.Join(d.path, "lock") }

// lock takes the namespace's lock: flock on a file, which the kernel
// releases if the holder dies. The file is removed with the state (forget)
// while others may wait on it: a waiter that then holds a lock on a file
// no longer at the path starts over.
func (d Dir) lock() (func(), error) {
	for {
		if err := os.MkdirAll(d.path, 0o711); err != nil {
			return nil, fmt.Errorf("shim pack: %w", err)
		}
		f, err := os.OpenFile(d.lockFile(), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("shim pack: %w", err)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("shim pack: lock %s: %w", f.Name(), err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(d.lockFile(), &now) == nil &&
			held.Dev == now.Dev && held.Ino == now.Ino {
			return func() { f.Close() }, nil
		}
		f.Close()
	}
}
