// Package rootfs builds a container's file system from a bundle's rootfs and
// its OCI spec. It runs inside the container's init process, which already
// sits in its own mount namespace (and maybe user namespace), on one locked
// OS thread, in three steps:
//
//   - Prepare, before the root changes: mounts, devices, /dev symlinks.
//   - Enter: pivot_root (or MS_MOVE + chroot) into the rootfs.
//   - Finish, from inside: readonly and masked paths, a read-only root and
//     the rootfs propagation. The paths inside a procfs are resolved from
//     the procfs Prepare mounted, found again and verified, and every
//     mount is made on a held file, never on a path through /proc.
//
// Every path taken from the spec or the image is resolved inside the rootfs
// through file descriptors, so that symlinks and ".." in the image cannot
// redirect a mount onto the host.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config says what to build.
type Config struct {
	// Rootfs is the absolute, cleaned host path of the rootfs directory.
	Rootfs string
	// BundleDir is the bundle directory; relative bind-mount sources are
	// taken relative to it.
	BundleDir string
	// Spec is the whole container spec. Mounts, Root.Readonly,
	// Linux.Devices, MaskedPaths, ReadonlyPaths, RootfsPropagation and
	// Linux.Namespaces are used; MountLabel is ignored (no SELinux).
	Spec *specs.Spec
	// NoPivot switches roots with MS_MOVE + chroot instead of pivot_root,
	// for root file systems pivot_root refuses (initramfs).
	NoPivot bool
	// UserNS says the container has its own user namespace: device nodes
	// cannot be created there and are bind-mounted from the host instead.
	UserNS bool
	// HostMountNS says the container has no mount namespace of its own:
	// its mounts are made in the runtime's namespace, so the propagation of
	// the host's mounts is left alone, the root changes with a plain
	// chroot, and the caller must Unmount the rootfs when the container is
	// deleted.
	HostMountNS bool
	// DetachedMount, when set, returns the detached mount (open_tree(2))
	// the runtime made for the bind mount spec.Mounts[i], or nil when it
	// made none; Prepare attaches it instead of binding the source. It is
	// called once per bind mount, in order. Every idmapped mount needs one
	// (see detached.go).
	DetachedMount func(i int) (*os.File, error)
	// LateProc makes Prepare leave the mounts at and under /proc to
	// MountProc: the container joins a pid namespace, and a procfs shows
	// the pid namespace of the process that mounts it, which the caller
	// has only after Enter (see libcontainer's nsPlan.lateFork). Enter
	// then also makes a read-only root read-only, before that process
	// exists.
	LateProc bool

	// procMounts are the procfs mounts Prepare made, which Finish must
	// find again unchanged (procmount.go).
	procMounts []procMount
}

// Prepare sets the rootfs up before the root changes: it detaches the mount
// tree from the host's propagation, makes the rootfs a mount of its own,
// performs spec.Mounts in order and populates /dev.
func Prepare(cfg *Config) error {
	return prepare(cfg, hostSystem())
}

// Enter makes the rootfs the process's root directory and "/" its working
// directory.
func Enter(cfg *Config) error {
	return enter(cfg, hostSystem())
}

// MountProc makes, after Enter, the procfs mounts Prepare left to it
// (Config.LateProc). It must run in the container's pid namespace.
func MountProc(cfg *Config) error {
	return mountProc(cfg, hostSystem(), "/")
}

// Finish runs after Enter: readonly paths, masked paths, a read-only root
// and finally the root's mount propagation.
func Finish(cfg *Config) error {
	return finish(cfg, hostSystem(), "/")
}

func validate(cfg *Config) error {
	if cfg == nil || cfg.Spec == nil {
		return errors.New("rootfs: no spec")
	}
	if !filepath.IsAbs(cfg.Rootfs) || filepath.Clean(cfg.Rootfs) != cfg.Rootfs || cfg.Rootfs == "/" {
		return fmt.Errorf("rootfs: %q must be an absolute, clean path other than /", cfg.Rootfs)
	}
	if _, err := rootPropagation(linuxSpec(cfg.Spec).RootfsPropagation); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// linuxSpec never returns nil, so callers need not check.
func linuxSpec(s *specs.Spec) *specs.Linux {
	if s.Linux == nil {
		return &specs.Linux{}
	}
	return s.Linux
}

func hasNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	for _, ns := range linuxSpec(s).Namespaces {
		if ns.Type == typ {
			return true
		}
	}
	return false
}

// preparer holds the state of one Prepare run.
type preparer struct {
	cfg  *Config
	sys  *system
	root *inRoot
	// devReadonly is set when a read-only /dev tmpfs was mounted
	// read-write so that the devices could be created in it first.
	devReadonly bool
	devFlags    uintptr // the /dev mount's flags, for that remount
}

func prepare(cfg *Config, sys *system) error {
	if err := validate(cfg); err != nil {
		return err
	}
	p := &preparer{cfg: cfg, sys: sys}
	// pathrs-lite keeps one private procfs per process for the verified
	// reads after the root switch. Make it now, while the host's /proc is
	// in view: in a user namespace the kernel mounts a procfs only where
	// one is already fully visible, which a container need not have.
	if h, err := procfs.OpenProcRoot(); err == nil {
		h.Close()
	}
	if err := p.detachRoot(); err != nil {
		return err
	}
	root, err := newInRoot(cfg.Rootfs, hostFdPath)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", cfg.Rootfs, err)
	}
	p.root = root
	for i := range cfg.Spec.Mounts {
		if cfg.LateProc && underProc(&cfg.Spec.Mounts[i]) {
			// Only its mount point now: the root may be read-only by
			// the time MountProc runs.
			if err := p.lateMountPoint(&cfg.Spec.Mounts[i]); err != nil {
				return err
			}
			continue
		}
		if err := p.mount(i, &cfg.Spec.Mounts[i]); err != nil {
			return err
		}
	}
	if !needsDevSetup(cfg.Spec) {
		return nil
	}
	if err := p.setupDev(); err != nil {
		return err
	}
	if p.devReadonly {
		return p.remountDevReadonly()
	}
	return nil
}

// detachRoot keeps what happens below from propagating to the host and
// makes the rootfs a mount point, as pivot_root and MS_MOVE need.
func (p *preparer) detachRoot() error {
	if p.cfg.HostMountNS {
		return p.bindRootfs()
	}
	flags, _ := rootPropagation(linuxSpec(p.cfg.Spec).RootfsPropagation)
	if flags == 0 {
		flags = unix.MS_SLAVE | unix.MS_REC
	}
	if err := p.sys.mnt.Mount("", "/", "", flags, ""); err != nil {
		return fmt.Errorf("set propagation of / to %#x: %w", flags, err)
	}
	if err := p.makeParentMountPrivate(); err != nil {
		return err
	}
	return p.bindRootfs()
}

// bindRootfs makes the rootfs a mount point of its own: pivot_root needs
// one, and a read-only root is a remount of this bind, never of the file
// system beneath it.
func (p *preparer) bindRootfs() error {
	rootfs := p.cfg.Rootfs
	if err := p.sys.mnt.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount rootfs %s onto itself: %w", rootfs, err)
	}
	return nil
}
