// Command rawsyscall makes each syscall whose number it is given, with no
// arguments, and prints "<nr> <errno number>" per line (0 on success): a
// probe for seccomp filters in a container whose busybox cannot make an
// arbitrary syscall.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	for _, arg := range os.Args[1:] {
		nr, err := strconv.ParseUint(arg, 0, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "usage: rawsyscall NR...:", err)
			os.Exit(2)
		}
		_, _, errno := syscall.RawSyscall(uintptr(nr), 0, 0, 0)
		fmt.Printf("%d %d\n", nr, int(errno))
	}
}
