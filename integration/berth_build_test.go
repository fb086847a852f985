package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/integration/registry"
)

// buildContext writes files (path → content) into a new context dir.
func buildContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBerthBuildBasics builds a Dockerfile with FROM, RUN (both forms),
// COPY, and the metadata instructions, and checks what run, inspect and
// history show; a rebuild comes entirely from the cache.
func TestBerthBuildBasics(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	ctxDir := buildContext(t, map[string]string{
		"Dockerfile": `FROM ` + busyboxRef + `
ENV GREETING=hello
ARG WHO=world
LABEL org.test.stage="basics"
WORKDIR /app
RUN echo "$GREETING $WHO" > greeting.txt
RUN ["/bin/sh", "-c", "echo exec-form >> /app/greeting.txt"]
COPY hello.txt conf/
COPY --chmod=0755 script.sh /usr/local/bin/script
USER 1000:1000
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/script"]
CMD ["arg1"]
`,
		"hello.txt": "from the context\n",
		"script.sh": "#!/bin/sh\ncat /app/greeting.txt /app/conf/hello.txt\necho \"args: $*\"\nid -u\n",
	})
	res := b.mustRun("build", "-t", "berthtest/basics:1", "--build-arg", "WHO=berth", ctxDir)
	for _, want := range []string{"Step 1/15 : FROM " + busyboxRef, "Step 6/15 : RUN echo", "Successfully built ", "Successfully tagged berthtest/basics:1"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("build output lacks %q:\n%s", want, res.stdout)
		}
	}
	out := b.mustRun("run", "--rm", "berthtest/basics:1").stdout
	if want := "hello berth\nexec-form\nfrom the context\nargs: arg1\n1000\n"; out != want {
		t.Errorf("run: got %q, want %q", out, want)
	}
	inspect := b.mustRun("image", "inspect", "--format",
		"{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{.Config.StopSignal}}|{{index .Config.Labels \"org.test.stage\"}}|{{json .Config.Env}}",
		"berthtest/basics:1").stdout
	if want := `/app|1000:1000|{"8080/tcp":{}}|{"/data":{}}|SIGTERM|basics|`; !strings.HasPrefix(inspect, want) || !strings.Contains(inspect, `GREETING=hello`) || strings.Contains(inspect, "WHO=") {
		t.Errorf("inspect: got %q, want %q… with GREETING and without the ARG", inspect, want)
	}
	history := b.mustRun("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "berthtest/basics:1").stdout
	for _, want := range []string{"RUN /bin/sh -c echo \"$GREETING $WHO\" > greeting.txt|", "COPY hello.txt conf/|", "ENV GREETING=hello|0\n", "CMD [\"arg1\"]|0\n"} {
		if !strings.Contains(history, want) {
			t.Errorf("history lacks %q:\n%s", want, history)
		}
	}

	start := time.Now()
	again := b.mustRun("build", "-t", "berthtest/basics:2", "--build-arg", "WHO=berth", ctxDir).stdout
	t.Logf("a cached rebuild of 15 steps took %v (a figure, not a check)", time.Since(start))
	if n, want := strings.Count(again, "Using cache"), 13; n != want {
		t.Errorf("rebuild: %d steps from the cache, want %d (all but FROM and ARG):\n%s", n, want, again)
	}
	id1 := b.mustRun("image", "inspect", "--format", "{{.ID}}", "berthtest/basics:1").stdout
	id2 := b.mustRun("image", "inspect", "--format", "{{.ID}}", "berthtest/basics:2").stdout
	if id1 != id2 {
		t.Errorf("a cached rebuild made another image: %s vs %s", id1, id2)
	}
	// Another build arg changes every step after it.
	iid := filepath.Join(t.TempDir(), "iid")
	other := b.mustRun("build", "-q", "--iidfile", iid, "-t", "berthtest/basics:you", "--build-arg", "WHO=you", ctxDir).stdout
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(other) {
		t.Errorf("build -q: got %q, want the image ID alone", other)
	}
	if data, err := os.ReadFile(iid); err != nil || string(data) != strings.TrimSpace(other) {
		t.Errorf("--iidfile: got %q (%v), want %q", data, err, strings.TrimSpace(other))
	}
	if out := b.mustRun("run", "--rm", "berthtest/basics:you").stdout; !strings.HasPrefix(out, "hello you\n") {
		t.Errorf("run of the build with WHO=you: %q", out)
	}
}

