package libcontainer

import (
	"slices"
	"testing"
)

func TestPrepareEnv(t *testing.T) {
	home := func() string { return "/root" }
	for _, tc := range []struct {
		name    string
		env     []string
		want    []string
		wantErr bool
	}{
		{name: "home filled when unset", env: []string{"PATH=/bin"}, want: []string{"PATH=/bin", "HOME=/root"}},
		{name: "nil env gets home", env: nil, want: []string{"HOME=/root"}},
		{name: "non-empty home kept", env: []string{"HOME=/override", "A=b"}, want: []string{"HOME=/override", "A=b"}},
		{name: "empty home filled", env: []string{"HOME=", "PATH=/bin"}, want: []string{"PATH=/bin", "HOME=/root"}},
		{name: "last home empty wins over earlier", env: []string{"HOME=/override", "HOME="}, want: []string{"HOME=/root"}},
		{name: "last of duplicates wins at its place", env: []string{"ONE=two", "PATH=/bin", "ONE=three"}, want: []string{"PATH=/bin", "ONE=three", "HOME=/root"}},
		{name: "empty value overrides", env: []string{"ONE=two", "ONE=", "HOME=/h"}, want: []string{"ONE=", "HOME=/h"}},
		{name: "value with newline and equals", env: []string{"NL=\n", "EQ=a=b"}, want: []string{"NL=\n", "EQ=a=b", "HOME=/root"}},
		{name: "missing equals refused", env: []string{"NOEQUALS"}, wantErr: true},
		{name: "empty name refused", env: []string{"=x"}, wantErr: true},
		{name: "nul byte refused", env: []string{"A=b\x00c"}, wantErr: true},
		{name: "nul byte in an overridden entry is dropped with it", env: []string{"A=b\x00c", "A=ok"}, want: []string{"A=ok", "HOME=/root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := prepareEnv(tc.env, home)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("prepareEnv(%q) = %q, want an error", tc.env, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("prepareEnv(%q): %v", tc.env, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("prepareEnv(%q) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}
