// Package nsenter moves a new process into its v1 cgroup, joins and makes
// its namespaces where Go cannot (a single thread is needed, or the process
// must be forked into a pid namespace), and resets its signal
// dispositions, before the Go runtime starts threads. Importing
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

// EnvUnshare is the variable of namespaces to make once the joins are
// done: clone flags, in decimal. A new user namespace is made first and
// its maps are written by the parent (see nsenter.c for the messages);
// a new pid namespace makes the constructor fork.
const EnvUnshare = "_BERTH_NSNEW"

// EnvPidNS is the variable of an fd on a pid namespace to join and fork
// into: init sets it when it re-execs itself after setting up the
// container's root outside that namespace (see libcontainer's nsPlan).
const EnvPidNS = "_BERTH_PIDNS"
