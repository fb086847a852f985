package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"
)

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "print what this runtime supports, as the runtime spec's features.json",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := json.MarshalIndent(runtimeFeatures(), "", "    ")
			if err != nil {
				return fmt.Errorf("encode features: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}

// runtimeFeatures says what Berth implements, not what the spec allows:
// a caller (containerd, a test suite) uses it to decide what to ask for.
// Anything absent or false here is refused or not done by Berth.
func runtimeFeatures() *features.Features {
	yes, no := true, false
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		// libcontainer/hooks runs all six points.
		Hooks:        []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: mountOptions,
		Linux: &features.Linux{
			// namespaces.go creates and joins each of these.
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: knownCapabilities(),
			// The cgroupfs driver works on v1 (legacy and hybrid) and v2;
			// there is no systemd driver (--systemd-cgroup is refused).
			Cgroup: &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no, Rdma: &yes},
			Seccomp: &features.Seccomp{
				Enabled:    &yes,
				Actions:    seccompActions,
				Operators:  seccompOperators,
				Archs:      seccompArchs,
				KnownFlags: seccompFlags,
			},
			// As the spec defines these: supported by the runtime, whatever
			// the host has. process.apparmorProfile is applied at exec
			// (libcontainer/procattr) where AppArmor is enabled, refused
			// where it is not. SELinux is not claimed: the process label is
			// applied, but linux.mountLabel is refused, and a client that
			// uses SELinux sets both.
			Apparmor: &features.Apparmor{Enabled: &yes},
			Selinux:  &features.Selinux{Enabled: &no},
			IntelRdt: &features.IntelRdt{Enabled: &no},
			// idmap and ridmap binds are made by the runtime with
			// open_tree and mount_setattr (libcontainer/idmap.go).
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &yes}},
			NetDevices:      &features.NetDevices{Enabled: &no},
		},
		Annotations: map[string]string{"org.berthrt.berth.version": version},
	}
}

// knownCapabilities are the names capabilities.Parse accepts: every
// capability the capability library knows. One this kernel lacks is
// accepted and left out, as in runc.
func knownCapabilities() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// mountOptions are the options libcontainer/rootfs/options.go acts on: its
// flag, propagation and recursive-attribute tables plus bind, rbind,
// tmpcopyup, idmap and ridmap. Other options go to the filesystem as data.
// Keep in step with options.go (the rootfs package exports no list).
var mountOptions = []string{
	"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "iversion", "lazytime",
	"loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
	"norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev",
	"rdiratime", "relatime", "remount", "rexec", "ridmap", "rnoatime", "rnodev", "rnodiratime", "rnoexec",
	"rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro",
	"rrw", "rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared",
	"silent", "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
}

// The seccomp names libcontainer/seccomp's tables accept (tables.go); the
// features test compiles a profile with each one to keep this honest. The
// architectures leave out LOONGARCH64, M68K, SH and SHEB: the tables know
// them, but libseccomp 2.5 (Debian 12's) does not.
var (
	seccompActions = []string{
		"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
		"SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
	}
	seccompOperators = []string{
		"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
	}
	seccompArchs = []string{
		"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS",
		"SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
		"SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE",
		"SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
		"SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
	}
	seccompFlags = []string{
		"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
		"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
	}
)
