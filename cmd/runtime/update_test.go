package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
)

// convert parses args as `update` flags and converts them.
func convert(t *testing.T, stdin string, args ...string) (*specs.LinuxResources, string, error) {
	t.Helper()
	fs := pflag.NewFlagSet("update", pflag.ContinueOnError)
	f := &updateFlags{}
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	var warn bytes.Buffer
	res, err := f.toResources(fs, strings.NewReader(stdin), &warn)
	return res, warn.String(), err
}

func TestUpdateFlagsToResources(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    string // the resources as JSON
		wantErr string
		warn    string
	}{
		{name: "nothing", want: `{}`},
		{name: "memory with units", args: []string{"--memory", "100m", "--memory-swap", "1g", "--memory-reservation", "512k"},
			want: `{"memory":{"limit":104857600,"reservation":524288,"swap":1073741824}}`},
		{name: "plain bytes and unlimited", args: []string{"--memory", "33554432", "--memory-swap", "-1"},
			want: `{"memory":{"limit":33554432,"swap":-1}}`},
		{name: "cpu", args: []string{"--cpu-quota", "20000", "--cpu-period", "100000", "--cpu-share", "512", "--cpu-burst", "1000"},
			want: `{"cpu":{"shares":512,"quota":20000,"burst":1000,"period":100000}}`},
		{name: "unlimited quota", args: []string{"--cpu-quota", "-1"}, want: `{"cpu":{"quota":-1}}`},
		{name: "realtime and idle", args: []string{"--cpu-rt-period", "1000000", "--cpu-rt-runtime", "950000", "--cpu-idle", "1"},
			want: `{"cpu":{"realtimeRuntime":950000,"realtimePeriod":1000000,"idle":1}}`},
		{name: "cpuset", args: []string{"--cpuset-cpus", "0-1", "--cpuset-mems", "0"}, want: `{"cpu":{"cpus":"0-1","mems":"0"}}`},
		{name: "pids", args: []string{"--pids-limit", "20"}, want: `{"pids":{"limit":20}}`},
		{name: "pids zero is given", args: []string{"--pids-limit", "0"}, want: `{"pids":{"limit":0}}`},
		{name: "blkio weight", args: []string{"--blkio-weight", "500"}, want: `{"blockIO":{"weight":500}}`},
		{name: "blkio weight out of range", args: []string{"--blkio-weight", "5"}, wantErr: "10 to 1000"},
		{name: "kernel tcp", args: []string{"--kernel-memory-tcp", "8m"}, want: `{"memory":{"kernelTCP":8388608}}`},
		{name: "kernel memory is passed on for Update to refuse", args: []string{"--kernel-memory", "8m"}, want: `{"memory":{"kernel":8388608}}`},
		{name: "bad memory unit", args: []string{"--memory", "12q"}, wantErr: `invalid value "12q" for --memory`},
		{name: "bad quota", args: []string{"--cpu-quota", "lots"}, wantErr: `invalid value "lots" for --cpu-quota`},
		{name: "negative shares", args: []string{"--cpu-share", "-5"}, wantErr: "--cpu-share"},
		{name: "l3 cache schema", args: []string{"--l3-cache-schema", "L3:0=f"}, wantErr: "Intel RDT is not supported"},
		{name: "mem bw schema", args: []string{"--mem-bw-schema", "MB:0=50"}, wantErr: "Intel RDT is not supported"},
		{name: "resources from stdin", args: []string{"-r", "-"}, stdin: `{"memory":{"limit":67108864},"cpu":{"quota":5000}}`,
			want: `{"memory":{"limit":67108864},"cpu":{"quota":5000}}`},
		{name: "resources win over flags", args: []string{"-r", "-", "--memory", "1g", "--pids-limit", "3"}, stdin: `{"pids":{"limit":9}}`,
			want: `{"pids":{"limit":9}}`, warn: "--memory, --pids-limit ignored"},
		{name: "resources with a typo", args: []string{"-r", "-"}, stdin: `{"memroy":{"limit":1}}`, wantErr: `unknown field "memroy"`},
		{name: "resources not JSON", args: []string{"--resources", "-"}, stdin: `limit=1`, wantErr: "not linux.resources JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, warn, err := convert(t, tt.stdin, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(res)
			if string(got) != tt.want {
				t.Errorf("resources = %s, want %s", got, tt.want)
			}
			if !strings.Contains(warn, tt.warn) || (tt.warn == "" && warn != "") {
				t.Errorf("warning %q, want %q", warn, tt.warn)
			}
		})
	}
}

func TestUpdateResourcesFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "res.json")
	if err := os.WriteFile(path, []byte(`{"pids":{"limit":12}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err := convert(t, "", "--resources", path)
	if err != nil || res.Pids == nil || *res.Pids.Limit != 12 {
		t.Fatalf("-r %s: %+v, %v", path, res, err)
	}
	if _, _, err := convert(t, "", "-r", path+".missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("-r of a missing file: %v", err)
	}
}

// Every flag of runc 1.1's and 1.2's `update` is there.
func TestUpdateHasRuncFlags(t *testing.T) {
	cmd := updateCmd(&globals{})
	for _, name := range []string{"resources", "blkio-weight", "cpu-period", "cpu-quota", "cpu-share", "cpu-rt-period",
		"cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp", "memory",
		"memory-reservation", "memory-swap", "pids-limit", "l3-cache-schema", "mem-bw-schema", "cpu-idle", "cpu-burst"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("no --%s", name)
		}
	}
	if f := cmd.Flags().ShorthandLookup("r"); f == nil || f.Name != "resources" {
		t.Error("no -r for --resources")
	}
}
