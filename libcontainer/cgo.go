//go:build cgo

package libcontainer

// selfInit says this binary can be a container's init: it links nsenter's
// constructor and libseccomp (see nocgo.go for a build that cannot).
const selfInit = true
