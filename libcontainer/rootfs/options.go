package rootfs

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is what one spec mount's option strings turn into. The
// kernel needs them split across several calls: flags and data go to the
// first mount(2), propagation changes must each be their own mount(2) call,
// and the recursive "r*" attributes only exist in mount_setattr(2).
type mountOptions struct {
	flags       uintptr         // MS_* flags for the first mount(2)
	fsFlagsSeen bool            // some per-mount flag option was given: a bind needs a remount to apply it
	propagation []uintptr       // MS_SHARED/MS_SLAVE/... calls, in the order given
	recAttr     *unix.MountAttr // recursive attributes; nil when none were given
	data        []string        // everything else, passed to the filesystem
	copyUp      bool            // tmpcopyup
	idmap       string          // "idmap" or "ridmap" when requested
}

// flagOption is an fstab option that sets or clears one MS_* flag.
type flagOption struct {
	clear bool
	flag  uintptr
}

// flagOptions covers every per-mount flag option of the runtime spec.
// "bind" and "rbind" are handled apart because they are not remountable.
var flagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

// atimeFlags are mutually exclusive: picking one must drop the others,
// otherwise "noatime,relatime" would ask the kernel for both.
const atimeFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

// propagationOptions maps both mount options and rootfsPropagation values.
var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recAttrOption is a recursive ("r"-prefixed) option for mount_setattr.
type recAttrOption struct {
	clear bool
	attr  uint64
	atime bool // the attr is one of the exclusive atime modes
}

var recAttrOptions = map[string]recAttrOption{
	"rro":          {false, unix.MOUNT_ATTR_RDONLY, false},
	"rrw":          {true, unix.MOUNT_ATTR_RDONLY, false},
	"rnosuid":      {false, unix.MOUNT_ATTR_NOSUID, false},
	"rsuid":        {true, unix.MOUNT_ATTR_NOSUID, false},
	"rnodev":       {false, unix.MOUNT_ATTR_NODEV, false},
	"rdev":         {true, unix.MOUNT_ATTR_NODEV, false},
	"rnoexec":      {false, unix.MOUNT_ATTR_NOEXEC, false},
	"rexec":        {true, unix.MOUNT_ATTR_NOEXEC, false},
	"rnodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME, false},
	"rdiratime":    {true, unix.MOUNT_ATTR_NODIRATIME, false},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW, false},
	"rsymfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW, false},
	// The atime modes are an enum in mount_setattr: setting one means
	// clearing MOUNT_ATTR__ATIME and setting the value. "Not noatime" and
	// "not strictatime" mean the kernel default, relatime; "not relatime"
	// leaves strictatime as the only remaining mode.
	"rnoatime":       {false, unix.MOUNT_ATTR_NOATIME, true},
	"ratime":         {false, unix.MOUNT_ATTR_RELATIME, true},
	"rrelatime":      {false, unix.MOUNT_ATTR_RELATIME, true},
	"rnostrictatime": {false, unix.MOUNT_ATTR_RELATIME, true},
	"rstrictatime":   {false, unix.MOUNT_ATTR_STRICTATIME, true},
	"rnorelatime":    {false, unix.MOUNT_ATTR_STRICTATIME, true},
}

// parseMountOptions sorts option strings into the calls that apply them.
// Later options win over earlier ones, as with mount(8).
func parseMountOptions(options []string) mountOptions {
	var o mountOptions
	for _, opt := range options {
		switch {
		case opt == "bind":
			o.flags |= unix.MS_BIND
		case opt == "rbind":
			o.flags |= unix.MS_BIND | unix.MS_REC
		case opt == "tmpcopyup":
			o.copyUp = true
		case opt == "idmap" || opt == "ridmap":
			o.idmap = opt
		case strings.HasPrefix(opt, "x-"):
			// mount(8) keeps x-* options for userspace tools; the kernel
			// would reject them as unknown filesystem options.
		default:
			o.addOption(opt)
		}
	}
	return o
}

