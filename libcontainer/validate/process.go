package validate

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthrt/berth/libcontainer/procattr"
)

// invalidID is (uid_t)-1: setuid(2) and friends take it as "no change" or
// refuse it, so it can name no user.
const invalidID = 1<<32 - 1

// Process checks a process: the container's, or one to exec in it.
func Process(p *specs.Process, h Host) error {
	u := p.User
	if u.UID == invalidID {
		return fmt.Errorf("process.user.uid %d is the kernel's \"no id\" and names no user: use a uid below it", u.UID)
	}
	if u.GID == invalidID {
		return fmt.Errorf("process.user.gid %d is the kernel's \"no id\" and names no group: use a gid below it", u.GID)
	}
	for _, g := range u.AdditionalGids {
		if g == invalidID {
			return fmt.Errorf("process.user.additionalGids has %d, the kernel's \"no id\": use a gid below it", g)
		}
	}
	if p.ApparmorProfile != "" && !h.AppArmor {
		return fmt.Errorf("process.apparmorProfile %q: AppArmor is not enabled on this host, so the profile cannot be applied (remove the field, or run on a host with AppArmor)", p.ApparmorProfile)
	}
	if p.SelinuxLabel != "" && !h.SELinux {
		return fmt.Errorf("process.selinuxLabel %q: SELinux is not enabled on this host, so the label cannot be applied (remove the field, or run on a host with SELinux)", p.SelinuxLabel)
	}
	// The attributes set before exec: FromSpec refuses what the kernel
	// would.
	if _, err := procattr.FromSpec(p, nil); err != nil {
		return err
	}
	return nil
}

func personality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	_, err := procattr.Personality(p)
	return err
}

// mountLabel refuses linux.mountLabel: mounts are not labelled by Berth
// (it would take a context= option on each mount it makes, and relabelling
// of the binds), so the label could not be honoured even with SELinux.
func mountLabel(label string, h Host) error {
	switch {
	case label == "":
		return nil
	case !h.SELinux:
		return fmt.Errorf("linux.mountLabel %q: SELinux is not enabled on this host, so the label cannot be applied (remove the field, or run on a host with SELinux)", label)
	}
	return errors.New("linux.mountLabel: berth-runtime does not label mounts yet, so it cannot honour the field: remove it")
}
