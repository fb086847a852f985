package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// pureV2 says the host runs the unified hierarchy only.
func pureV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupValue reads a control file of the container's cgroup, found from
// its init's /proc/<pid>/cgroup: v1File in the v1 hierarchy ctrl, or
// v2File on a pure v2 host.
func cgroupValue(t *testing.T, pid int, ctrl, v1File, v2File string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var path string
		switch {
		case pureV2() && f[0] == "0":
			path = filepath.Join("/sys/fs/cgroup", f[2], v2File)
		case !pureV2() && strings.Contains(","+f[1]+",", ","+ctrl+","):
			path = filepath.Join("/sys/fs/cgroup", ctrl, f[2], v1File)
		default:
			continue
		}
		v, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	t.Fatalf("no %s cgroup for pid %d in %q", ctrl, pid, b)
	return ""
}

func memoryLimit(t *testing.T, pid int) string {
	return cgroupValue(t, pid, "memory", "memory.limit_in_bytes", "memory.max")
}

// runSleeper starts a detached container that sleeps, with edit applied.
func runSleeper(t *testing.T, r *rt, edit func(*specs.Spec)) (string, int) {
	t.Helper()
	id := newID(t)
	r.must("run", "-d", "-b", busybox(t, edit, "sleep", "300"), id)
	return id, r.state(id).Pid
}

func TestUpdateMemoryRaiseAndLower(t *testing.T) {
	r := newRT(t)
	id, pid := runSleeper(t, r, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
	})
	if got := memoryLimit(t, pid); got != strconv.Itoa(64<<20) {
		t.Fatalf("memory limit at start %s", got)
	}
	r.must("update", "--memory", "128m", id)
	if got := memoryLimit(t, pid); got != strconv.Itoa(128<<20) {
		t.Fatalf("after update --memory 128m: %s", got)
	}
	r.must("update", "--memory", "48M", id)
	if got := memoryLimit(t, pid); got != strconv.Itoa(48<<20) {
		t.Fatalf("after update --memory 48M: %s", got)
	}
	// A later update of something else keeps the memory limit: it was
	// saved, and the merge starts from it.
	r.must("update", "--pids-limit", "30", id)
	if got := memoryLimit(t, pid); got != strconv.Itoa(48<<20) {
		t.Fatalf("after update --pids-limit: memory limit %s", got)
	}
	if got := cgroupValue(t, pid, "pids", "pids.max", "pids.max"); got != "30" {
		t.Fatalf("pids.max = %s", got)
	}
	if st := r.state(id); st.Status != "running" {
		t.Fatalf("status after updates: %s", st.Status)
	}
}

// With memory+swap set, raising needs memsw written first and lowering the
// limit first (v1); the merge must keep the pair consistent.
func TestUpdateMemoryWithSwap(t *testing.T) {
	r := newRT(t)
	id, pid := runSleeper(t, r, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
	})
	r.must("update", "--memory", "256m", "--memory-swap", "256m", id)
	if got := memoryLimit(t, pid); got != strconv.Itoa(256<<20) {
		t.Fatalf("raised: %s", got)
	}
	r.must("update", "--memory", "64m", "--memory-swap", "64m", id)
	if got := memoryLimit(t, pid); got != strconv.Itoa(64<<20) {
		t.Fatalf("lowered: %s", got)
	}
	// Memory alone above the saved memory+swap is refused by the kernel
	// (as with runc), and the limits stay as they were.
	if res := r.run("update", "--memory", "128m", id); res.code == 0 {
		t.Fatal("a memory limit above memory+swap was accepted")
	}
	if got := memoryLimit(t, pid); got != strconv.Itoa(64<<20) {
		t.Fatalf("after a failed update: %s", got)
	}
	// -1 lifts both.
	r.must("update", "--memory", "-1", id)
	if got := memoryLimit(t, pid); got != "max" && !strings.HasPrefix(got, "92233720368547") {
		t.Fatalf("after --memory -1: %s", got)
	}
}

