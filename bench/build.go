package main

// The build case: `berth build` against buildah (Debian's `buildah bud`),
// on one Dockerfile of ten steps over the bench's busybox image, in one
// run, alternating: a cold build (--no-cache: every step runs) and a
// cached one (every step from the cache). berth builds through the
// containerd it manages; buildah in a storage of its own under the same
// temp dir (overlay, as containerd's snapshotter), with runc as its OCI
// runtime. The RUN steps have no network in either (--network none): a
// figure about building, not about network setup. Issue 13's targets:
// berth/buildah cold <= 1.0, cached <= 0.3.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthrt/berth/integration/image"
)

const (
	berthBuildColdTarget   = 1.0
	berthBuildCachedTarget = 0.3
)

// benchDockerfile has ten steps: FROM, the metadata instructions, COPYs
// and RUNs, as a small application's.
const benchDockerfile = `FROM ` + berthBenchImage + `
ENV APP_HOME=/app
WORKDIR /app
COPY config.txt ./
RUN echo built > stamp.txt
RUN mkdir -p data && cp config.txt data/
COPY script.sh /usr/local/bin/script
RUN chmod 0755 /usr/local/bin/script && ls -R /app > listing.txt
LABEL org.berth.bench=build
CMD ["/usr/local/bin/script"]
`

// buildah is buildah with a storage and a containers.conf of its own
// under dir: nothing of the host's containers storage is touched.
type buildah struct {
	bin, root, runRoot, conf string
}

func newBuildah(bin, dir string) (*buildah, error) {
	b := &buildah{bin: bin, root: filepath.Join(dir, "buildah", "root"), runRoot: filepath.Join(dir, "buildah", "run"),
		conf: filepath.Join(dir, "buildah", "containers.conf")}
	if err := os.MkdirAll(filepath.Dir(b.conf), 0o755); err != nil {
		return nil, err
	}
	// No systemd on the hosts Berth is tested on: cgroupfs, as berth's.
	if err := os.WriteFile(b.conf, []byte("[engine]\ncgroup_manager = \"cgroupfs\"\n"), 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *buildah) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"--root", b.root, "--runroot", b.runRoot, "--storage-driver", "overlay"}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+b.conf, "BUILDAH_ISOLATION=oci")
	return cmd
}

// close removes buildah's images and containers (its mounts go with
// them; what is left, the bench's close unmounts).
func (b *buildah) close(ctx context.Context) error {
	_, err1 := output(b.command(ctx, "rm", "--all"))
	_, err2 := output(b.command(ctx, "rmi", "--all", "--force"))
	return errors.Join(err1, err2)
}

// buildCase times cold and cached builds of benchDockerfile with berth
// and with buildah, alternating, and adds both ratios to the summary.
// Without buildah it says so and skips.
func buildCase(ctx context.Context, o options, sum *summary) error {
	buildahBin, lerr := exec.LookPath("buildah")
	if lerr != nil {
		fmt.Println("berth build: skipped, buildah is not installed (apt-get install buildah; hack/deps.sh does)")
		return nil
	}
	return withBerthBench(ctx, o, nil, "build case", func(b *berthBench) error { return b.buildCase(ctx, o, buildahBin, sum) })
}

func (b *berthBench) buildCase(ctx context.Context, o options, buildahBin string, sum *summary) (err error) {
	bh, err := newBuildah(buildahBin, b.dir)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := bh.close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup of buildah's storage: %w", cerr))
		}
	}()
	// buildah's base image: berth's, under the same name, in the
	// docker-archive form that carries the name.
	archive := filepath.Join(b.dir, "busybox-docker.tar")
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	err = image.BusyboxDocker(f, berthBenchImage)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the busybox image: %w", err)
	}
	id, err := output(bh.command(ctx, "pull", "--quiet", "docker-archive:"+archive))
	if err != nil {
		return fmt.Errorf("buildah: the base image: %w", err)
	}
	// buildah names an archive's short name localhost/…: the full one too.
	if _, err := output(bh.command(ctx, "tag", strings.TrimSpace(id), berthBenchImage)); err != nil {
		return fmt.Errorf("buildah: the base image: %w", err)
	}
	ctxDir := filepath.Join(b.dir, "build-context")
	if err := writeFiles(ctxDir, map[string]string{
		"Dockerfile": benchDockerfile,
		"config.txt": "key=value\n",
		"script.sh":  "#!/bin/sh\ncat /app/listing.txt\n",
	}); err != nil {
		return err
	}
	version := firstLine(buildahBin, "--version")
	fmt.Printf("berth build: %d-step Dockerfile, RUN without network; against %s; iterations %d per contender after %d warm-up, contenders alternate\n",
		strings.Count(benchDockerfile, "\n"), version, o.n, o.warmup)
	berthBuild := func(extra ...string) (time.Duration, error) {
		args := append(append([]string{"build", "-q", "--network", "none"}, extra...), "-t", "berthbench/build", ctxDir)
		return timed(b.command(ctx, args...))
	}
	buildahBuild := func(extra ...string) (time.Duration, error) {
		args := append(append([]string{"bud", "--quiet", "--layers", "--pull-never", "--network", "none", "--isolation", "oci"}, extra...),
			"-t", "berthbench/build", ctxDir)
		return timed(bh.command(ctx, args...))
	}
	labels := []string{"berth build", "buildah bud"}
	for _, c := range []struct {
		name   string
		extra  []string
		target float64
	}{
		{"cold", []string{"--no-cache"}, berthBuildColdTarget},
		{"cached", nil, berthBuildCachedTarget},
	} {
		samples, err := alternate(ctx, len(labels), o.warmup, o.n, func(j, i int) (time.Duration, error) {
			if j == 0 {
				return berthBuild(c.extra...)
			}
			return buildahBuild(c.extra...)
		})
		if err != nil {
			return fmt.Errorf("build %s: %w", c.name, err)
		}
		line, ratios := report("build "+c.name, labels, samples)
		fmt.Println(line)
		sum.add("berth build, "+c.name+", median time", "berth/buildah bud", ratios[0], c.target)
	}
	return nil
}

// writeFiles writes files (name → content) into dir.
func writeFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
