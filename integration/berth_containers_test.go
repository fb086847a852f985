package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/console"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/integration/image"
)

// busyboxRef is the image the container tests run, loaded from
// integration/image's busybox archive.
const busyboxRef = "berthtest/busybox"

// newBerthWithBusybox gives t a managed berth with the busybox image
// loaded, and the cleanup that removes every container it left (before
// its containerd goes, so that no container outlives the test).
func newBerthWithBusybox(t *testing.T) (*berthCLI, string) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox for the test image: %v", err)
	}
	b, dir := newManagedBerth(t)
	withBusybox(t, b, dir)
	return b, dir
}

// withBusybox loads the busybox image into b and registers the cleanup
// that removes every container t left, and stops b's containerd.
func withBusybox(t *testing.T, b *berthCLI, dir string) {
	t.Cleanup(func() { b.run("system", "stop") })
	archive := filepath.Join(dir, "busybox.tar")
	writeArchive(t, archive, func(w io.Writer) error { return image.Busybox(w, "docker.io/"+busyboxRef+":latest") })
	b.mustRun("load", "-i", archive)
	t.Cleanup(func() {
		ids := strings.Fields(b.run("ps", "-aq", "--no-trunc").stdout)
		if len(ids) > 0 {
			if res := b.run(append([]string{"rm", "-f"}, ids...)...); res.code != 0 {
				t.Errorf("cleanup: rm -f: %s", res.stderr)
			}
		}
	})
}

