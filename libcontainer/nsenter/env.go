// Package nsenter moves a new process into its v1 cgroup and joins mount,
// user, time and cgroup namespaces before the Go runtime starts threads. Importing
// it (for its side effect) links a C constructor into the binary; see
// nsenter.c. The runtime's init and exec processes use it through the
// environment variables below, set by their parent. A build without cgo
// has no constructor (and so cannot run a container's init).
package nsenter

// EnvJoin is the variable of namespaces to join: "kind:path,kind:path".
const EnvJoin = "_BERTH_NSJOIN"

// EnvCgroupJoin is the variable of v1 cgroup tasks files to move into:
// "fd,fd".
const EnvCgroupJoin = "_BERTH_CGJOIN"
