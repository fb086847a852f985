package libcontainer

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCgroupResources(t *testing.T) {
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	loopControl := specs.LinuxDevice{Path: "/dev/loop-control", Type: "c", Major: 10, Minor: 237}
	for _, tc := range []struct {
		name      string
		linux     specs.Linux
		wantRules []specs.LinuxDeviceCgroup // before the defaults
		wantPids  *int64
	}{
		{
			name:      "a listed device gets no rule of its own",
			linux:     specs.Linux{Devices: []specs.LinuxDevice{loopControl}, Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{denyAll}}},
			wantRules: []specs.LinuxDeviceCgroup{denyAll},
		},
		{
			name:  "no resources: only the defaults",
			linux: specs.Linux{Devices: []specs.LinuxDevice{loopControl}},
		},
		{
			name:     "pids limit 0 is 1",
			linux:    specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}},
			wantPids: i64(1),
		},
		{
			name:     "pids limit -1 stays unlimited",
			linux:    specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}},
			wantPids: i64(-1),
		},
		{
			name:     "pids limit 5 stays",
			linux:    specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}}},
			wantPids: i64(5),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, atReady := cgroupResources(&tc.linux)
			want := append(append([]specs.LinuxDeviceCgroup(nil), tc.wantRules...), defaultDeviceRules...)
			if len(res.Devices) != len(want) {
				t.Fatalf("device rules %+v, want %+v", res.Devices, want)
			}
			for i := range want {
				if !sameRule(res.Devices[i], want[i]) {
					t.Errorf("device rule %d: %+v, want %+v", i, res.Devices[i], want[i])
				}
			}
			if res.Pids != nil {
				t.Errorf("pids %+v set before init is ready", res.Pids)
			}
			switch {
			case tc.wantPids == nil && atReady != nil:
				t.Errorf("resources once ready %+v, want none", atReady)
			case tc.wantPids != nil && (atReady == nil || atReady.Pids == nil || *atReady.Pids.Limit != *tc.wantPids):
				t.Errorf("resources once ready %+v, want pids limit %d", atReady, *tc.wantPids)
			case atReady != nil && (atReady.Devices != nil || atReady.Memory != nil || atReady.CPU != nil):
				t.Errorf("resources once ready %+v hold more than pids", atReady)
			}
		})
	}
	// The spec itself is left as it was.
	l := specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}}
	cgroupResources(&l)
	if *l.Resources.Pids.Limit != 0 || l.Resources.Devices != nil {
		t.Errorf("the spec was changed: %+v", l.Resources)
	}
}

func sameRule(a, b specs.LinuxDeviceCgroup) bool {
	eq := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Allow == b.Allow && a.Type == b.Type && a.Access == b.Access && eq(a.Major, b.Major) && eq(a.Minor, b.Minor)
}
