// Package nsenter joins mount, user and time namespaces before the Go runtime
// starts threads. Importing it (for its side effect) links a C constructor
// into the binary; see nsenter.c. The runtime's init and exec processes use it
// through the _BERTH_NSJOIN environment variable set by their parent.
package nsenter

// #cgo CFLAGS: -Wall -O2
import "C"

// EnvJoin is the variable the constructor reads: "kind:path,kind:path".
const EnvJoin = "_BERTH_NSJOIN"
