package cgroups

import (
	"maps"
	"strings"
	"testing"
)

func TestParseSubCgroups(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: nil, want: nil},
		{in: []string{"sub"}, want: map[string]string{"": "sub"}},
		{in: []string{"/"}, want: map[string]string{"": "/"}},
		{in: []string{"memory:submem", "cpu,cpuacct:subcpu"}, want: map[string]string{"memory": "submem", "cpu": "subcpu", "cpuacct": "subcpu"}},
		{in: []string{"all", "memory:m"}, want: map[string]string{"": "all", "memory": "m"}},
		{in: []string{"memory:"}, wantErr: "no sub-cgroup path"},
		{in: []string{"memory:a", "memory:b"}, wantErr: "controller memory given twice"},
		{in: []string{"a", "b"}, wantErr: "every controller given twice"},
	} {
		got, err := ParseSubCgroups(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSubCgroups(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("ParseSubCgroups(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestSubDir(t *testing.T) {
	const base = "/sys/fs/cgroup/memory/ct"
	for _, tc := range []struct {
		sub, want string
	}{
		{"", base},
		{"/", base},
		{"foo", base + "/foo"},
		{"/foo/bar", base + "/foo/bar"},
		{"foo/../bar", base + "/bar"},
		{"..", ""},
		{"../ct-sibling", ""},
		{"foo/../../x", ""},
	} {
		got, err := subDir(base, tc.sub)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "bad sub cgroup path") {
				t.Errorf("subDir(%q) = %q, %v; want bad sub cgroup path", tc.sub, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("subDir(%q) = %q, %v; want %q", tc.sub, got, err, tc.want)
		}
	}
}