func (o *mountOptions) addOption(opt string) {
	if f, ok := flagOptions[opt]; ok {
		if f.clear {
			o.flags &^= f.flag
		} else {
			if f.flag&atimeFlags != 0 {
				o.flags &^= atimeFlags
			}
			o.flags |= f.flag
		}
		o.fsFlagsSeen = o.fsFlagsSeen || opt != "defaults" && opt != "remount"
		return
	}
	if p, ok := propagationOptions[opt]; ok {
		o.propagation = append(o.propagation, p)
		return
	}
	if r, ok := recAttrOptions[opt]; ok {
		o.addRecAttr(r)
		return
	}
	o.data = append(o.data, opt)
}

func (o *mountOptions) addRecAttr(r recAttrOption) {
	if o.recAttr == nil {
		o.recAttr = &unix.MountAttr{}
	}
	a := o.recAttr
	switch {
	case r.atime:
		a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		a.Attr_set = a.Attr_set&^unix.MOUNT_ATTR__ATIME | r.attr
	case r.clear:
		a.Attr_set &^= r.attr
		a.Attr_clr |= r.attr
	default:
		a.Attr_clr &^= r.attr
		a.Attr_set |= r.attr
	}
}

func (o mountOptions) isBind() bool { return o.flags&unix.MS_BIND != 0 }

func (o *mountOptions) dataString() string { return strings.Join(o.data, ",") }

// keepTmpfsMode gives a tmpfs without a mode= option the mode (permission,
// setuid, setgid and sticky bits) of the directory it covers, as runc does:
// a tmpfs on an image's /tmp (1777) or on a directory made 0710 stays so,
// instead of the kernel's default 1777. A mount point Berth makes itself is
// left to that default.
func (o *mountOptions) keepTmpfsMode(mountPoint *os.File) error {
	for _, d := range o.data {
		if strings.HasPrefix(d, "mode=") {
			return nil
		}
	}
	st, err := fstat(mountPoint)
	if err != nil {
		return err
	}
	o.data = append([]string{fmt.Sprintf("mode=%04o", st.Mode&0o7777)}, o.data...)
	return nil
}

// rootPropagation maps linux.rootfsPropagation; "" means "leave it".
func rootPropagation(value string) (uintptr, error) {
	if value == "" {
		return 0, nil
	}
	if p, ok := propagationOptions[value]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("invalid rootfsPropagation %q", value)
}

// statfs(2) f_flags bits, from <linux/statfs.h>; x/sys/unix does not
// export them for Linux.
const (
	stRdonly      = 0x0001
	stNosuid      = 0x0002
	stNodev       = 0x0004
	stNoexec      = 0x0008
	stSynchronous = 0x0010
	stMandlock    = 0x0040
	stNoatime     = 0x0400
	stNodiratime  = 0x0800
	stRelatime    = 0x1000
	stNosymfollow = 0x2000
)

// statfsToMountFlags turns statfs(2) f_flags (ST_*) into the MS_* flags a
// remount needs to keep. The two sets share some bit values but not all
// (ST_RELATIME is MS_BIND's bit), so they must be mapped one by one.
func statfsToMountFlags(stFlags int64) uintptr {
	pairs := []struct {
		st int64
		ms uintptr
	}{
		{stRdonly, unix.MS_RDONLY},
		{stNosuid, unix.MS_NOSUID},
		{stNodev, unix.MS_NODEV},
		{stNoexec, unix.MS_NOEXEC},
		{stSynchronous, unix.MS_SYNCHRONOUS},
		{stMandlock, unix.MS_MANDLOCK},
		{stNoatime, unix.MS_NOATIME},
		{stNodiratime, unix.MS_NODIRATIME},
		{stRelatime, unix.MS_RELATIME},
		{stNosymfollow, unix.MS_NOSYMFOLLOW},
	}
	var ms uintptr
	for _, p := range pairs {
		if stFlags&p.st != 0 {
			ms |= p.ms
		}
	}
	// Neither noatime nor relatime means strictatime; without saying so a
	// remount would switch to relatime, which a locked mount refuses.
	if ms&atimeFlags == 0 {
		ms |= unix.MS_STRICTATIME
	}
	return ms
}
