package nsenter

// #cgo CFLAGS: -Wall -O2
import "C"
