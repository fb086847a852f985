package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// swapProcHook is a createRuntime hook that does, on the host, what a
// second container sharing this rootfs could do while create runs (the
// CVE-2025-52881 class): it renames the rootfs's proc directory, on which
// init has already mounted the container's procfs (the mount moves with
// the rename, the kernel allows a rename from another mount namespace),
// and puts a fake /proc in its place. The fake has a sysctl file to catch
// writes and self links leading back to the real procfs, so that a runtime
// that goes through /proc/self/fd by path still gets through create.
const swapProcHook = `set -e
state=$(cat)
bundle=$(echo "$state" | sed 's/.*"bundle":"\([^"]*\)".*/\1/')
cd "$bundle/rootfs"
mv proc realproc
mkdir -p proc/sys/net/ipv4
echo fake > proc/sys/net/ipv4/ip_forward
ln -s /realproc/self proc/self
ln -s /realproc/thread-self proc/thread-self`

func TestProcSwappedDuringCreate(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", swapProcHook}}}}
	}, "sh", "-c", `
		grep -q ' /realproc/sys ' /realproc/self/mountinfo || echo procsys-not-readonly
		grep -q ' /realproc/keys ' /realproc/self/mountinfo || echo keys-not-masked
		echo x > /realproc/sys/kernel/hostname 2>/dev/null && echo procsys-writable
		echo done`)
	id := newID(t)
	res := r.run("run", "-b", b, id)
	fake, err := os.ReadFile(filepath.Join(b, "rootfs/proc/sys/net/ipv4/ip_forward"))
	if err != nil {
		t.Fatalf("the hook did not run: %v (run: exit %d %s)", err, res.code, res.stderr)
	}
	if string(fake) != "fake\n" {
		t.Errorf("the sysctl was written to the fake /proc the hook put in the rootfs: it now holds %q", fake)
	}
	for _, leak := range []string{"not-readonly", "not-masked", "writable"} {
		if strings.Contains(res.stdout, leak) {
			t.Errorf("the container's real procfs was left unprotected: %q", res.stdout)
			break
		}
	}
	// Nothing verified can be found at /proc any more: create must fail,
	// say why, and leave nothing behind.
	t.Logf("run: exit %d: %s", res.code, res.stderr)
	if res.code == 0 || !strings.Contains(res.stderr, "/proc") {
		t.Errorf("run: exit %d, stderr %q: want a failure naming /proc", res.code, res.stderr)
	}
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("failed create left %q", out)
	}
}

func TestLoopbackUpInNewNetNS(t *testing.T) {
	r := newRT(t)
	// httpd bound to 127.0.0.1 (and to ::1 where the kernel has IPv6),
	// and a client in the same container that retries until it listens
	// (busybox's nc: its wget crashes in Debian's static build).
	b := busybox(t, nil, "sh", "-c", `
		ip -o link show lo; ip -o addr show lo
		mkdir -p /dev/shm/www && echo hello-lo > /dev/shm/www/index.html
		fetch() {
			i=0
			while [ $i -lt 100 ]; do
				printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc "$1" "$2" 2>/dev/null | grep hello-lo && return
				i=$((i+1)); sleep 0.05
			done
			echo "no answer from $1 $2"
		}
		httpd -p 127.0.0.1:8080 -h /dev/shm/www && fetch 127.0.0.1 8080
		if [ -e /proc/sys/net/ipv6 ]; then
			echo has-ipv6
			httpd -p '[::1]:8081' -h /dev/shm/www && fetch ::1 8081
		fi`)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("run: exit %d %s", res.code, res.stderr)
	}
	out := res.stdout
	link := strings.SplitN(out, "\n", 2)[0]
	if !strings.Contains(link, "lo:") || !strings.Contains(link, ",UP") {
		t.Errorf("lo is not up in the container's new network namespace: %q", link)
	}
	want := []string{"inet 127.0.0.1/8"}
	if strings.Contains(out, "has-ipv6") {
		want = append(want, "inet6 ::1/128")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	answers := 1
	if strings.Contains(out, "has-ipv6") {
		answers = 2
	}
	if strings.Contains(out, "no answer") || strings.Count(out, "hello-lo") != answers {
		t.Errorf("a server on loopback was not reachable from inside:\n%s%s", out, res.stderr)
	}
}

// TestProcWritesReachContainer: the sysctls (written by init through a
// private procfs) and oomScoreAdj (written by the parent, from the host)
// land on the container, with or without a user namespace, and not on the
// host.
func TestProcWritesReachContainer(t *testing.T) {
	const key = "/proc/sys/net/ipv4/ip_forward"
	hostBefore, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	want := "1\n500\n"
	if strings.TrimSpace(string(hostBefore)) == "1" {
		t.Skip("the host forwards IPv4 already: a write to it would not show")
	}
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
	}{
		{"own namespaces", nil},
		{"user namespace", withUserNS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRT(t)
			adj := 500
			b := busybox(t, func(s *specs.Spec) {
				if tc.edit != nil {
					tc.edit(s)
				}
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
				s.Process.OOMScoreAdj = &adj
			}, "sh", "-c", "cat "+key+" /proc/self/oom_score_adj")
			openToMappedRoot(t, b)
			res := r.run("run", "-b", b, newID(t))
			if res.code != 0 || res.stdout != want {
				t.Errorf("run: exit %d, output %q (stderr %q), want %q", res.code, res.stdout, res.stderr, want)
			}
			if after, _ := os.ReadFile(key); string(after) != string(hostBefore) {
				t.Errorf("the host's %s changed from %q to %q", key, hostBefore, after)
			}
		})
	}
}

// An exec'd process gets its own oomScoreAdj from the parent too.
func TestExecOOMScoreAdj(t *testing.T) {
	r := newRT(t)
	id := sleeper(t, r, withUserNS)
	adj := 700
	p := specs.Process{Args: []string{"cat", "/proc/self/oom_score_adj"}, Cwd: "/", Env: []string{"PATH=/bin"}, OOMScoreAdj: &adj}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	procFile := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(procFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := r.must("exec", "-p", procFile, id); out != "700\n" {
		t.Fatalf("exec'd process has oom_score_adj %q, want 700", out)
	}
}

// TestTimeOffsetsNotThroughContainerProc: a container that joins another's
// mount namespace and makes a new time namespace writes the offsets
// through a verified procfs. The joined namespace's /proc is the other
// container's to replace: here it is no procfs at all, and its
// self/timens_offsets a link the write would follow into that container's
// files.
func TestTimeOffsetsNotThroughContainerProc(t *testing.T) {
	r := newRT(t)
	owner := busybox(t, func(s *specs.Spec) { s.Root.Readonly = false }, "sleep", "300")
	ownerID := newID(t)
	r.must("run", "-d", "-b", owner, ownerID)
	pid := r.state(ownerID).Pid
	if out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-m", "umount", "-l", "/proc").CombinedOutput(); err != nil {
		t.Fatalf("unmount the owner's /proc: %v: %s", err, out)
	}
	fake := filepath.Join(owner, "rootfs/proc/self")
	if err := os.MkdirAll(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/landed", filepath.Join(fake, "timens_offsets")); err != nil {
		t.Fatal(err)
	}
	b := busybox(t, func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.MountNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/mnt", pid)
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1000}}
	}, "true")
	res := r.run("run", "-b", b, newID(t))
	if landed, err := os.ReadFile(filepath.Join(owner, "rootfs/landed")); err == nil {
		t.Fatalf("the time offsets were written through the joined namespace's fake /proc into %q (run: exit %d, %s)", landed, res.code, res.stderr)
	}
}
