package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berthrt/berth/libcontainer/seccomp"
)

func TestFeaturesOutput(t *testing.T) {
	cmd := featuresCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var f features.Features
	d := json.NewDecoder(&out)
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		t.Fatalf("features output does not parse as features.Features: %v", err)
	}
	l := f.Linux
	if f.OCIVersionMax != specs.Version || l == nil || !*l.Cgroup.V1 || !*l.Cgroup.V2 || *l.Cgroup.Systemd ||
		!*l.Apparmor.Enabled || *l.Selinux.Enabled || *l.IntelRdt.Enabled || !*l.MountExtensions.IDMap.Enabled {
		t.Errorf("features: %+v / %+v", f, l)
	}
	for _, want := range []string{"CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_BPF"} {
		if !slices.Contains(l.Capabilities, want) {
			t.Errorf("capabilities lack %s", want)
		}
	}
	if !slices.Contains(f.MountOptions, "idmap") || !slices.Contains(f.MountOptions, "rbind") {
		t.Errorf("mount options %v", f.MountOptions)
	}
	if !slices.IsSorted(f.MountOptions) {
		t.Error("mount options are not sorted")
	}
}

// Every seccomp name features lists must be one the seccomp package takes:
// a profile using it compiles, or fails for a reason other than the name.
func TestFeaturesSeccompNamesAccepted(t *testing.T) {
	compile := func(what string, s *specs.LinuxSeccomp) {
		t.Helper()
		if _, err := seccomp.Compile(s); err != nil && (strings.Contains(err.Error(), "unknown") || strings.Contains(err.Error(), "not supported")) {
			t.Errorf("%s listed in features but refused: %v", what, err)
		}
	}
	rule := func(a specs.LinuxSeccompAction, args ...specs.LinuxSeccompArg) []specs.LinuxSyscall {
		return []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: a, Args: args}}
	}
	for _, a := range seccompActions {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rule(specs.LinuxSeccompAction(a))}
		if a == string(specs.ActAllow) {
			s.DefaultAction = specs.ActErrno
		}
		if a == string(specs.ActNotify) {
			s.ListenerPath = "/run/notify.sock"
		}
		compile(a, s)
	}
	for _, op := range seccompOperators {
		compile(op, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: rule(specs.ActErrno, specs.LinuxSeccompArg{Index: 0, Value: 1, ValueTwo: 1, Op: specs.LinuxSeccompOperator(op)})})
	}
	for _, arch := range seccompArchs {
		compile(arch, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.Arch(arch)},
			Syscalls: rule(specs.ActErrno)})
	}
	for _, flag := range seccompFlags {
		compile(flag, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(flag)},
			Syscalls: rule(specs.ActErrno)})
	}
}
