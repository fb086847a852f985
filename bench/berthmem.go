package main

// The berth memory figure: the PSS of every process berth adds beside
// containerd for N `berth run -d` containers, each with its json-file log
// (berth's default), against containerd's runc shims for N `ctr run -d`
// containers on the same containerd. A container's shim is found as the
// parent of its init; berth should add nothing else (its shim writes the
// logs, and the restart monitor lives inside containerd), and any other
// process serving the bench's containerd is counted on berth's side.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthrt/berth/integration/ctrd"
)

// memCase starts count containers each way and compares the memory of
// what serves them; the runc shims' first, so that berth's shims still
// lingering after the run case (2s by default) are gone or reused.
func (b *berthBench) memCase(ctx context.Context, count int, sum *summary) error {
	fmt.Printf("berth memory: Pss and Pss_Anon (smaps_rollup) of what serves %d sleeping containers\n", count)
	var runc memUse
	if len(b.runcs) > 0 {
		var err error
		if runc, err = b.runcMemory(ctx, count); err != nil {
			return err
		}
	}
	berth, others, err := b.berthMemory(ctx, count)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("berth run -d x%d (json-file logs): %s, %d other processes", count, berth.String(count), others)
	if len(b.runcs) == 0 {
		fmt.Println(line)
		return nil
	}
	pss := float64(berth.pss) / float64(runc.pss)
	anon := float64(berth.anon) / float64(runc.anon)
	fmt.Printf("%s | ctr run -d + runc shim: %s | ratio Pss %.2f, Pss_Anon %.2f\n", line, runc.String(count), pss, anon)
	what := fmt.Sprintf("berth run -d x%d with logs, %%s", count)
	sum.add(fmt.Sprintf(what, "Pss"), "berth's processes/runc shims", pss, berthMemTarget)
	sum.add(fmt.Sprintf(what, "Pss_Anon"), "berth's processes/runc shims", anon, 0)
	return nil
}

// berthMemory runs count `berth run -d IMAGE sleep 300` and returns the
// memory of their shims and of any other process serving the bench's
// containerd (how many of those, too); then removes the containers.
func (b *berthBench) berthMemory(ctx context.Context, count int) (memUse, int, error) {
	var names []string
	for i := range count {
		name := fmt.Sprintf("bb-mem-%d-%d", os.Getpid(), i)
		names = append(names, name)
		b.names = append(b.names, name)
		if _, err := b.run(ctx, "run", "-d", "--name", name, berthBenchImage, "sleep", "300"); err != nil {
			return memUse{}, 0, err
		}
	}
	// Each writes its json-file log, as the figure says.
	logs, _ := filepath.Glob(filepath.Join(b.dir, "data", "containers", "*", "*-json.log"))
	if len(logs) < count {
		return memUse{}, 0, fmt.Errorf("%d json-file logs under %s, want one per container (%d)", len(logs), b.dir, count)
	}
	out, err := b.run(ctx, append([]string{"inspect", "-f", "{{.State.Pid}}"}, names...)...)
	if err != nil {
		return memUse{}, 0, err
	}
	inits, err := parsePids(out, count)
	if err != nil {
		return memUse{}, 0, fmt.Errorf("berth inspect: %w", err)
	}
	server, err := filepath.EvalSymlinks(filepath.Join(filepath.Dir(b.berth), "containerd-shim-berth-v2-server"))
	if err != nil {
		return memUse{}, 0, err
	}
	shims, err := shimParents(inits, server)
	if err != nil {
		return memUse{}, 0, fmt.Errorf("berth run -d: %w", err)
	}
	if err := settle(ctx); err != nil {
		return memUse{}, 0, err
	}
	// Anything else serving our containerd, but containerd itself and
	// runc shims on their way out, is berth's too.
	runcShim, _ := filepath.EvalSymlinks(filepath.Join(filepath.Dir(b.berth), "containerd-shim-runc-v2"))
	others := 0
	for _, pid := range b.servingPids() {
		exe, _ := ctrd.Exe(pid)
		if !shims[pid] && pid != b.containerdPid() && exe != runcShim {
			shims[pid] = true
			others++
		}
	}
	use, err := shimMemory(shims)
	if err != nil {
		return use, others, err
	}
	return use, others, b.removeBerth(ctx, names)
}

// runcMemory runs count `ctr run -d` with the runc shim and the first runc
// and returns the memory of their shims; then removes the containers.
func (b *berthBench) runcMemory(ctx context.Context, count int) (memUse, error) {
	var ids []string
	for i := range count {
		id := fmt.Sprintf("bb-ctrmem-%d-%d", os.Getpid(), i)
		ids = append(ids, id)
		b.ctrIDs = append(b.ctrIDs, id)
		args := append([]string{"run", "-d", "--null-io"}, b.runcFlags(b.runcs[0])...)
		if _, err := output(b.ctrCommand(ctx, append(args, berthBenchImage, id, "sleep", "300")...)); err != nil {
			return memUse{}, err
		}
	}
	tasks, err := b.ctrTasks(ctx)
	if err != nil {
		return memUse{}, err
	}
	var inits []int
	for _, id := range ids {
		t, ok := tasks[id]
		if !ok || t.status != "RUNNING" {
			return memUse{}, fmt.Errorf("ctr container %s: task %+v (listed %v), want RUNNING", id, t, ok)
		}
		inits = append(inits, t.pid)
	}
	shim, err := filepath.EvalSymlinks(filepath.Join(filepath.Dir(b.berth), "containerd-shim-runc-v2"))
	if err != nil {
		return memUse{}, err
	}
	shims, err := shimParents(inits, shim)
	if err != nil {
		return memUse{}, fmt.Errorf("ctr run -d: %w", err)
	}
	if err := settle(ctx); err != nil {
		return memUse{}, err
	}
	use, err := shimMemory(shims)
	if err != nil {
		return use, err
	}
	return use, b.removeCtr(ctx, ids)
}

// settle leaves the shims alone for memSettle before their memory is
// read, as the shim memory case does.
func settle(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("interrupted")
	case <-time.After(memSettle):
		return nil
	}
}

// shimParents returns the parent of each init pid, each once; every one
// must run the binary exe (symlinks resolved).
func shimParents(inits []int, exe string) (map[int]bool, error) {
	shims := map[int]bool{}
	for _, pid := range inits {
		shim := ctrd.ParentPid(pid)
		got, _ := ctrd.Exe(shim)
		if got != exe {
			return nil, fmt.Errorf("init %d's parent %d runs %q, want %s: %w", pid, shim, got, exe, errNotShim)
		}
		shims[shim] = true
	}
	return shims, nil
}

// parsePids reads want pids, one a line, none of them 0 (a container
// that is not running).
func parsePids(out string, want int) ([]int, error) {
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("pid %q: not a running container's", f)
		}
		pids = append(pids, pid)
	}
	if len(pids) != want {
		return nil, fmt.Errorf("%d pids, want %d", len(pids), want)
	}
	return pids, nil
}