func TestUpdateCPUQuota(t *testing.T) {
	r := newRT(t)
	id, pid := runSleeper(t, r, nil)
	quota := func() string { return cgroupValue(t, pid, "cpu", "cpu.cfs_quota_us", "cpu.max") }
	period := func() string { return cgroupValue(t, pid, "cpu", "cpu.cfs_period_us", "cpu.max") }
	r.must("update", "--cpu-quota", "20000", "--cpu-period", "100000", id)
	if pureV2() {
		if got := quota(); got != "20000 100000" {
			t.Fatalf("cpu.max = %q", got)
		}
	} else if q, p := quota(), period(); q != "20000" || p != "100000" {
		t.Fatalf("quota %s period %s", q, p)
	}
	r.must("update", "--cpu-quota", "50000", id)
	if pureV2() {
		if got := quota(); got != "50000 100000" {
			t.Fatalf("cpu.max after a quota-only update = %q", got)
		}
	} else if q, p := quota(), period(); q != "50000" || p != "100000" {
		t.Fatalf("after a quota-only update: quota %s period %s", q, p)
	}
	r.must("update", "--cpu-quota", "-1", id)
	if got := quota(); got != "-1" && !strings.HasPrefix(got, "max") {
		t.Fatalf("after --cpu-quota -1: %q", got)
	}
}

