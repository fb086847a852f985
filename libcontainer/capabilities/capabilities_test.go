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
		{name: "typo", in: &specs.LinuxCapabilities{Permitted: []string{"CAP_KIL"}}, wantErr: `unknown capability "CAP_KIL"`},
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
