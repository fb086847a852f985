package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	containerd "github.com/containerd/containerd/v2/client"
)

// TestBerthVolumes drives `berth volume` as a user would: create (named,
// idempotent, with labels; a bad name refused), ls with its filters,
// inspect, rm refused while a container uses the volume, prune of the
// anonymous ones only unless -a.
func TestBerthVolumes(t *testing.T) {
	b, dir := newManagedBerth(t)
	t.Cleanup(func() { b.run("system", "stop") })

	if res := b.mustRun("volume", "create", "--label", "tier=db", "data"); res.stdout != "data\n" {
		t.Fatalf("volume create data: %q", res.stdout)
	}
	b.mustRun("volume", "create", "data") // again: the same volume
	anon := strings.TrimSpace(b.mustRun("volume", "create").stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Fatalf("anonymous volume name %q", anon)
	}
	if res := b.run("volume", "create", "../x"); res.code != 125 || !strings.Contains(res.stderr, "a name is 2 or more of") {
		t.Fatalf("bad name: exit %d, stderr %q", res.code, res.stderr)
	}

	res := b.mustRun("volume", "ls")
	// Sorted by name: the random anonymous name may come before or after.
	rows := []string{`local +` + anon, `local +data`}
	if anon > "data" {
		rows[0], rows[1] = rows[1], rows[0]
	}
	if !regexp.MustCompile(`(?m)^DRIVER +VOLUME NAME\n` + rows[0] + `\n` + rows[1] + `\n$`).MatchString(res.stdout) {
		t.Fatalf("volume ls:\n%s", res.stdout)
	}
	if res := b.mustRun("volume", "ls", "-q", "--filter", "label=tier=db"); res.stdout != "data\n" {
		t.Fatalf("volume ls -q --filter label=tier=db: %q", res.stdout)
	}

	var inspected []struct {
		Name, Driver, Mountpoint, Scope string
		Labels                          map[string]string
	}
	res = b.mustRun("volume", "inspect", "data")
	if err := json.Unmarshal([]byte(res.stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("volume inspect: %v\n%s", err, res.stdout)
	}
	v := inspected[0]
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Labels["tier"] != "db" ||
		v.Mountpoint != filepath.Join(dir, "data", "volumes", "data", "_data") {
		t.Fatalf("volume inspect: %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint %s: %v", v.Mountpoint, err)
	}
	if res := b.run("volume", "inspect", "nosuch"); res.code == 0 || !strings.Contains(res.stderr, "no such volume") {
		t.Fatalf("inspect of a missing volume: exit %d, stderr %q", res.code, res.stderr)
	}

	// A container that mounts "data" keeps it.
	client, err := containerd.New(filepath.Join(dir, "st", "c.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "default")
	_, err = client.ContainerService().Create(ctx, containers.Container{
		ID: "uses-data", Runtime: containers.RuntimeInfo{Name: "io.containerd.berth.v2"},
		Labels: map[string]string{"berth/volumes": "data"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.ContainerService().Delete(ctx, "uses-data") })
	if res := b.run("volume", "rm", "data"); res.code == 0 || !strings.Contains(res.stderr, "volume is in use - [uses-data]") {
		t.Fatalf("rm of a volume in use: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.mustRun("volume", "ls", "-q", "--filter", "dangling=true"); res.stdout != anon+"\n" {
		t.Fatalf("volume ls dangling=true: %q", res.stdout)
	}

	res = b.mustRun("volume", "prune", "-f")
	if !strings.Contains(res.stdout, "Deleted Volumes:\n"+anon+"\n") {
		t.Fatalf("volume prune -f:\n%s", res.stdout)
	}
	if res := b.mustRun("volume", "ls", "-q"); res.stdout != "data\n" {
		t.Fatalf("after prune: %q, want data (named, in use)", res.stdout)
	}
	if err := client.ContainerService().Delete(ctx, "uses-data"); err != nil {
		t.Fatal(err)
	}
	if res := b.run("volume", "rm", "data", "nosuch"); res.code != 125 || res.stdout != "data\n" || !strings.Contains(res.stderr, "nosuch: not found: no such volume") {
		t.Fatalf("volume rm data nosuch: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	b.mustRun("volume", "rm", "-f", "nosuch")
	if _, err := os.Stat(v.Mountpoint); !os.IsNotExist(err) {
		t.Fatalf("volume data left after rm: %v", err)
	}
}

// TestBerthRunVolumes shows volumes in `berth run` as a docker user sees
// them: a named volume made by -v and seen by a second container, :ro
// and --mount readonly refusing writes, a relative -v refused, the
// image's VOLUME getting an anonymous volume with the image's content,
// a new named volume getting it too (not with nocopy), inspect's .Mounts,
// `volume rm` refusing a volume in use, and rm -v / run --rm removing
// anonymous volumes but not named ones.
func TestBerthRunVolumes(t *testing.T) {
	b, dir := newBerthWithBusybox(t)
	volumesDir := filepath.Join(dir, "data", "volumes")

	b.mustRun("run", "--rm", "-v", "shared:/data", busyboxRef, "sh", "-c", "echo hi > /data/f")
	if res := b.mustRun("volume", "ls", "-q"); res.stdout != "shared\n" {
		t.Fatalf("volume ls after run -v shared:/data: %q, want the named volume, kept by --rm", res.stdout)
	}
	if res := b.mustRun("run", "--rm", "-v", "shared:/data", busyboxRef, "cat", "/data/f"); res.stdout != "hi\n" {
		t.Fatalf("a second container read %q from the volume, want hi", res.stdout)
	}
	if res := b.run("run", "--rm", "-v", "shared:/data:ro", busyboxRef, "sh", "-c", "echo x > /data/g"); res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
		t.Fatalf("write to a :ro volume: exit %d, stderr %q", res.code, res.stderr)
	}
	res := b.run("run", "--rm", "--mount", "type=volume,source=shared,target=/m,readonly", busyboxRef, "sh", "-c", "cat /m/f; touch /m/g")
	if res.code == 0 || res.stdout != "hi\n" || !strings.Contains(res.stderr, "Read-only file system") {
		t.Fatalf("--mount readonly volume: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if res := b.run("run", "--rm", "-v", "./data:/data", busyboxRef, "true"); res.code != 125 || !strings.Contains(res.stderr, "give its absolute path") {
		t.Fatalf("run -v ./data:/data: exit %d, stderr %q, want 125 asking for an absolute path", res.code, res.stderr)
	}

	// An image with content at its VOLUME path.
	b.mustRun("run", "--name", "seed", busyboxRef, "sh", "-c", "mkdir /data && echo seeded > /data/seed")
	b.mustRun("commit", "-c", "VOLUME /data", "seed", "berthtest/withvol")
	b.mustRun("rm", "seed")

	if res := b.mustRun("run", "--name", "anon", "berthtest/withvol", "cat", "/data/seed"); res.stdout != "seeded\n" {
		t.Fatalf("the image's VOLUME: read %q, want the image's content copied into it", res.stdout)
	}
	var mounts []map[string]any
	res = b.mustRun("inspect", "-f", "{{json .Mounts}}", "anon")
	if err := json.Unmarshal([]byte(res.stdout), &mounts); err != nil || len(mounts) != 1 {
		t.Fatalf("inspect .Mounts: %v\n%s", err, res.stdout)
	}
	anon, _ := mounts[0]["Name"].(string)
	want := map[string]any{"Type": "volume", "Name": anon, "Source": filepath.Join(volumesDir, anon, "_data"), "Destination": "/data",
		"Driver": "local", "Mode": "", "RW": true, "Propagation": ""}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) || !reflect.DeepEqual(mounts[0], want) {
		t.Fatalf("inspect .Mounts: %s, want %v", res.stdout, want)
	}
	if res := b.run("volume", "rm", anon); res.code != 125 || !strings.Contains(res.stderr, "volume is in use") {
		t.Fatalf("volume rm of the container's anonymous volume: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.mustRun("volume", "ls", "-q", "--filter", "dangling=true"); res.stdout != "shared\n" {
		t.Fatalf("volume ls dangling=true: %q, want only shared (the anonymous one is in use)", res.stdout)
	}
	b.mustRun("rm", "-v", "anon")
	if _, err := os.Stat(filepath.Join(volumesDir, anon)); !os.IsNotExist(err) {
		t.Fatalf("rm -v left the anonymous volume: %v", err)
	}

	// rm -v keeps named volumes.
	b.mustRun("create", "--name", "named", "-v", "shared:/data", busyboxRef)
	b.mustRun("rm", "-v", "named")
	if _, err := os.Stat(filepath.Join(volumesDir, "shared", "_data", "f")); err != nil {
		t.Fatalf("rm -v removed the named volume: %v", err)
	}

	// rm without -v keeps the anonymous volume; run --rm removes it.
	b.mustRun("create", "--name", "keep", "-v", "/other", busyboxRef)
	b.mustRun("rm", "keep")
	kept := strings.Fields(b.mustRun("volume", "ls", "-q", "--filter", "dangling=true").stdout)
	if len(kept) != 2 {
		t.Fatalf("after rm without -v: dangling volumes %v, want shared and the anonymous one", kept)
	}
	b.mustRun("run", "--rm", "-v", "/scratch", "berthtest/withvol", "true")
	if res := b.mustRun("volume", "ls", "-q", "--filter", "dangling=true"); len(strings.Fields(res.stdout)) != 2 {
		t.Fatalf("run --rm left anonymous volumes: %q", res.stdout)
	}

	// run -d --rm: the restart monitor removes the container and its
	// anonymous volume when it exits.
	id := strings.TrimSpace(b.mustRun("run", "-d", "--rm", "-v", "/gone", busyboxRef, "true").stdout)
	deadline := time.Now().Add(10 * time.Second)
	for {
		gone := b.run("inspect", id).code != 0
		dangling := strings.Fields(b.mustRun("volume", "ls", "-q", "--filter", "dangling=true").stdout)
		if gone && len(dangling) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run -d --rm: container gone %v, dangling volumes %v; want the container and its anonymous volume removed", gone, dangling)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A new named volume gets the image's content, unless nocopy.
	if res := b.mustRun("run", "--rm", "-v", "fresh:/data", "berthtest/withvol", "cat", "/data/seed"); res.stdout != "seeded\n" {
		t.Fatalf("a new named volume: read %q, want the image's content", res.stdout)
	}
	if res := b.mustRun("run", "--rm", "--mount", "type=volume,source=bare,target=/data,volume-nocopy", "berthtest/withvol", "ls", "-A", "/data"); res.stdout != "" {
		t.Fatalf("volume-nocopy: %q in the volume, want nothing", res.stdout)
	}
	// A volume with content keeps it: shared's file, not the image's.
	if res := b.mustRun("run", "--rm", "-v", "shared:/data", "berthtest/withvol", "ls", "/data"); res.stdout != "f\n" {
		t.Fatalf("a volume with content: %q, want its own file only", res.stdout)
	}
}
