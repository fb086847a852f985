package libcontainer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are the devices every container may use whatever its
// cgroup rules say, as with runc and Docker: the nodes rootfs creates by
// default, the terminal devices, and /dev/pts.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"}, // full
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"}, // random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"}, // urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"}, // tty
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}, // ptmx
	{Allow: true, Type: "c", Major: i64(136), Minor: nil, Access: "rwm"},  // pts/*
}

// withDefaultDevices returns the resources to apply: the spec's, with the
// default devices and every node in linux.devices allowed after the spec's
// own rules (later rules win), so a "deny all" spec still has a working
// /dev/null and the devices it asked to create.
func withDefaultDevices(l *specs.Linux) *specs.LinuxResources {
	var res specs.LinuxResources
	if l.Resources != nil {
		res = *l.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup(nil), res.Devices...)
	rules = append(rules, defaultDeviceRules...)
	for _, d := range l.Devices {
		if d.Type == "p" { // a fifo is no device to the cgroup
			continue
		}
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	res.Devices = rules
	return &res
}
