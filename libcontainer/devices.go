package libcontainer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are the devices every container may use whatever its
// cgroup rules say, as with runc and Docker: mknod of any node (making one
// grants no access to it), the nodes rootfs creates by default, the
// terminal devices, and /dev/pts.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: nil, Minor: nil, Access: "m"},
	{Allow: true, Type: "b", Major: nil, Minor: nil, Access: "m"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"}, // full
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"}, // random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"}, // urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"}, // tty
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}, // ptmx
	{Allow: true, Type: "c", Major: i64(136), Minor: nil, Access: "rwm"},  // pts/*
}

// cgroupResources returns the resources create applies, converted from
// the spec as runc converts them, in two parts: res before init starts and
// atReady once it has reported ready.
//
//   - devices: the spec's rules, then the default devices allowed (later
//     rules win), so a "deny all" spec still has a working /dev/null.
//     linux.devices adds nothing: it says which nodes to create, while
//     linux.resources.devices alone says which the container may use; a
//     node created under a deny rule stays unusable, as in runc.
//   - pids: a limit of 0 is a limit of 1 (only init), as in runc, not "no
//     limit": the field is a maximum, and -1 says unlimited. The limit
//     waits for init to be ready (atReady), as all limits do in runc:
//     init is the Go runtime, which starts threads, and each counts
//     against pids.max; a limit below their number would kill init.
func cgroupResources(l *specs.Linux) (res, atReady *specs.LinuxResources) {
	var r specs.LinuxResources
	if l.Resources != nil {
		r = *l.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	r.Devices = append(rules, defaultDeviceRules...)
	if p := r.Pids; p != nil && p.Limit != nil {
		limit := *p.Limit
		if limit == 0 {
			limit = 1
		}
		atReady = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
	}
	r.Pids = nil
	return &r, atReady
}