// TestBerthBuildWorkdir: WORKDIR makes its directory when the image
// lacks it, owned by the USER in effect (a layer), and none when it is
// there; `COPY f .` copies into it, as the course's Python lab does.
func TestBerthBuildWorkdir(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	ctxDir := buildContext(t, map[string]string{
		"Dockerfile": "FROM " + busyboxRef + "\nUSER 1000:1000\nWORKDIR /owned\nUSER root\nWORKDIR /tmp\nWORKDIR /app\nCOPY hello.txt .\nCMD [\"cat\", \"hello.txt\"]\n",
		"hello.txt":  "hello from /app\n",
	})
	b.mustRun("build", "-t", "berthtest/workdir", ctxDir)
	if out := b.mustRun("run", "--rm", "berthtest/workdir").stdout; out != "hello from /app\n" {
		t.Errorf("COPY hello.txt . under WORKDIR /app: run shows %q", out)
	}
	if out := b.mustRun("run", "--rm", "-w", "/", "berthtest/workdir", "stat", "-c", "%u:%g %F", "/owned", "/app").stdout; out != "1000:1000 directory\n0:0 directory\n" {
		t.Errorf("the WORKDIRs made: %q, want /owned of USER 1000:1000 and /app of root", out)
	}
	base := b.mustRun("image", "inspect", "--format", "{{len .RootFS.Layers}}", busyboxRef).stdout
	built := b.mustRun("image", "inspect", "--format", "{{len .RootFS.Layers}}", "berthtest/workdir").stdout
	var nBase, nBuilt int
	fmt.Sscan(base, &nBase)
	fmt.Sscan(built, &nBuilt)
	if nBuilt != nBase+3 {
		t.Errorf("layers: %d over the base's %d, want 3 (WORKDIR /owned, WORKDIR /app, COPY; none for WORKDIR /tmp, which is there)", nBuilt-nBase, nBase)
	}
}

// TestBerthBuildDefaultPath: an image with ENV but no PATH (an imported
// rootfs, as the course's Debian base) runs with docker's PATH, and a
// build FROM it has that PATH in its RUN steps and in the image it makes.
func TestBerthBuildDefaultPath(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	const dockerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	b.mustRun("import", "-c", "ENV A=1", busyboxRootfsTar(t, t.TempDir()), "berthtest/nopath")
	if out := b.mustRun("run", "--rm", "berthtest/nopath", "sh", "-c", "echo $PATH $A").stdout; out != dockerPath+" 1\n" {
		t.Errorf("run of an image with ENV but no PATH: got %q, want docker's PATH and A", out)
	}
	ctxDir := buildContext(t, map[string]string{"Dockerfile": "FROM berthtest/nopath\nRUN [\"sh\", \"-c\", \"echo run-path=$PATH\"]\nENV B=2\n"})
	if res := b.mustRun("build", "-t", "berthtest/withpath", ctxDir); !strings.Contains(res.stdout, "run-path="+dockerPath+"\n") {
		t.Errorf("RUN over a base without PATH: want docker's PATH:\n%s", res.stdout)
	}
	if env := b.mustRun("image", "inspect", "--format", "{{json .Config.Env}}", "berthtest/withpath").stdout; !strings.Contains(env, `"PATH=`+dockerPath+`"`) {
		t.Errorf("the image built over a base without PATH: Env %s, want docker's PATH in it", env)
	}
}

