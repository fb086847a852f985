package cgroups

import (
	"testing"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeCpuset records the Updates that reach the library's subsystem.
type fakeCpuset struct{ updates *int }

func (fakeCpuset) Name() cgroup1.Name                           { return cgroup1.Cpuset }
func (fakeCpuset) Path(path string) string                      { return path }
func (fakeCpuset) Create(string, *specs.LinuxResources) error   { return nil }
func (f fakeCpuset) Update(string, *specs.LinuxResources) error { *f.updates++; return nil }

// An update reaches the library's cpuset subsystem (which walks up the
// tree again) only when it sets cpus or mems.
func TestCpusetUpdates(t *testing.T) {
	shares := uint64(512)
	for _, tc := range []struct {
		name string
		res  *specs.LinuxResources
		want int
	}{
		{"no resources", nil, 0},
		{"no cpu section", &specs.LinuxResources{}, 0},
		{"cpu shares only", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}, 0},
		{"cpus", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0"}}, 1},
		{"mems", &specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "0"}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			if err := (cpusetUpdates{fakeCpuset{&n}}).Update("/c", tc.res); err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("%d updates reached the library, want %d", n, tc.want)
			}
		})
	}
}
