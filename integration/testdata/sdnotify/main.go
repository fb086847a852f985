// Command sdnotify sends its argument, with "\n" escapes turned into
// newlines, as one datagram to $NOTIFY_SOCKET: sd_notify(3) for tests, in
// a container whose busybox cannot send unix datagrams.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sdnotify 'READY=1\\nSTATUS=...'")
		os.Exit(2)
	}
	msg := strings.ReplaceAll(os.Args[1], `\n`, "\n")
	addr := &net.UnixAddr{Name: os.Getenv("NOTIFY_SOCKET"), Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err == nil {
		_, err = conn.Write([]byte(msg))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sdnotify: %v\n", err)
		os.Exit(1)
	}
}