// ctr runs containerd's ctr against the test's managed containerd.
func (b *berthCLI) ctr(dir string, args ...string) string {
	b.t.Helper()
	bin := filepath.Join(filepath.Dir(b.bin), "ctr")
	out, err := exec.Command(bin, append([]string{"-a", filepath.Join(dir, "st", "c.sock"), "-n", "default"}, args...)...).Output()
	if err != nil {
		b.t.Fatalf("ctr %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// TestBerthRun shows what `berth run` gives a user: output, exit codes,
// --rm leaving nothing behind, names, and the flags that shape the
// container.
func TestBerthRun(t *testing.T) {
	b, dir := newBerthWithBusybox(t)

	res := b.mustRun("run", "--rm", busyboxRef, "echo", "hello")
	if res.stdout != "hello\n" {
		t.Fatalf("run --rm echo hello: stdout %q", res.stdout)
	}
	if out := b.ctr(dir, "containers", "ls", "-q"); out != "" {
		t.Errorf("run --rm left containers: %q", out)
	}
	snaps := b.ctr(dir, "snapshots", "ls")
	if n := len(strings.Split(strings.TrimSpace(snaps), "\n")); n != 2 { // the header and the image's layer
		t.Errorf("run --rm left snapshots:\n%s", snaps)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "data", "containers")); len(entries) > 1 { // the names lock
		t.Errorf("run --rm left files in the data root: %v", entries)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"exit status passes through", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"command not found", []string{"nosuch"}, 127, `"nosuch": executable file not found`},
		{"command cannot run", []string{"/etc/passwd"}, 126, "is not an executable file"},
	} {
		res := b.run(append([]string{"run", "--rm", busyboxRef}, tc.args...)...)
		if res.code != tc.code || !strings.Contains(res.stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, res.code, res.stderr, tc.code, tc.stderr)
		}
	}
	if res := b.run("run", "--rm", "--pull", "never", "nosuch:1", "true"); res.code != 125 || !strings.Contains(res.stderr, "No such image: nosuch:1") {
		t.Errorf("run of an unknown image: exit %d, stderr %q; want 125 naming the reference", res.code, res.stderr)
	}
	if res := b.run("run", "--rm", "-u", "nosuch", busyboxRef, "true"); res.code != 125 || !strings.Contains(res.stderr, "unable to find user nosuch") {
		t.Errorf("run -u nosuch: exit %d, stderr %q; want 125 naming the user", res.code, res.stderr)
	}
	if res := b.mustRun("run", "--rm", "-u", "nobody", busyboxRef, "id", "-un"); res.stdout != "nobody\n" {
		t.Errorf("run -u nobody: %q", res.stdout)
	}
	if res := b.run("run", "--rm", "--memory", "lots", busyboxRef, "true"); res.code != 125 || !strings.Contains(res.stderr, `invalid --memory "lots"`) {
		t.Errorf("run --memory lots: exit %d, stderr %q; want 125 naming the flag", res.code, res.stderr)
	}

	// A name is taken until its container goes; the conflict names it.
	id := strings.TrimSpace(b.mustRun("run", "--name", "web", busyboxRef, "true").stdout + b.mustRun("ps", "-aq", "--no-trunc", "--filter", "name=^web$").stdout)
	res = b.run("run", "--name", "web", busyboxRef, "true")
	if res.code != 125 || !strings.Contains(res.stderr, `The container name "/web" is already in use by container "`+id+`"`) {
		t.Errorf("run with a taken name: exit %d, stderr %q; want 125 naming container %s", res.code, res.stderr, id)
	}
	if res := b.mustRun("ps", "-a", "--filter", "name=web"); !regexp.MustCompile(`(?m)^` + id[:12] + ` +` + busyboxRef + ` +"true" +.* ago +Exited \(0\) .* ago +web$`).MatchString(res.stdout) {
		t.Errorf("ps -a does not show the exited container web:\n%s", res.stdout)
	}
	if res := b.mustRun("ps"); strings.Contains(res.stdout, "web") {
		t.Errorf("ps without -a shows an exited container:\n%s", res.stdout)
	}

	// The image's environment, the flags' process settings.
	res = b.mustRun("run", "--rm", "-e", "GREETING=hi", "-w", "/tmp", "-u", "1000:1000", "-h", "box", "--entrypoint", "/bin/sh", busyboxRef,
		"-c", `echo "$GREETING $(pwd) $(id -u):$(id -g) $(hostname)"; echo "$PATH"`)
	if res.stdout != "hi /tmp 1000:1000 box\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" {
		t.Errorf("run -e -w -u -h --entrypoint: %q", res.stdout)
	}

	// -m shows in the container's memory cgroup.
	res = b.mustRun("run", "--rm", "-m", "32m", busyboxRef, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	if strings.TrimSpace(res.stdout) != "33554432" {
		t.Errorf("run -m 32m: memory limit %q, want 33554432", res.stdout)
	}

	// A read-only bind refuses writes; a writable one takes them.
	host := t.TempDir()
	res = b.run("run", "--rm", "-v", host+":/data:ro", busyboxRef, "touch", "/data/x")
	if res.code == 0 || !strings.Contains(res.stderr+res.stdout, "Read-only file system") {
		t.Errorf("write to a :ro bind: exit %d, %q", res.code, res.stderr)
	}
	b.mustRun("run", "--rm", "-v", host+":/data", busyboxRef, "touch", "/data/x")
	if _, err := os.Stat(filepath.Join(host, "x")); err != nil {
		t.Errorf("write to a rw bind: %v", err)
	}
	if res := b.run("run", "--rm", "-v", "rel/dir:/data", busyboxRef, "true"); res.code != 125 || !strings.Contains(res.stderr, `"rel/dir" is neither a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+) nor an absolute host path`) {
		t.Errorf("a relative -v: exit %d, stderr %q", res.code, res.stderr)
	}
	res = b.run("run", "--rm", "--read-only", "--tmpfs", "/scratch", busyboxRef, "sh", "-c", "touch /scratch/x && echo tmpfs ok; touch /x")
	if res.code == 0 || res.stdout != "tmpfs ok\n" || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("--read-only --tmpfs: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	// Docker's default capabilities and seccomp; --cap-drop, --privileged.
	status := func(args ...string) string {
		return b.mustRun(append(append([]string{"run", "--rm"}, args...), busyboxRef, "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status")...).stdout
	}
	if got := status(); got != "CapEff:\t00000000a80425fb\nSeccomp:\t2\n" {
		t.Errorf("default capabilities and seccomp: %q, want docker's set (a80425fb) and a filter", got)
	}
	if got := status("--cap-drop", "ALL", "--cap-add", "kill"); got != "CapEff:\t0000000000000020\nSeccomp:\t2\n" {
		t.Errorf("--cap-drop ALL --cap-add kill: %q", got)
	}
	if got := status("--security-opt", "seccomp=unconfined"); !strings.HasSuffix(got, "Seccomp:\t0\n") {
		t.Errorf("seccomp=unconfined: %q", got)
	}
	if got := b.mustRun("run", "--rm", "--ulimit", "nofile=100:200", busyboxRef, "sh", "-c", "ulimit -n; ulimit -Hn").stdout; got != "100\n200\n" {
		t.Errorf("--ulimit nofile=100:200: %q", got)
	}
	profile := filepath.Join(dir, "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := b.run("run", "--rm", "--security-opt", "seccomp="+profile, busyboxRef, "mkdir", "/x"); res.code == 0 || !strings.Contains(res.stderr, "Operation not permitted") {
		t.Errorf("a seccomp profile file that denies mkdir: exit %d, stderr %q", res.code, res.stderr)
	}

	// Namespaces: --net none has lo alone; host modes share the host's.
	if got := b.mustRun("run", "--rm", "--net", "none", busyboxRef, "ls", "/sys/class/net").stdout; got != "lo\n" {
		t.Errorf("--net none: interfaces %q, want lo alone", got)
	}
	for _, ns := range []struct{ flag, name string }{{"--net", "net"}, {"--pid", "pid"}, {"--ipc", "ipc"}, {"--uts", "uts"}} {
		host, _ := os.Readlink("/proc/self/ns/" + ns.name)
		got := strings.TrimSpace(b.mustRun("run", "--rm", ns.flag, "host", busyboxRef, "readlink", "/proc/self/ns/"+ns.name).stdout)
		if got != host {
			t.Errorf("%s host: namespace %s, want the host's %s", ns.flag, got, host)
		}
	}

	// Environment files, sysctls, /dev/shm, groups, a tmpfs --mount.
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=1\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = b.mustRun("run", "--rm", "--env-file", envFile, "-e", "BOTH=flag", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "2m",
		"--group-add", "10", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", busyboxRef,
		"sh", "-c", `echo $FROM_FILE $BOTH $(cat /proc/sys/net/ipv4/ip_forward) $(id -G); df -k /dev/shm /scratch | awk 'NR>1 {print $2}'`)
	if res.stdout != "1 flag 1 0 10\n2048\n1024\n" {
		t.Errorf("--env-file -e --sysctl --group-add --shm-size --mount tmpfs: %q", res.stdout)
	}
}

// TestBerthRunSession covers run's session flags: stdin (-i), a tty
// (-t), --cidfile, --init, --stop-signal, the restart label, and an OOM
// kill that inspect reports.
func TestBerthRunSession(t *testing.T) {
	b, dir := newBerthWithBusybox(t)

	if res := b.runInput(strings.NewReader("from stdin\n"), "run", "--rm", "-i", busyboxRef, "cat"); res.code != 0 || res.stdout != "from stdin\n" {
		t.Errorf("run -i cat: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if res := b.mustRun("run", "--rm", "-t", busyboxRef, "sh", "-c", "tty; echo $TERM"); res.stdout != "/dev/pts/0\r\nxterm\r\n" {
		t.Errorf("run -t: %q, want a pty and TERM=xterm", res.stdout)
	}
	if res := b.runInput(strings.NewReader(""), "run", "--rm", "-it", busyboxRef, "true"); res.code != 125 || !strings.Contains(res.stderr, "the input device is not a TTY") {
		t.Errorf("run -it without a terminal: exit %d, stderr %q", res.code, res.stderr)
	}

	// -d -i: sh waits on a stdin that stays open, as under docker; what is
	// written to the container's stdin fifo reaches it.
	shID := strings.TrimSpace(b.mustRun("run", "-di", "--name", "waiting", busyboxRef, "sh").stdout)
	b.mustRun("run", "-dit", "--name", "waiting-tty", busyboxRef, "sh")
	fifo, err := os.OpenFile(filepath.Join(dir, "data", "containers", shID, "stdin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("open the stdin fifo of a -di container: %v", err)
	}
	fmt.Fprintln(fifo, "touch /got-stdin")
	fifo.Close()
	for deadline := time.Now().Add(10 * time.Second); b.run("exec", "waiting", "test", "-e", "/got-stdin").code != 0; {
		if time.Now().After(deadline) {
			t.Fatal("a line written to the stdin fifo of a -di sh was not run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := b.mustRun("ps", "--filter", "name=waiting", "--format", "{{.Names}} {{.State}}"); res.stdout != "waiting-tty running\nwaiting running\n" {
		t.Errorf("run -di and -dit of sh: %q, want both running", res.stdout)
	}

	cidfile := filepath.Join(dir, "cid")
	id := strings.TrimSpace(b.mustRun("run", "-d", "--cidfile", cidfile, "--name", "limited", "--restart", "on-failure:2", "--stop-signal", "USR1", "-l", "app=web",
		"-m", "32m", "--memory-swap", "32m", busyboxRef, "sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.1; done").stdout)
	if b, err := os.ReadFile(cidfile); err != nil || string(b) != id {
		t.Errorf("--cidfile holds %q (%v), want %s", b, err, id)
	}
	info := b.ctr(dir, "containers", "info", id)
	for _, want := range []string{`"berth/name": "limited"`, `"berth/restart": "on-failure:2"`, `"app": "web"`, `"io.containerd.image.config.stop-signal": "USR1"`} {
		if !strings.Contains(info, want) {
			t.Errorf("the container's labels lack %s", want)
		}
	}
	if res := b.mustRun("ps", "--filter", "label=app=web", "--format", "{{.Names}} {{.Label \"app\"}}"); res.stdout != "limited web\n" {
		t.Errorf("ps --filter label=app=web: %q", res.stdout)
	}
	b.mustRun("stop", "limited")
	if res := b.mustRun("inspect", "-f", "{{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "limited"); res.stdout != "42 on-failure:2\n" {
		t.Errorf("stop with --stop-signal USR1: %q, want the trap's 42", res.stdout)
	}

	// --cpus caps a busy loop; stats measures it.
	b.mustRun("run", "-d", "--name", "busy", "--cpus", "0.3", busyboxRef, "sh", "-c", "while :; do :; done")
	res := b.mustRun("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.PIDs}}", "busy")
	var cpu float64
	if _, err := fmt.Sscanf(res.stdout, "busy %f%% 1\n", &cpu); err != nil || cpu <= 1 || cpu > 40 {
		t.Errorf("stats of a busy loop under --cpus 0.3: %q (%v), want near 30%%", res.stdout, err)
	}
	if res := b.mustRun("stats", "--no-stream"); !regexp.MustCompile(`^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS\n`).MatchString(res.stdout) || !strings.Contains(res.stdout, " busy ") {
		t.Errorf("stats --no-stream:\n%s", res.stdout)
	}

	res = b.run("run", "--name", "hog", "-m", "32m", "--memory-swap", "32m", busyboxRef, "sh", "-c", "head -c 200m /dev/zero | tail >/dev/null")
	if res.code != 137 {
		t.Errorf("a 200m hog under -m 32m: exit %d, want 137; stderr %q", res.code, res.stderr)
	}
	if res := b.mustRun("inspect", "-f", "{{.State.OOMKilled}} {{.State.Status}}", "hog"); res.stdout != "true exited\n" {
		t.Errorf("inspect of the OOM-killed hog: %q", res.stdout)
	}

	if _, err := exec.LookPath("tini-static"); err != nil {
		t.Logf("no tini-static (Debian's tini): --init not checked")
		return
	}
	if res := b.mustRun("run", "--rm", "--init", busyboxRef, "ps", "-o", "pid,args"); !strings.Contains(res.stdout, "1 /sbin/docker-init -- ps") {
		t.Errorf("run --init: the init is not pid 1:\n%s", res.stdout)
	}
}

// TestBerthContainerLifecycle drives a detached container through the
// commands a user stops, inspects, execs into and removes it with.
func TestBerthContainerLifecycle(t *testing.T) {
	b, dir := newBerthWithBusybox(t)

	id := strings.TrimSpace(b.mustRun("run", "-d", "--name", "sleeper", busyboxRef, "sleep", "1000").stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("run -d printed %q, want a 64-hex container ID", id)
	}
	if res := b.mustRun("ps"); !regexp.MustCompile(`(?m)^` + id[:12] + ` +` + busyboxRef + ` +"sleep 1000" +.* +Up .* +sleeper$`).MatchString(res.stdout) {
		t.Fatalf("ps does not show sleeper up:\n%s", res.stdout)
	}

	// inspect: docker's shape, and a pid in a pid namespace of its own.
	pid, err := strconv.Atoi(strings.TrimSpace(b.mustRun("inspect", "-f", "{{.State.Pid}}", "sleeper").stdout))
	if err != nil || pid <= 0 {
		t.Fatalf("inspect -f {{.State.Pid}}: %v", err)
	}
	theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	ours, _ := os.Readlink("/proc/self/ns/pid")
	if theirs == "" || theirs == ours {
		t.Errorf("the container's pid namespace %q is the host's %q", theirs, ours)
	}
	var inspected []struct {
		ID    string `json:"Id"`
		Name  string
		State struct {
			Status  string
			Running bool
			Pid     int
		}
		Config struct {
			Image string
			Cmd   []string
		}
		HostConfig struct{ LogConfig struct{ Type string } }
		LogPath    string
	}
	if err := json.Unmarshal([]byte(b.mustRun("inspect", id[:8]).stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("inspect by ID prefix: %v", err)
	}
	got := inspected[0]
	wantLog := filepath.Join(dir, "data", "containers", id, id+"-json.log")
	if got.ID != id || got.Name != "/sleeper" || got.State.Status != "running" || !got.State.Running || got.State.Pid != pid ||
		got.Config.Image != busyboxRef || strings.Join(got.Config.Cmd, " ") != "sleep 1000" || got.HostConfig.LogConfig.Type != "json-file" || got.LogPath != wantLog {
		t.Errorf("inspect sleeper: %+v", got)
	}
	// .Config holds the image's settings where the flags gave none.
	if res := b.mustRun("inspect", "-f", "{{json .Config.Env}} {{.Config.Hostname}} {{.Config.WorkingDir}}", "sleeper"); res.stdout != `["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] `+id[:12]+" \n" {
		t.Errorf("inspect .Config: %q", res.stdout)
	}
	// The shim finds the log's path in the spec's annotations.
	if info := b.ctr(dir, "containers", "info", id); !strings.Contains(info, `"io.berth.log.path": "`+wantLog+`"`) {
		t.Errorf("the container's spec has no io.berth.log.path %s:\n%s", wantLog, info)
	}

	// exec prints its output and passes its status through.
	if res := b.mustRun("exec", "-e", "WHO=exec", "-w", "/tmp", "sleeper", "sh", "-c", "echo $WHO in $(pwd)"); res.stdout != "exec in /tmp\n" {
		t.Errorf("exec: %q", res.stdout)
	}
	if res := b.run("exec", "sleeper", "sh", "-c", "exit 7"); res.code != 7 {
		t.Errorf("exec of exit 7: exit %d", res.code)
	}
	if res := b.mustRun("top", "sleeper"); !strings.Contains(res.stdout, "PID") || !strings.Contains(res.stdout, "sleep 1000") {
		t.Errorf("top:\n%s", res.stdout)
	}

	// rm of a running container needs -f.
	if res := b.run("rm", "sleeper"); res.code != 125 || !strings.Contains(res.stderr, "force remove with -f") {
		t.Errorf("rm of a running container: exit %d, stderr %q; want 125 naming -f", res.code, res.stderr)
	}

	b.mustRun("pause", "sleeper")
	if st := b.mustRun("inspect", "-f", "{{.State.Status}}", "sleeper").stdout; st != "paused\n" {
		t.Errorf("after pause: %q", st)
	}
	b.mustRun("unpause", "sleeper")
	b.mustRun("run", "-d", "--name", "frozen", busyboxRef, "sleep", "1000")
	b.mustRun("pause", "frozen")
	if res := b.mustRun("rm", "-f", "frozen"); res.stdout != "frozen\n" {
		t.Errorf("rm -f of a paused container: %q", res.stdout)
	}

	// update changes a running container's cgroup and berth's record.
	b.mustRun("update", "-m", "64m", "--pids-limit", "20", "sleeper")
	res := b.mustRun("exec", "sleeper", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
	if res.stdout != "67108864\n20\n" {
		t.Errorf("cgroup limits after update -m 64m --pids-limit 20: %q", res.stdout)
	}
	if res := b.mustRun("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "sleeper"); res.stdout != "67108864 20\n" {
		t.Errorf("inspect after update: %q", res.stdout)
	}

	// stop: sleep as pid 1 ignores SIGTERM, so SIGKILL comes after -t.
	start := time.Now()
	if res := b.mustRun("stop", "-t", "1", "sleeper"); res.stdout != "sleeper\n" {
		t.Errorf("stop: %q", res.stdout)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("stop -t 1 took %v", took)
	}
	if st := b.mustRun("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "sleeper").stdout; st != "exited 137 false\n" {
		t.Errorf("after stop: %q", st)
	}
	if l := b.ctr(dir, "containers", "info", id); !strings.Contains(l, `"berth/stopped-by-user": "true"`) {
		t.Errorf("stop did not mark the container stopped by the user")
	}
	if res := b.mustRun("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}"); !regexp.MustCompile(`^sleeper Exited \(137\) .* ago\n$`).MatchString(res.stdout) {
		t.Errorf("ps -a --filter status=exited: %q", res.stdout)
	}

	// start again, kill, wait.
	b.mustRun("start", "sleeper")
	if st := b.mustRun("inspect", "-f", "{{.State.Status}}", "sleeper").stdout; st != "running\n" {
		t.Errorf("after start: %q", st)
	}
	if l := b.ctr(dir, "containers", "info", id); strings.Contains(l, "berth/stopped-by-user") {
		t.Errorf("start left the stopped-by-user mark")
	}
	b.mustRun("kill", "-s", "TERM", "sleeper") // ignored by pid 1
	b.mustRun("kill", "sleeper")
	if res := b.mustRun("wait", "sleeper"); res.stdout != "137\n" {
		t.Errorf("wait after kill: %q", res.stdout)
	}

	// start -a attaches and passes the exit status through; a wait begun
	// before the container ever ran sees that exit.
	b.mustRun("create", "--name", "once", busyboxRef, "sh", "-c", "echo attached; exit 2")
	waited := make(chan result, 1)
	go func() { waited <- b.run("wait", "once") }()
	// Whether the wait starts before the run or after it, it gives 2.
	if res := b.run("start", "-a", "once"); res.code != 2 || res.stdout != "attached\n" {
		t.Errorf("start -a: exit %d, stdout %q", res.code, res.stdout)
	}
	if res := <-waited; res.code != 0 || res.stdout != "2\n" {
		t.Errorf("wait on a container that had not run yet: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	b.mustRun("rename", "once", "twice")
	if res := b.run("inspect", "once"); res.code != 125 || !strings.Contains(res.stderr, "No such object: once") {
		t.Errorf("inspect of the old name: exit %d, %q", res.code, res.stderr)
	}
	if res := b.run("rename", "twice", "sleeper"); res.code != 125 || !strings.Contains(res.stderr, `"/sleeper" is already in use`) {
		t.Errorf("rename onto a taken name: exit %d, %q", res.code, res.stderr)
	}

	b.mustRun("rm", "sleeper")
	if res := b.mustRun("container", "prune", "-f"); !strings.Contains(res.stdout, "Deleted Containers:\n") {
		t.Errorf("container prune: %q", res.stdout)
	}
	if res := b.mustRun("ps", "-aq"); res.stdout != "" {
		t.Errorf("containers left after rm and prune: %q", res.stdout)
	}
	if out := b.ctr(dir, "containers", "ls", "-q"); out != "" {
		t.Errorf("containerd still has containers: %q", out)
	}
}

// TestBerthContainerFiles covers cp (both ways, stopped and running),
// diff and export.
func TestBerthContainerFiles(t *testing.T) {
	b, dir := newBerthWithBusybox(t)

	b.mustRun("run", "--name", "changed", busyboxRef, "sh", "-c", "echo hi > /new; rm /bin/vi; mkdir /d; echo x > /d/f")
	if res := b.mustRun("diff", "changed"); res.stdout != "D /bin/vi\nA /d\nA /d/f\nA /new\n" {
		t.Errorf("diff:\n%s", res.stdout)
	}
	tarball := filepath.Join(dir, "export.tar")
	b.mustRun("export", "-o", tarball, "changed")
	if out, err := exec.Command("tar", "-tf", tarball).Output(); err != nil || !strings.Contains(string(out), "\nnew\n") || !strings.Contains(string(out), "bin/busybox\n") {
		t.Errorf("export -o: tar lists %v:\n%.300s", err, out)
	}

	// An export whose reader goes away leaves no mount of the rootfs.
	cmd := exec.Command(b.bin, "--config", b.config, "export", "changed")
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(pipe, make([]byte, 512))
	pipe.Close()
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 125 {
		t.Errorf("export to a closed pipe: %v, want exit 125", err)
	}
	leaked, _ := mountinfo.GetMounts(func(m *mountinfo.Info) (bool, bool) { return !strings.Contains(m.VFSOptions, dir), false })
	for _, m := range leaked {
		t.Errorf("export to a closed pipe left %s mounted", m.Mountpoint)
		unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		os.Remove(m.Mountpoint)
	}

	host := t.TempDir()
	b.mustRun("cp", "changed:/new", filepath.Join(host, "new"))
	b.mustRun("cp", "changed:/d", host)
	for file, want := range map[string]string{"new": "hi\n", "d/f": "x\n"} {
		if got, err := os.ReadFile(filepath.Join(host, file)); err != nil || string(got) != want {
			t.Errorf("cp out of a stopped container: %s holds %q (%v), want %q", file, got, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(host, "script"), []byte("#!/bin/sh\necho copied in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.mustRun("cp", filepath.Join(host, "script"), "changed:/bin/")
	b.mustRun("run", "-d", "--name", "live", busyboxRef, "sleep", "1000")
	b.mustRun("cp", filepath.Join(host, "script"), "live:/tmp/script")
	if res := b.mustRun("exec", "live", "/tmp/script"); res.stdout != "copied in\n" {
		t.Errorf("cp into a running container, then exec: %q", res.stdout)
	}
	b.mustRun("cp", "live:/etc/hostname", filepath.Join(host, "hostname"))
	if got, _ := os.ReadFile(filepath.Join(host, "hostname")); len(got) != 13 {
		t.Errorf("cp out of a running container: hostname %q", got)
	}
	// A symlink in the container resolves inside the container's root.
	b.mustRun("exec", "live", "ln", "-s", "/", "/tmp/escape")
	b.mustRun("cp", "live:/tmp/escape/etc/hostname", filepath.Join(host, "through-link"))
	hostname, _ := os.ReadFile(filepath.Join(host, "hostname"))
	if got, _ := os.ReadFile(filepath.Join(host, "through-link")); string(got) != string(hostname) {
		t.Errorf("cp through a symlink to /: %q, want the container's hostname %q", got, hostname)
	}
	// Copying in through the same symlink stays inside too.
	marker := fmt.Sprintf("berth-cp-%d", time.Now().UnixNano())
	b.mustRun("cp", filepath.Join(host, "script"), "live:/tmp/escape/etc/"+marker)
	if _, err := os.Stat("/etc/" + marker); err == nil {
		os.Remove("/etc/" + marker)
		t.Errorf("cp into a container through a symlink to / wrote the host's /etc/%s", marker)
	}
	b.mustRun("exec", "live", "test", "-x", "/etc/"+marker)

	// A tree with a symlink goes in and comes out as it was.
	tree := filepath.Join(host, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "sub", "f"), []byte("leaf\n"), 0o640)
	os.Symlink("sub/f", filepath.Join(tree, "link"))
	b.mustRun("cp", tree, "live:/")
	if res := b.mustRun("exec", "live", "sh", "-c", "cat /tree/link; stat -c %a /tree/sub /tree/sub/f; readlink /tree/link"); res.stdout != "leaf\n750\n640\nsub/f\n" {
		t.Errorf("a tree copied in: %q", res.stdout)
	}
	back := filepath.Join(host, "back")
	b.mustRun("cp", "live:/tree/.", back)
	if link, err := os.Readlink(filepath.Join(back, "link")); err != nil || link != "sub/f" {
		t.Errorf("the tree copied back out: link %q (%v)", link, err)
	}
	if got, err := os.ReadFile(filepath.Join(back, "sub", "f")); err != nil || string(got) != "leaf\n" {
		t.Errorf("the tree copied back out: sub/f %q (%v)", got, err)
	}

	b.mustRun("rm", "-f", "live")
	if res := b.mustRun("diff", "changed"); !strings.Contains(res.stdout, "A /bin/script\n") {
		t.Errorf("diff after cp into the stopped container:\n%s", res.stdout)
	}
}

// TestBerthDeviceReadBps reads a loop device under --device-read-bps
// 1mb: 3 MiB take about three seconds more than without the limit.
func TestBerthDeviceReadBps(t *testing.T) {
	b, dir := newBerthWithBusybox(t)
	backing := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(backing, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		t.Skipf("no loop device to throttle: losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	read := func(limit ...string) time.Duration {
		args := append(append([]string{"run", "--rm", "--device", dev}, limit...), busyboxRef, "dd", "if="+dev, "of=/dev/null", "bs=512k", "count=6", "iflag=direct")
		start := time.Now()
		b.mustRun(args...)
		return time.Since(start)
	}
	free := read()
	limited := read("--device-read-bps", dev+":1mb")
	if limited-free < 2*time.Second {
		t.Errorf("3 MiB at --device-read-bps 1mb took %v, without the limit %v: want about 3s more", limited, free)
	}
}

// TestBerthResolve names containers as docker does: by full ID, name and
// unique ID prefix; an ambiguous prefix is refused, naming the candidates.
func TestBerthResolve(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	// 17 IDs: two of them share a first hex digit.
	byFirst := map[byte][]string{}
	var shared []string
	created := 0
	for ; created < 17 && shared == nil; created++ {
		id := strings.TrimSpace(b.mustRun("create", busyboxRef, "true").stdout)
		byFirst[id[0]] = append(byFirst[id[0]], id)
		if len(byFirst[id[0]]) == 2 {
			shared = byFirst[id[0]]
		}
	}
	if shared == nil {
		t.Fatal("17 IDs with 16 first digits, and no two alike")
	}
	res := b.run("inspect", "-f", "{{.Id}}", shared[0][:1])
	if res.code != 125 || !strings.Contains(res.stderr, "multiple IDs found with provided prefix: "+shared[0][:1]) ||
		!strings.Contains(res.stderr, shared[0]) || !strings.Contains(res.stderr, shared[1]) {
		t.Errorf("inspect of an ambiguous prefix: exit %d, stderr %q; want 125 naming %v", res.code, res.stderr, shared)
	}
	for _, ref := range []string{shared[0], shared[0][:12]} {
		if res := b.mustRun("inspect", "-f", "{{.Id}}", ref); res.stdout != shared[0]+"\n" {
			t.Errorf("inspect %s: %q", ref, res.stdout)
		}
	}
	name := strings.TrimPrefix(strings.TrimSpace(b.mustRun("inspect", "-f", "{{.Name}}", shared[1]).stdout), "/")
	if !regexp.MustCompile(`^[a-z]+_[a-z]+\d*$`).MatchString(name) {
		t.Errorf("a generated name %q is not docker's adjective_surname", name)
	}
	if res := b.mustRun("inspect", "-f", "{{.Id}}", name); res.stdout != shared[1]+"\n" {
		t.Errorf("inspect by the generated name %s: %q", name, res.stdout)
	}
	// The top-level inspect falls back to images; `container inspect`
	// does not.
	if res := b.mustRun("inspect", "-f", "{{.Os}}", busyboxRef); res.stdout != "linux\n" {
		t.Errorf("inspect of an image: %q", res.stdout)
	}
	if res := b.run("container", "inspect", busyboxRef); res.code != 125 || !strings.Contains(res.stderr, "No such container: "+busyboxRef) {
		t.Errorf("container inspect of an image: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := b.mustRun("container", "ls", "-aq"); len(strings.Fields(res.stdout)) != created {
		t.Errorf("container ls -aq: %q", res.stdout)
	}
	if res := b.run("rm", "nosuch"); res.code != 125 || !strings.Contains(res.stderr, "No such container: nosuch") {
		t.Errorf("rm nosuch: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestBerthRunTerminal runs `berth run -it` at a terminal: the container
// gets the terminal's size and follows a resize, what is typed reaches
// it, and berth leaves the terminal as it found it.
func TestBerthRunTerminal(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	cmd := exec.Command(b.bin, "--config", b.config, "run", "--rm", "-it", busyboxRef, "sh")
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	p := onPty(t, cmd)
	at := p.waitFor("# ", 0, 30*time.Second)
	p.typeLine("stty size")
	at = p.waitFor("24 80", at, 10*time.Second)
	if err := p.master.Resize(console.WinSize{Height: 40, Width: 100}); err != nil {
		t.Fatal(err)
	}
	// The resize reaches the container through berth's SIGWINCH relay.
	for deadline := time.Now().Add(10 * time.Second); ; {
		p.typeLine("stty size")
		if strings.Contains(p.output()[at:], "40 100") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not follow the terminal's resize: %q", p.output()[at:])
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.typeLine("exit 3")
	if code := p.wait(30 * time.Second); code != 3 {
		t.Errorf("run -it: exit %d, want the shell's 3", code)
	}

	// exec -it gets a tty of its own in a running container.
	b.mustRun("run", "-d", "--name", "tty-host", busyboxRef, "sleep", "1000")
	cmd = exec.Command(b.bin, "--config", b.config, "exec", "-it", "tty-host", "sh", "-c", "tty; stty size; read line; echo got $line")
	cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS=", "CONTAINERD_NAMESPACE=")
	e := onPty(t, cmd)
	at = e.waitFor("/dev/pts/", 0, 30*time.Second)
	at = e.waitFor("24 80", at, 10*time.Second)
	e.typeLine("typed")
	e.waitFor("got typed", at, 10*time.Second)
	if code := e.wait(30 * time.Second); code != 0 {
		t.Errorf("exec -it: exit %d", code)
	}

	// The pair's settings, read through the master: out of raw mode.
	tio, err := unix.IoctlGetTermios(int(p.master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("berth left the terminal raw: lflag %#x", tio.Lflag)
	}
}
