package capabilities

import (
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      *specs.LinuxCapabilities
		want    map[capability.CapType]int
		wantErr string
	}{
		{name: "nil", in: nil, want: map[capability.CapType]int{}},
		{
			name: "sets",
			in:   &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"cap_kill"}},
			want: map[capability.CapType]int{capability.BOUNDING: 2, capability.EFFECTIVE: 1},
		},
		{
			name: "unknown names left out",
			in:   &specs.LinuxCapabilities{Bounding: []string{"CAP_UNKNOWN", "CAP_KILL", "UNKNOWN_CAP"}, Permitted: []string{"CAP_KIL"}},
			want: map[capability.CapType]int{capability.BOUNDING: 1, capability.PERMITTED: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, n := range tt.want {
				if len(s.caps[k]) != n {
					t.Errorf("%v: got %d caps, want %d", k, len(s.caps[k]), n)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *specs.LinuxCapabilities
		want []string
	}{
		{name: "nil", in: nil},
		{name: "all known", in: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Permitted: []string{"cap_kill"}}},
		{
			name: "unknown names once each, in order",
			in:   &specs.LinuxCapabilities{Bounding: []string{"CAP_UNKNOWN", "UNKNOWN_CAP", "CAP_KILL"}, Effective: []string{"CAP_UNKNOWN"}},
			want: []string{`ignoring unknown or unavailable capabilities: ["CAP_UNKNOWN" "UNKNOWN_CAP"]`},
		},
		{
			name: "ambient needs permitted and inheritable",
			in: &specs.LinuxCapabilities{
				Permitted: []string{"CAP_KILL", "CAP_CHOWN"}, Inheritable: []string{"CAP_KILL"},
				Ambient: []string{"CAP_KILL", "CAP_CHOWN", "CAP_SYSLOG"},
			},
			want: []string{
				"can't raise ambient capability CAP_CHOWN: it is not in both the permitted and the inheritable set",
				"can't raise ambient capability CAP_SYSLOG: it is not in both the permitted and the inheritable set",
			},
		},
		{
			name: "unknown ambient only warned as unknown",
			in:   &specs.LinuxCapabilities{Ambient: []string{"CAP_NOPE"}},
			want: []string{`ignoring unknown or unavailable capabilities: ["CAP_NOPE"]`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Warnings(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Warnings = %q\nwant %q", got, tc.want)
			}
		})
	}
}
