package libcontainer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func updPtr[T any](v T) *T { return &v }

func TestMergeResources(t *testing.T) {
	dev := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: updPtr(int64(1)), Minor: updPtr(int64(3)), Access: "rwm"}
	throttle := func(rate uint64) []specs.LinuxThrottleDevice {
		return []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254}, Rate: rate}}
	}
	cur := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{dev},
		Memory:  &specs.LinuxMemory{Limit: updPtr(int64(64 << 20)), Swap: updPtr(int64(128 << 20)), Reservation: updPtr(int64(32 << 20))},
		CPU:     &specs.LinuxCPU{Shares: updPtr(uint64(512)), Quota: updPtr(int64(50000)), Period: updPtr(uint64(100000)), Cpus: "0-1"},
		Pids:    &specs.LinuxPids{Limit: updPtr(int64(50))},
		BlockIO: &specs.LinuxBlockIO{Weight: updPtr(uint16(300)), ThrottleReadBpsDevice: throttle(1 << 20)},
		Unified: map[string]string{"memory.high": "1000", "pids.max": "10"},
	}
	tests := []struct {
		name string
		cur  *specs.LinuxResources
		upd  *specs.LinuxResources
		want func(r *specs.LinuxResources) // edits a copy of cur into the expected result
	}{
		{name: "empty update changes nothing", cur: cur, upd: &specs.LinuxResources{}, want: func(*specs.LinuxResources) {}},
		{name: "only the memory limit", cur: cur, upd: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: updPtr(int64(256 << 20))}},
			want: func(r *specs.LinuxResources) { r.Memory.Limit = updPtr(int64(256 << 20)) }},
		{name: "quota keeps period and shares", cur: cur, upd: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: updPtr(int64(20000))}},
			want: func(r *specs.LinuxResources) { r.CPU.Quota = updPtr(int64(20000)) }},
		{name: "zero is a value", cur: cur, upd: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: updPtr(int64(0))}},
			want: func(r *specs.LinuxResources) { r.Pids.Limit = updPtr(int64(0)) }},
		{name: "unlimited memory lifts swap", cur: cur, upd: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: updPtr(int64(-1))}},
			want: func(r *specs.LinuxResources) { r.Memory.Limit, r.Memory.Swap = updPtr(int64(-1)), updPtr(int64(-1)) }},
		{name: "unlimited memory with a swap value keeps it", cur: cur,
			upd:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: updPtr(int64(-1)), Swap: updPtr(int64(1 << 30))}},
			want: func(r *specs.LinuxResources) { r.Memory.Limit, r.Memory.Swap = updPtr(int64(-1)), updPtr(int64(1<<30)) }},
		{name: "arrays are replaced whole", cur: cur, upd: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: throttle(42)}},
			want: func(r *specs.LinuxResources) { r.BlockIO.ThrottleReadBpsDevice = throttle(42) }},
		{name: "maps merge by key", cur: cur, upd: &specs.LinuxResources{Unified: map[string]string{"memory.high": "2000", "cpu.weight": "50"}},
			want: func(r *specs.LinuxResources) {
				r.Unified = map[string]string{"memory.high": "2000", "pids.max": "10", "cpu.weight": "50"}
			}},
		{name: "devices are never updated", cur: cur, upd: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			want: func(*specs.LinuxResources) {}},
		{name: "cpuset strings", cur: cur, upd: &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1", Mems: "0"}},
			want: func(r *specs.LinuxResources) { r.CPU.Cpus, r.CPU.Mems = "1", "0" }},
		{name: "no resources yet", cur: nil, upd: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: updPtr(int64(7))}},
			want: func(r *specs.LinuxResources) {
				*r = specs.LinuxResources{Pids: &specs.LinuxPids{Limit: updPtr(int64(7))}}
			}},
		{name: "limits near 2^63 survive", cur: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: updPtr(int64(9223372036854771712))}},
			upd:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Reservation: updPtr(int64(9223372036854775807))}},
			want: func(r *specs.LinuxResources) { r.Memory.Reservation = updPtr(int64(9223372036854775807)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want specs.LinuxResources
			if tt.cur != nil {
				b, _ := json.Marshal(tt.cur)
				json.Unmarshal(b, &want)
			}
			tt.want(&want)
			before, _ := json.Marshal(tt.cur)
			got, err := mergeResources(tt.cur, tt.upd)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("merged:\n got %s\nwant %s", g, w)
			}
			if after, _ := json.Marshal(tt.cur); string(after) != string(before) {
				t.Error("the current resources were modified")
			}
		})
	}
}

func TestCheckUpdatable(t *testing.T) {
	if err := checkUpdatable(&specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: updPtr(int64(1 << 20))}}); err == nil { //nolint:staticcheck // testing the refusal
		t.Error("a kernel memory limit was accepted")
	}
	if err := checkUpdatable(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: updPtr(int64(1 << 20))}}); err != nil {
		t.Error(err)
	}
}

// saveResources replaces linux.resources and keeps the rest of the config.
func TestSaveResources(t *testing.T) {
	dir := t.TempDir()
	orig := `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},` +
		`"linux":{"namespaces":[{"type":"pid"}],"resources":{"pids":{"limit":5}},"maskedPaths":["/proc/kcore"]},"annotations":{"a":"b"}}`
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Container{dir: dir, state: &State{ID: "c1"}}
	if err := c.saveResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: updPtr(int64(9))}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if *s.Linux.Resources.Pids.Limit != 9 || len(s.Linux.Namespaces) != 1 || s.Linux.MaskedPaths[0] != "/proc/kcore" ||
		s.Annotations["a"] != "b" || s.Process.Args[0] != "sh" || s.Version != "1.0.2" {
		t.Errorf("config after save: %+v", s)
	}
	if fi, err := os.Stat(filepath.Join(dir, configFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode: %v %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
