package cgroups

import "testing"

// Resolve gives what New makes for the paths that need no host lookup,
// and refuses what New refuses.
func TestResolve(t *testing.T) {
	tests := []struct {
		id, cgroupsPath string
		want            string
		wantErr         bool
	}{
		{id: "c1", cgroupsPath: "", want: "/berth/c1"},
		{id: "c1", cgroupsPath: "/kubepods/pod1/c1", want: "/kubepods/pod1/c1"},
		{id: "c1", cgroupsPath: "/a/../b//c1/", want: "/b/c1"},
		{id: "c1", cgroupsPath: "/", wantErr: true},
		{id: "c1", cgroupsPath: "../escape", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.id, tt.cgroupsPath)
		if (err != nil) != tt.wantErr || got != tt.want && !tt.wantErr {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q (error %v)", tt.id, tt.cgroupsPath, got, err, tt.want, tt.wantErr)
		}
	}
}