// TestBerthBuildMultiStage copies a file built in one stage into a stage
// FROM scratch, and --target stops at a named stage.
func TestBerthBuildMultiStage(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	ctxDir := buildContext(t, map[string]string{"Dockerfile": `FROM ` + busyboxRef + ` AS builder
RUN mkdir -p /out && echo built-in-stage-one > /out/artifact && cp /bin/busybox /out/busybox
FROM builder AS extra
RUN echo extra > /out/extra
FROM scratch
COPY --from=builder /out/ /bin/
COPY --from=0 /out/artifact /artifact
CMD ["/bin/busybox", "cat", "/artifact"]
`})
	// --target names a stage.
	res := b.run("build", "-t", "berthtest/multi", "--target", "nosuch", ctxDir)
	if res.code == 0 || !strings.Contains(res.stderr, `target stage "nosuch"`) {
		t.Errorf("unknown --target: exit %d, stderr %q", res.code, res.stderr)
	}
	b.mustRun("build", "-t", "berthtest/multi", ctxDir)
	if out := b.mustRun("run", "--rm", "berthtest/multi").stdout; out != "built-in-stage-one\n" {
		t.Errorf("run of the last stage: %q", out)
	}
	b.mustRun("build", "-t", "berthtest/builder", "--target", "builder", ctxDir)
	if out := b.mustRun("run", "--rm", "berthtest/builder", "ls", "/out").stdout; out != "artifact\nbusybox\n" {
		t.Errorf("--target builder: /out holds %q", out)
	}
	b.mustRun("build", "-t", "berthtest/extra", "--target", "extra", ctxDir)
	if out := b.mustRun("run", "--rm", "berthtest/extra", "ls", "/out").stdout; out != "artifact\nbusybox\nextra\n" {
		t.Errorf("--target extra: /out holds %q", out)
	}
	layers := b.mustRun("image", "inspect", "--format", "{{len .RootFS.Layers}}", "berthtest/multi").stdout
	if layers != "2\n" {
		t.Errorf("the scratch stage has %q layers, want 2 (one per COPY)", layers)
	}
}

// TestBerthBuildOnbuild: the triggers a base image stores fire in the
// build that uses it as FROM, and not again below.
func TestBerthBuildOnbuild(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	base := buildContext(t, map[string]string{"Dockerfile": "FROM " + busyboxRef + "\nONBUILD COPY marker /marker\nONBUILD RUN echo triggered >> /log\n"})
	b.mustRun("build", "-t", "berthtest/onbuild-base", base)
	if got := b.mustRun("image", "inspect", "--format", "{{json .Config.OnBuild}}", "berthtest/onbuild-base").stdout; got != `["COPY marker /marker","RUN echo triggered \u003e\u003e /log"]`+"\n" {
		t.Errorf("stored triggers: %s", got)
	}
	child := buildContext(t, map[string]string{"Dockerfile": "FROM berthtest/onbuild-base\nRUN cat /marker /log\n", "marker": "marker-from-child\n"})
	res := b.mustRun("build", "-t", "berthtest/onbuild-child", child)
	if !strings.Contains(res.stdout, "Executing 2 build trigger") || !strings.Contains(res.stdout, "marker-from-child\ntriggered\n") {
		t.Errorf("build of the child:\n%s", res.stdout)
	}
	grand := buildContext(t, map[string]string{"Dockerfile": "FROM berthtest/onbuild-child\nRUN cat /log\n"})
	if out := b.mustRun("build", grand).stdout; strings.Contains(out, "Executing") || !strings.Contains(out, "triggered\n") {
		t.Errorf("the triggers fired again, or /log went:\n%s", out)
	}
}