func TestUpdateResourcesFromStdin(t *testing.T) {
	r := newRT(t)
	id, pid := runSleeper(t, r, nil)
	in := filepath.Join(t.TempDir(), "res.json")
	if err := os.WriteFile(in, []byte(`{"memory":{"limit":100663296},"pids":{"limit":42}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res := r.runWith(f, nil, "update", "-r", "-", id); res.code != 0 {
		t.Fatalf("update -r -: exit %d %s", res.code, res.stderr)
	}
	if got := memoryLimit(t, pid); got != "100663296" {
		t.Fatalf("memory limit %s", got)
	}
	if got := cgroupValue(t, pid, "pids", "pids.max", "pids.max"); got != "42" {
		t.Fatalf("pids.max %s", got)
	}
	// The file form, and a typo that must not pass for an empty update.
	if err := os.WriteFile(in, []byte(`{"pids":{"limt":7}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := r.run("update", "--resources", in, id); res.code == 0 || !strings.Contains(res.stderr, "limt") {
		t.Fatalf("update -r with an unknown field: exit %d %q", res.code, res.stderr)
	}
}

func TestUpdateRefusals(t *testing.T) {
	r := newRT(t)
	id, _ := runSleeper(t, r, nil)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--l3-cache-schema", "L3:0=ff"}, "Intel RDT"},
		{[]string{"--mem-bw-schema", "MB:0=50"}, "Intel RDT"},
		{[]string{"--kernel-memory", "64m"}, "kernel memory"},
		{[]string{"--memory", "lots"}, "--memory"},
	} {
		res := r.run(append(append([]string{"update"}, tt.args...), id)...)
		if res.code == 0 || !strings.Contains(res.stderr, tt.want) {
			t.Errorf("update %v: exit %d %q, want an error about %q", tt.args, res.code, res.stderr, tt.want)
		}
	}
	if res := r.run("update", "--memory", "64m", "no-such-container"); res.code == 0 {
		t.Error("update of a missing container succeeded")
	}
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if res := r.run("update", "--memory", "64m", id); res.code == 0 || !strings.Contains(res.stderr, "not running") {
		t.Errorf("update of a stopped container: exit %d %q", res.code, res.stderr)
	}
}

// statsEvent is the part of an events line the tests look at.
type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
				Limit uint64 `json:"limit"`
			} `json:"usage"`
			Raw map[string]uint64 `json:"raw"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
		} `json:"pids"`
		Hugetlb  map[string]any `json:"hugetlb"`
		IntelRdt map[string]any `json:"intel_rdt"`
	} `json:"data"`
}

func TestEventsStats(t *testing.T) {
	r := newRT(t)
	id, _ := runSleeper(t, r, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
	})
	out := r.must("events", "--stats", id)
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("events --stats printed %q, want one line", out)
	}
	var e statsEvent
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("events --stats: %v in %q", err, out)
	}
	if e.Type != "stats" || e.ID != id || e.Data == nil {
		t.Fatalf("event %+v", e)
	}
	d := e.Data
	if d.CPU.Usage.Total == 0 || d.Memory.Usage.Usage == 0 || d.Memory.Usage.Limit != 64<<20 || d.Pids.Current < 1 ||
		len(d.Memory.Raw) == 0 || d.Hugetlb == nil || d.IntelRdt == nil {
		t.Fatalf("stats: %s", out)
	}
	// runc's exact names for the parts that tools read.
	for _, key := range []string{`"cpu":{"usage":{"total":`, `"memory":{`, `"pids":{"current":`, `"blkio":`, `"cpuset":`, `"network_interfaces":null`} {
		if !strings.Contains(out, key) {
			t.Errorf("no %s in %s", key, out)
		}
	}
}

func TestEventsRefusals(t *testing.T) {
	r := newRT(t)
	id, _ := runSleeper(t, r, nil)
	if res := r.run("events", "--interval", "0s", id); res.code == 0 {
		t.Error("events --interval 0s succeeded")
	}
	r.must("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if res := r.run("events", "--stats", id); res.code == 0 || !strings.Contains(res.stderr, "not running") {
		t.Errorf("events of a stopped container: exit %d %q", res.code, res.stderr)
	}
}

// startEvents runs `events` in the background; wait returns its output once
// it has exited by itself.
func startEvents(t *testing.T, r *rt, args ...string) (wait func() ([]string, int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	out := tempFile(t)
	cmd := exec.CommandContext(ctx, runtimeBin, append([]string{"--root", r.root, "events"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() ([]string, int) {
		defer cancel()
		cmd.Wait()
		if ctx.Err() != nil {
			t.Fatal("events did not exit within a minute of the container stopping")
		}
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(readAll(out)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		return lines, cmd.ProcessState.ExitCode()
	}
}

// The container OOMs a second after it starts; events, started before,
// reports stats, then the OOM, and exits when the container stops.
func TestEventsOOM(t *testing.T) {
	r := newRT(t)
	id := newID(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
	}, "sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=128M count=1")
	r.must("run", "-d", "-b", b, id)
	wait := startEvents(t, r, "--interval", "300ms", id)
	lines, code := wait()
	if code != 0 {
		t.Fatalf("events exited %d: %q", code, lines)
	}
	ooms, stats := 0, 0
	for _, l := range lines {
		var e statsEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.ID != id {
			t.Fatalf("bad event line %q: %v", l, err)
		}
		switch e.Type {
		case "oom":
			if l != `{"type":"oom","id":"`+id+`"}` {
				t.Errorf("oom event %q", l)
			}
			ooms++
		case "stats":
			stats++
		}
	}
	if ooms == 0 || stats == 0 {
		t.Fatalf("%d oom and %d stats events in %q; want both", ooms, stats, lines)
	}
}

func TestFeatures(t *testing.T) {
	r := newRT(t)
	out := r.must("features")
	d := json.NewDecoder(strings.NewReader(out))
	d.DisallowUnknownFields()
	var f features.Features
	if err := d.Decode(&f); err != nil {
		t.Fatalf("features output is not a features.Features: %v\n%s", err, out)
	}
	if f.OCIVersionMin == "" || f.Linux == nil || f.Linux.Cgroup == nil || !*f.Linux.Cgroup.V1 || !*f.Linux.Cgroup.V2 ||
		len(f.Linux.Namespaces) == 0 || len(f.Hooks) != 6 || len(f.MountOptions) == 0 {
		t.Fatalf("features: %s", out)
	}
}
