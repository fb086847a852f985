package ctrd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// RemoveContainer kills id's task (SIGKILL, every process), deletes it and
// then the container with its snapshot. A container or task that does not
// exist is not an error.
func (d *Daemon) RemoveContainer(ctx context.Context, id string) error {
	tasks, err := d.Tasks(ctx)
	if err != nil {
		return err
	}
	if t, ok := tasks[id]; ok {
		if t.Status != "STOPPED" {
			d.Ctr(ctx, "task", "kill", "--all", "--signal", "SIGKILL", id)
			d.waitStopped(ctx, id, 10*time.Second)
		}
		// --force only for a task that would not stop.
		args := []string{"task", "delete", id}
		if tasks, err := d.Tasks(ctx); err == nil && tasks[id].Status != "STOPPED" {
			args = []string{"task", "delete", "--force", id}
		}
		if _, err := d.Ctr(ctx, args...); err != nil && !isNotFound(err) {
			return err
		}
	}
	if _, err := d.Ctr(ctx, "container", "delete", id); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// RemoveContainers is RemoveContainer for each of ids, a few at a time:
// each removal is mostly waiting on ctr round trips.
func (d *Daemon) RemoveContainers(ctx context.Context, ids []string) error {
	const workers = 4
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan string)
	for range workers {
		wg.Go(func() {
			for id := range next {
				if err := d.RemoveContainer(ctx, id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// waitStopped polls `ctr task ls` until id's task is stopped or gone.
func (d *Daemon) waitStopped(ctx context.Context, id string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		tasks, err := d.Tasks(ctx)
		if t, ok := tasks[id]; err != nil || !ok || t.Status == "STOPPED" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isNotFound(err error) bool { return strings.Contains(err.Error(), "not found") }

// Close takes everything down, in an order where each step still has what
// it needs: the containers through containerd while it runs; then
// containerd (by its pid); then, by pid, any shim or container process
// that outlived it; container state left in the runtime roots; mounts
// under root and state; the containers' cgroups; and the directories. It
// carries on past failures and returns them joined; what it merely had to
// force goes to Config.Logf. It is safe to call more than once.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Daemon) close() error {
	var errs []error
	// A fresh context: the caller's may be cancelled already (^C), and
	// the cleanup must still run to the end.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if d.running() {
		if out, err := d.Ctr(ctx, "container", "ls", "-q"); err == nil {
			ids := strings.Fields(out)
			for _, id := range ids {
				d.Track(id)
			}
			if len(ids) > 0 {
				d.leakf("ctrd: removing containers left behind: %s", strings.Join(ids, " "))
			}
			errs = append(errs, d.RemoveContainers(ctx, ids))
		}
	}
	ids := d.knownIDs()
	if err := d.stopDaemon(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, d.killStrays(ids), d.deleteRuntimeState())
	errs = append(errs, d.unmountAll()...)
	d.removeCgroups(ids)
	d.reportSockets()
	errs = append(errs, d.removeDirs())
	return errors.Join(errs...)
}

func (d *Daemon) running() bool {
	if d.cmd == nil || d.cmd.Process == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// stopDaemon stops containerd with SIGTERM, and SIGKILL after 15s.
func (d *Daemon) stopDaemon() error {
	if !d.running() {
		return nil
	}
	d.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	d.cmd.Process.Kill()
	<-d.exited
	return fmt.Errorf("ctrd: containerd (pid %d) did not stop on SIGTERM; killed it", d.cmd.Process.Pid)
}

// knownIDs are the ids tracked, plus those with a task bundle or runtime
// state left: every container whose cgroup or processes may remain.
func (d *Daemon) knownIDs() []string {
	d.mu.Lock()
	set := map[string]bool{}
	for id := range d.ids {
		set[id] = true
	}
	var roots []string
	for root := range d.runtimes {
		roots = append(roots, root)
	}
	d.mu.Unlock()
	dirs := []string{filepath.Join(d.State, "io.containerd.runtime.v2.task", d.cfg.Namespace)}
	for _, root := range roots {
		dirs = append(dirs, filepath.Join(root, d.cfg.Namespace))
	}
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				set[e.Name()] = true
			}
		}
	}
	var ids []string
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// killStrays kills, by pid, what outlived containerd: the processes in
// our containers' cgroups and in their bundles' pid files, the shims
// serving this containerd (a shim binary from ShimDir whose -address is
// our socket), and anything else whose command line names State (a ctr
// or a runtime wrapper the caller left running). A shim exits by itself
// shortly after its last task is deleted, so these get that time first.
func (d *Daemon) killStrays(ids []string) error {
	if d.State == "" {
		return nil
	}
	strays := func() []int {
		pids := append(d.ShimPids(), d.statePids()...)
		slices.Sort(pids)
		return slices.Compact(pids)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(strays()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	pids := append(strays(), d.containerPids(ids)...)
	slices.Sort(pids)
	pids = slices.Compact(pids)
	for _, pid := range pids {
		d.leakf("ctrd: killing leftover process %d (%s)", pid, strings.Join(Cmdline(pid), " "))
		unix.Kill(pid, unix.SIGKILL)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		var alive []int
		for _, pid := range pids {
			if Alive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ctrd: processes %v survived SIGKILL", alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ShimPids are the live processes that run a shim binary from ShimDir
// with `-address <our socket>`: this containerd's shims and no one
// else's.
func (d *Daemon) ShimPids() []int {
	return livePids(func(pid int) bool {
		exe, err := Exe(pid)
		if err != nil || filepath.Dir(exe) != d.ShimDir || !strings.HasPrefix(filepath.Base(exe), "containerd-shim-") {
			return false
		}
		args := Cmdline(pid)
		i := slices.Index(args, "-address")
		return i >= 0 && i+1 < len(args) && args[i+1] == d.Socket
	})
}

// statePids are the live processes whose command line names State.
func (d *Daemon) statePids() []int {
	return livePids(func(pid int) bool {
		return slices.ContainsFunc(Cmdline(pid), func(a string) bool {
			return a == d.State || strings.Contains(a, d.State+"/")
		})
	})
}

// livePids are the live processes, this one aside, that match says yes to.
func livePids(match func(pid int) bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && pid != os.Getpid() && Alive(pid) && match(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// containerPids are the processes in the cgroups ctr gave our containers
// (/<namespace>/<id> in every hierarchy) and in the bundles' pid files.
func (d *Daemon) containerPids(ids []string) []int {
	set := map[int]bool{}
	for _, id := range ids {
		for _, dir := range CgroupDirs(d.cfg.Namespace, id) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					set[pid] = true
				}
			}
		}
	}
	pidFiles, _ := filepath.Glob(filepath.Join(d.State, "io.containerd.runtime.v2.task", d.cfg.Namespace, "*", "*.pid"))
	for _, f := range pidFiles {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && Alive(pid) {
			set[pid] = true
		}
	}
	var pids []int
	for pid := range set {
		if pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// deleteRuntimeState force-deletes containers left in the runtime roots,
// now that no shim uses them, with the runtime's own command line.
func (d *Daemon) deleteRuntimeState() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for root, binary := range d.runtimes {
		nsRoot := filepath.Join(root, d.cfg.Namespace)
		entries, _ := os.ReadDir(nsRoot)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			d.leakf("ctrd: deleting runtime state of %s in %s", e.Name(), nsRoot)
			out, err := exec.Command(binary, "--root", nsRoot, "delete", "--force", e.Name()).CombinedOutput()
			if err != nil {
				errs = append(errs, fmt.Errorf("ctrd: %s delete --force %s: %v: %s", binary, e.Name(), err, bytes.TrimSpace(out)))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountAll unmounts every mount under root or state, deepest first.
func (d *Daemon) unmountAll() []error {
	var errs []error
	for _, mp := range MountsUnder(d.Root, d.State) {
		d.logf("ctrd: unmounting %s", mp)
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("ctrd: unmount %s: %w", mp, err))
		}
	}
	return errs
}

// removeCgroups removes our containers' cgroups, then /<namespace> where
// it is empty (another user of the namespace keeps it).
func (d *Daemon) removeCgroups(ids []string) {
	for _, id := range ids {
		for _, dir := range CgroupDirs(d.cfg.Namespace, id) {
			d.leakf("ctrd: removing cgroup %s", dir)
			unix.Rmdir(dir)
		}
	}
	for _, dir := range CgroupDirs(d.cfg.Namespace, "") {
		unix.Rmdir(dir)
	}
}

// reportSockets reports the shim sockets left in SocketDir (by a shim
// that was killed); removeDirs removes them with the rest.
func (d *Daemon) reportSockets() {
	if d.SocketDir == "" {
		return
	}
	entries, _ := os.ReadDir(d.SocketDir)
	for _, e := range entries {
		d.leakf("ctrd: shim socket %s was left behind", filepath.Join(d.SocketDir, e.Name()))
	}
}

// removeDirs removes state and root, but only with nothing mounted below
// them: removing through a mount would delete what it shows.
func (d *Daemon) removeDirs() error {
	var errs []error
	dirs := []string{d.State, d.Root}
	if d.ShimDir != d.cfg.BinDir {
		dirs = append(dirs, d.ShimDir)
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if mps := MountsUnder(dir); len(mps) > 0 {
			errs = append(errs, fmt.Errorf("ctrd: not removing %s: still mounted below it: %v", dir, mps))
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("ctrd: %w", err))
		}
	}
	return errors.Join(errs...)
}

// CgroupDirs are the existing cgroup directories /<ns>/<id> (or /<ns>
// with id "") in every hierarchy: each v1 controller, or the v2 tree;
// ctr puts a container's cgroup there.
func CgroupDirs(ns, id string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns, id))
	if p := filepath.Join("/sys/fs/cgroup", ns, id); isDir(p) {
		dirs = append(dirs, p)
	}
	var out []string
	for _, dir := range dirs {
		if isDir(dir) {
			out = append(out, filepath.Clean(dir))
		}
	}
	return out
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Alive says whether pid exists and has not exited (a zombie has).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// ParentPid is pid's parent from /proc/<pid>/stat (0 when unknown): a
// container's init is a child of the shim that runs it.
func ParentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// Exe is the path of pid's executable, as the kernel resolved it when the
// process started. A binary since replaced (a rebuild while a shim runs)
// is still the same path: the kernel's " (deleted)" mark is cut off.
func Exe(pid int) (string, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return strings.TrimSuffix(exe, " (deleted)"), err
}

// Cmdline is pid's arguments.
func Cmdline(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// MountsUnder lists the mount points at or below any of dirs (in this
// process's mount namespace), deepest first.
func MountsUnder(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		for _, d := range dirs {
			if d != "" && (mp == d || strings.HasPrefix(mp, d+"/")) {
				mps = append(mps, mp)
				break
			}
		}
	}
	slices.SortStableFunc(mps, func(a, b string) int { return len(b) - len(a) })
	return mps
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