// TestBerthBuildFailures: a failing RUN shows its exit code and last
// lines and leaves no container, task or active snapshot; parse errors,
// missing files and unknown images are named.
func TestBerthBuildFailures(t *testing.T) {
	b, dir := newBerthWithBusybox(t)
	ctxDir := buildContext(t, map[string]string{"Dockerfile": "FROM " + busyboxRef + "\nRUN echo first-line; echo last-words; exit 7\n"})
	res := b.run("build", ctxDir)
	if res.code != 1 || !strings.Contains(res.stderr, "exit code 7") || !strings.Contains(res.stderr, "last-words") || !strings.Contains(res.stderr, "Dockerfile:2:") {
		t.Errorf("failing RUN: exit %d, stderr %q", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "first-line\nlast-words\n") {
		t.Errorf("the RUN's output was not streamed: %q", res.stdout)
	}
	if got := strings.TrimSpace(b.ctr(dir, "containers", "ls", "-q")); got != "" {
		t.Errorf("containers left: %s", got)
	}
	if got := b.ctr(dir, "tasks", "ls"); strings.Count(got, "\n") > 1 {
		t.Errorf("tasks left: %s", got)
	}
	for _, line := range strings.Split(b.ctr(dir, "snapshots", "ls"), "\n") {
		if strings.Contains(line, "Active") {
			t.Errorf("active snapshot left: %s", line)
		}
	}
	for _, tc := range []struct{ dockerfile, want string }{
		{"FROM " + busyboxRef + "\nRUNN echo\n", "Dockerfile:2: RUNN echo: unknown instruction"},
		{"FROM " + busyboxRef + "\nCOPY missing.txt /\n", "file not found in build context " + ctxDir + ": missing.txt"},
		{"FROM berthtest/nosuch:local\n", "berthtest/nosuch:local"},
		{"FROM --platform=linux/s390x " + busyboxRef + "\n", "--platform=linux/s390x: berth builds for the host's platform"},
		{"FROM " + busyboxRef + "\nCOPY --from=nostage /a /b\n", "COPY --from=nostage"},
	} {
		if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(tc.dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		if res := b.run("build", ctxDir); res.code != 1 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want it to say %q", tc.dockerfile, res.code, res.stderr, tc.want)
		}
	}
}

// tarGz is a gzipped tar of files.
func tarGz(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.String()
}

// TestBerthBuildContext: .dockerignore, ADD of a local tar and of a URL,
// --chown, SHELL, HEALTHCHECK and --label in the config, a Dockerfile on
// stdin, and the cache: a changed COPY source rebuilds from its step on,
// and the cache outlives berth's containerd.
func TestBerthBuildContext(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/remote.txt" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("downloaded\n"))
	}))
	defer srv.Close()
	ctxDir := buildContext(t, map[string]string{
		"Dockerfile": `FROM ` + busyboxRef + `
SHELL ["/bin/sh", "-e", "-c"]
COPY . /ctx/
ADD bundle.tar.gz /unpacked/
ADD ` + srv.URL + `/files/remote.txt /remote/
COPY --chown=1234:5678 app.txt /owned/app.txt
RUN echo "$0 $-" > /shell.txt
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
RUN ls -a /ctx > /ctx.list && stat -c '%u:%g %a' /owned/app.txt /remote/remote.txt > /stat.txt
`,
		".dockerignore": "*.secret\n",
		"app.txt":       "app v1\n",
		"pw.secret":     "hunter2\n",
		"bundle.tar.gz": tarGz(t, map[string]string{"inner/one.txt": "one\n"}),
	})
	res := b.mustRun("build", "-t", "berthtest/ctx", "--label", "org.test.by=flag", ctxDir)
	out := b.mustRun("run", "--rm", "berthtest/ctx", "sh", "-c", "cat /ctx.list /stat.txt /unpacked/inner/one.txt /remote/remote.txt /shell.txt").stdout
	want := ".\n..\n.dockerignore\nDockerfile\napp.txt\nbundle.tar.gz\n1234:5678 644\n0:0 600\none\ndownloaded\n/bin/sh ce\n"
	if out != want {
		t.Errorf("built image's files: got %q, want %q\nbuild output:\n%s", out, want, res.stdout)
	}
	cfg := b.mustRun("image", "inspect", "--format", `{{json .Config.Healthcheck}}|{{json .Config.Shell}}|{{index .Config.Labels "org.test.by"}}`, "berthtest/ctx").stdout
	if want := `{"Test":["CMD","true"],"Interval":5000000000,"Retries":2}|["/bin/sh","-e","-c"]|flag` + "\n"; cfg != want {
		t.Errorf("config: got %q, want %q", cfg, want)
	}

	// An ignored file's change keeps the cache; a copied one's does not.
	os.WriteFile(filepath.Join(ctxDir, "pw.secret"), []byte("changed\n"), 0o644)
	if out := b.mustRun("build", ctxDir).stdout; strings.Count(out, "Using cache") != 8 {
		t.Errorf("rebuild after an ignored file changed: want 8 steps from the cache:\n%s", out)
	}
	os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte("app v2\n"), 0o644)
	out = b.mustRun("build", ctxDir).stdout
	if strings.Count(out, "Using cache") != 1 || !strings.Contains(out, "Step 2/9 : SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n ---> Using cache") {
		t.Errorf("rebuild after app.txt changed: want only SHELL from the cache, COPY . on rebuilt:\n%s", out)
	}

	// The cache is in containerd's store: it outlives the containerd.
	b.mustRun("system", "stop")
	if out := b.mustRun("build", ctxDir).stdout; strings.Count(out, "Using cache") != 8 {
		t.Errorf("rebuild after containerd restarted: want 8 steps from the cache:\n%s", out)
	}
	if out := b.mustRun("build", "--no-cache", ctxDir).stdout; strings.Contains(out, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", out)
	}

	// builder prune empties the cache; the images built stay.
	res = b.mustRun("builder", "prune", "-f")
	if !strings.HasPrefix(res.stdout, "Deleted build cache objects:\n") || !strings.Contains(res.stdout, "Total reclaimed space: ") {
		t.Errorf("builder prune -f:\n%s", res.stdout)
	}
	t.Logf("builder prune: %s", res.stdout[strings.LastIndex(res.stdout, "Total"):])
	if out := b.mustRun("build", ctxDir).stdout; strings.Contains(out, "Using cache") {
		t.Errorf("a build after builder prune used the cache:\n%s", out)
	}
	if out := b.mustRun("run", "--rm", "berthtest/ctx", "cat", "/unpacked/inner/one.txt").stdout; out != "one\n" {
		t.Errorf("an image built before builder prune: %q", out)
	}

	// A Dockerfile on stdin: no context.
	res = b.runInput(strings.NewReader("FROM "+busyboxRef+"\nRUN echo from-stdin\n"), "build", "-t", "berthtest/stdin", "-")
	if res.code != 0 || !strings.Contains(res.stdout, "from-stdin") {
		t.Errorf("build -: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = b.runInput(strings.NewReader("FROM "+busyboxRef+"\nCOPY app.txt /\n"), "build", "-")
	if res.code != 1 || !strings.Contains(res.stderr, "no build context") {
		t.Errorf("COPY with no context: exit %d, %s", res.code, res.stderr)
	}
}

// TestBerthBuildNetwork: RUN steps are on berth.toml's default network
// (docker's default bridge network) unless --network says host, none or
// another network; they leave no namespace, veth, address or file
// behind. They run under docker's seccomp profile, as `berth run`'s
// containers.
func TestBerthBuildNetwork(t *testing.T) {
	b, dir := newNetworkedBusybox(t)
	ctxDir := buildContext(t, map[string]string{"Dockerfile": "FROM " + busyboxRef + `
RUN echo interfaces: $(ls /sys/class/net); echo netns: $(readlink /proc/self/ns/net); echo addr: $(ip -4 -o addr show scope global | awk '{print $4}'); echo routes: $(ip route | wc -l); grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status
`})
	// Warm: the default network's bridge and chains are there before the
	// count, as a first `berth run` makes them.
	b.mustRun("run", "--rm", busyboxRef, "true")
	before := netCounts(t, dir)

	res := b.mustRun("build", ctxDir)
	if !strings.Contains(res.stdout, "interfaces: eth0 lo\n") || !strings.Contains(res.stdout, "addr: 10.88.") || !strings.Contains(res.stdout, "routes: 2\n") {
		t.Errorf("default network: want eth0 with an address on the bridge network (10.88.0.0/16) and a default route:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout, "NoNewPrivs:\t0\nSeccomp:\t2\n") {
		t.Errorf("RUN: want docker's seccomp filter and no no_new_privs:\n%s", res.stdout)
	}
	if res := b.mustRun("build", "--no-cache", "--network", "bridge", ctxDir); !strings.Contains(res.stdout, "addr: 10.88.") {
		t.Errorf("--network bridge: want an address on the bridge network:\n%s", res.stdout)
	}
	res = b.mustRun("build", "--no-cache", "--network", "none", ctxDir)
	if !strings.Contains(res.stdout, "interfaces: lo\n") || !strings.Contains(res.stdout, "addr:\nroutes: 0\n") {
		t.Errorf("--network none: want lo alone, no address and no route:\n%s", res.stdout)
	}
	res = b.mustRun("build", "--no-cache", "--network", "host", ctxDir)
	if want := "netns: " + nsInode(t, "self") + "\n"; !strings.Contains(res.stdout, want) {
		t.Errorf("--network host: want the host's namespace, %q:\n%s", want, res.stdout)
	}
	b.mustRun("network", "create", "--subnet", "10.213.31.0/24", "bt-build")
	if res := b.mustRun("build", "--no-cache", "--network", "bt-build", ctxDir); !strings.Contains(res.stdout, "addr: 10.213.31.") {
		t.Errorf("--network bt-build: want an address on that network:\n%s", res.stdout)
	}
	for _, tc := range []struct{ network, want string }{
		{"nosuch", "network nosuch not found"},
		{"container:x", "use bridge (the default), host, none or a network's name"},
	} {
		if res := b.run("build", "--no-cache", "--network", tc.network, ctxDir); res.code != 1 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("--network %s: exit %d, %s; want 1 and %q", tc.network, res.code, res.stderr, tc.want)
		}
	}
	// A failing step on a network leaves nothing either.
	failing := buildContext(t, map[string]string{"Dockerfile": "FROM " + busyboxRef + "\nRUN ip -4 -o addr show eth0 && exit 3\n"})
	if res := b.run("build", failing); res.code != 1 || !strings.Contains(res.stderr, "exit code 3") {
		t.Errorf("failing RUN on the bridge network: exit %d, %s", res.code, res.stderr)
	}
	b.mustRun("network", "rm", "bt-build")
	// The test's own state: its addresses, endpoints and namespaces (a
	// veth goes with its namespace). The host's veth and rule counts are
	// left out: other tests on a shared host change them meanwhile.
	after := netCounts(t, dir)
	after.Veths, after.Rules = before.Veths, before.Rules
	if after != before {
		t.Errorf("the RUN steps left networking behind: %+v, before: %+v", after, before)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "data", "containers", "berth-build-*")); len(left) > 0 {
		t.Errorf("the RUN steps left their files: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "netns", "berth-build-*")); len(left) > 0 {
		t.Errorf("the RUN steps left namespaces or locks: %v", left)
	}

	// `image build` is the same command; -f names another Dockerfile.
	alt := filepath.Join(t.TempDir(), "alt.Dockerfile")
	if err := os.WriteFile(alt, []byte("FROM "+busyboxRef+"\nRUN echo from-alt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := b.mustRun("image", "build", "-f", alt, ctxDir); !strings.Contains(res.stdout, "from-alt") {
		t.Errorf("image build -f: %s", res.stdout)
	}
}

// TestBerthBuildPull: a base image that is not here is pulled from its
// registry; --pull pulls it even when it is.
func TestBerthBuildPull(t *testing.T) {
	b, _, reg := registryBerth(t, registry.Options{})
	name := reg.Host + "/berthtest/busybox:base"
	b.mustRun("tag", "berthtest/busybox", name)
	b.mustRun("push", name)
	b.mustRun("rmi", name)
	ctxDir := buildContext(t, map[string]string{"Dockerfile": "FROM " + name + "\nRUN echo built-on-pulled\n"})
	res := b.mustRun("build", "-t", "berthtest/pulled", ctxDir)
	if !strings.Contains(res.stdout, "Pulling from berthtest/busybox") || !strings.Contains(res.stdout, "built-on-pulled") {
		t.Errorf("build FROM a missing image:\n%s", res.stdout)
	}
	if res := b.mustRun("build", ctxDir); strings.Contains(res.stdout, "Pulling") {
		t.Errorf("build FROM an image now here pulled it again:\n%s", res.stdout)
	}
	if res := b.mustRun("build", "--pull", ctxDir); !strings.Contains(res.stdout, "Pulling from berthtest/busybox") {
		t.Errorf("build --pull did not pull:\n%s", res.stdout)
	}
	missing := buildContext(t, map[string]string{"Dockerfile": "FROM " + reg.Host + "/berthtest/nosuch:v1\n"})
	if res := b.run("build", missing); res.code != 1 || !strings.Contains(res.stderr, reg.Host+"/berthtest/nosuch:v1") {
		t.Errorf("build FROM an image no registry has: exit %d, %s", res.code, res.stderr)
	}
}

// TestBerthBuildCourseLabs builds and runs two of the course's Dockerfile
// labs (on busybox; the Python and Apache ones need a Debian base): an ENV
// default that `-e MSG=111` overrides, and one image that runs a default
// script, or another from a bind-mounted /workspace chosen by -e APP.
func TestBerthBuildCourseLabs(t *testing.T) {
	b, _ := newBerthWithBusybox(t)
	envLab := buildContext(t, map[string]string{"Dockerfile": "FROM " + busyboxRef + "\nENV MSG=default-message\nCMD echo \"MSG is $MSG\"\n"})
	b.mustRun("build", "-t", "berthtest/envlab", envLab)
	if out := b.mustRun("run", "--rm", "berthtest/envlab").stdout; out != "MSG is default-message\n" {
		t.Errorf("run: %q", out)
	}
	if out := b.mustRun("run", "--rm", "-e", "MSG=111", "berthtest/envlab").stdout; out != "MSG is 111\n" {
		t.Errorf("run -e MSG=111: %q", out)
	}

	appLab := buildContext(t, map[string]string{
		"Dockerfile": "FROM " + busyboxRef + "\nWORKDIR /workspace\nCOPY default.sh /opt/default.sh\nENV APP=/opt/default.sh\nCMD [\"sh\", \"-c\", \"sh $APP\"]\n",
		"default.sh": "echo the default script\n",
	})
	b.mustRun("build", "-t", "berthtest/applab", appLab)
	if out := b.mustRun("run", "--rm", "berthtest/applab").stdout; out != "the default script\n" {
		t.Errorf("run: %q", out)
	}
	work := buildContext(t, map[string]string{"other.sh": "echo other script in $(pwd)\n"})
	if out := b.mustRun("run", "--rm", "-v", work+":/workspace", "-e", "APP=other.sh", "berthtest/applab").stdout; out != "other script in /workspace\n" {
		t.Errorf("run -v …:/workspace -e APP=other.sh: %q", out)
	}
}
