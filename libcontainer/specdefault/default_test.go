package specdefault

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestForHost(t *testing.T) {
	for _, tc := range []struct {
		unified  bool
		cgroupNS bool
	}{
		{unified: true, cgroupNS: true},
		{unified: false, cgroupNS: false},
	} {
		s := ForHost(tc.unified)
		got := false
		for _, n := range s.Linux.Namespaces {
			if n.Type == specs.CgroupNamespace {
				got = true
			}
		}
		if got != tc.cgroupNS || len(s.Linux.Namespaces) < 5 {
			t.Errorf("ForHost(%v): namespaces %v, cgroup namespace %v, want %v", tc.unified, s.Linux.Namespaces, got, tc.cgroupNS)
		}
	}
	// Each call is a fresh spec: ForHost(false) does not change Spec's.
	ForHost(false)
	if n := len(Spec().Linux.Namespaces); n != 6 {
		t.Errorf("Spec has %d namespaces after ForHost(false), want 6", n)
	}
}
