package rootfs

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

var parseMountOptionsTests = []struct {
	name    string
	opts    []string
	flags   uintptr
	fsFlags bool
	prop    []uintptr
	attr    *unix.MountAttr
	data    string
	copyUp  bool
	idmap   string
}{
	{name: "none"},
	{name: "defaults only", opts: []string{"defaults"}},
	{name: "tmpfs like the default /dev",
		opts:  []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
		flags: unix.MS_NOSUID | unix.MS_STRICTATIME, fsFlags: true, data: "mode=755,size=65536k"},
	{name: "bind", opts: []string{"bind"}, flags: unix.MS_BIND},
	{name: "rbind ro", opts: []string{"rbind", "ro"},
		flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, fsFlags: true},
	{name: "later option wins", opts: []string{"ro", "nosuid", "rw", "suid"}, fsFlags: true},
	{name: "atime modes exclude each other", opts: []string{"noatime", "relatime"},
		flags: unix.MS_RELATIME, fsFlags: true},
	{name: "clearing options",
		opts:    []string{"sync", "async", "dev", "exec", "atime", "diratime", "loud", "nomand", "norelatime", "nostrictatime", "noiversion", "nolazytime", "symfollow"},
		fsFlags: true},
	{name: "setting options",
		opts: []string{"ro", "nosuid", "nodev", "noexec", "sync", "dirsync", "mand", "noatime",
			"nodiratime", "iversion", "lazytime", "silent", "nosymfollow"},
		flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_SYNCHRONOUS |
			unix.MS_DIRSYNC | unix.MS_MANDLOCK | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_I_VERSION |
			unix.MS_LAZYTIME | unix.MS_SILENT | unix.MS_NOSYMFOLLOW,
		fsFlags: true},
	{name: "remount is not a per-mount flag", opts: []string{"remount"}, flags: unix.MS_REMOUNT},
	{name: "propagation in order",
		opts:  []string{"rbind", "rslave", "private", "shared", "rshared", "slave", "rprivate", "unbindable", "runbindable"},
		flags: unix.MS_BIND | unix.MS_REC,
		prop: []uintptr{unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE, unix.MS_SHARED,
			unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE, unix.MS_PRIVATE | unix.MS_REC,
			unix.MS_UNBINDABLE, unix.MS_UNBINDABLE | unix.MS_REC}},
	{name: "recursive attributes",
		opts:  []string{"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"},
		flags: unix.MS_BIND | unix.MS_REC,
		attr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID |
			unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME |
			unix.MOUNT_ATTR_NOSYMFOLLOW}},
	{name: "recursive clear after set", opts: []string{"rro", "rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
		attr: &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID |
			unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME |
			unix.MOUNT_ATTR_NOSYMFOLLOW}},
	{name: "recursive atime is an enum", opts: []string{"rnoatime", "rstrictatime"},
		attr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_STRICTATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}},
	{name: "ratime means relatime", opts: []string{"rnoatime", "ratime"},
		attr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RELATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}},
	{name: "rnorelatime means strictatime", opts: []string{"rnorelatime"},
		attr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_STRICTATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}},
	{name: "tmpcopyup", opts: []string{"tmpcopyup", "mode=1777"}, copyUp: true, data: "mode=1777"},
	{name: "idmap", opts: []string{"rbind", "idmap"}, flags: unix.MS_BIND | unix.MS_REC, idmap: "idmap"},
	{name: "ridmap", opts: []string{"ridmap"}, idmap: "ridmap"},
	{name: "x- options are for userspace", opts: []string{"x-systemd.automount", "size=1m"}, data: "size=1m"},
	{name: "unknown goes to the file system",
		opts: []string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "newinstance", "ptmxmode=0666"},
		data: "lowerdir=/a:/b,upperdir=/u,workdir=/w,newinstance,ptmxmode=0666"},
}

func TestParseMountOptions(t *testing.T) {
	for _, tt := range parseMountOptionsTests {
		t.Run(tt.name, func(t *testing.T) {
			o := parseMountOptions(tt.opts)
			if o.flags != tt.flags {
				t.Errorf("flags = %s, want %s", flagString(o.flags), flagString(tt.flags))
			}
			if o.fsFlagsSeen != tt.fsFlags {
				t.Errorf("fsFlagsSeen = %v, want %v", o.fsFlagsSeen, tt.fsFlags)
			}
			if !reflect.DeepEqual(o.propagation, tt.prop) {
				t.Errorf("propagation = %#x, want %#x", o.propagation, tt.prop)
			}
			if !reflect.DeepEqual(o.recAttr, tt.attr) {
				t.Errorf("recAttr = %+v, want %+v", o.recAttr, tt.attr)
			}
			if o.dataString() != tt.data {
				t.Errorf("data = %q, want %q", o.dataString(), tt.data)
			}
			if o.copyUp != tt.copyUp || o.idmap != tt.idmap {
				t.Errorf("copyUp, idmap = %v, %q; want %v, %q", o.copyUp, o.idmap, tt.copyUp, tt.idmap)
			}
		})
	}
}

func TestRootPropagation(t *testing.T) {
	tests := map[string]uintptr{
		"":            0,
		"shared":      unix.MS_SHARED,
		"rshared":     unix.MS_SHARED | unix.MS_REC,
		"slave":       unix.MS_SLAVE,
		"rslave":      unix.MS_SLAVE | unix.MS_REC,
		"private":     unix.MS_PRIVATE,
		"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
		"unbindable":  unix.MS_UNBINDABLE,
		"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
	}
	for in, want := range tests {
		got, err := rootPropagation(in)
		if err != nil || got != want {
			t.Errorf("rootPropagation(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	if _, err := rootPropagation("bogus"); err == nil {
		t.Error("rootPropagation(bogus) succeeded")
	}
}

func TestStatfsToMountFlags(t *testing.T) {
	tests := []struct {
		st   int64
		want uintptr
	}{
		{0, unix.MS_STRICTATIME},
		{stRelatime, unix.MS_RELATIME},
		{stNoatime | stRdonly, unix.MS_NOATIME | unix.MS_RDONLY},
		{stNosuid | stNodev | stNoexec | stRelatime | 0x20, /* ST_VALID */
			unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME},
		{stNodiratime | stNosymfollow | stSynchronous | stMandlock | stNoatime,
			unix.MS_NODIRATIME | unix.MS_NOSYMFOLLOW | unix.MS_SYNCHRONOUS | unix.MS_MANDLOCK | unix.MS_NOATIME},
	}
	for _, tt := range tests {
		if got := statfsToMountFlags(tt.st); got != tt.want {
			t.Errorf("statfsToMountFlags(%#x) = %s, want %s", tt.st, flagString(got), flagString(tt.want))
		}
	}
}
