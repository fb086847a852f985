package main

// Shim memory: the proportional set size (PSS) of the shim processes that
// serve N sleeping containers, none of them in a shim group. The runc shim
// gives each its own process; Berth's does too with ContainersPerShim 1,
// and packs them into shared ones with ContainersPerShim 8; each line says
// how many shims served them. PSS rather than RSS because shims of one
// binary share its text pages: PSS splits each shared page between them,
// so the sum over the shims is what they cost the machine together.
// Pss_Anon beside it is the part no file backs (heap, stacks): an idle
// shim drops its clean code pages, which still sit in the page cache and
// come back on the next request, so Pss alone flatters a trimmed shim.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berthrt/berth/integration/ctrd"
)

// memSettle is how long the shims are left alone before their memory is
// read: the memory of a shim with sleeping containers, at rest, not
// while it answers a request (containerd's task listing, which finds the
// shims, comes before). Both runtimes' shims get the same time.
const memSettle = time.Second

// memCase reads the shims' memory at each count of sleeping containers
// (counts ascending), for both Berth shim settings and for containerd's
// runc shim with the first runc (the runc shim's memory does not depend on
// the runc it runs), prints a line per setting and count and adds the
// ratios to the summary: at ContainersPerShim 1, the like-for-like
// setting, Pss_Anon has the target of being no higher than the runc
// shim's.
func (b *shimBench) memCase(ctx context.Context, counts []int, sum *summary) error {
	var runc []memUse
	if len(b.runcs) > 0 {
		var err error
		if runc, err = b.memory(ctx, b.runcs[0], counts); err != nil {
			return err
		}
	}
	for _, berth := range []*shimRuntime{b.single, b.packed} {
		use, err := b.memory(ctx, berth, counts)
		if err != nil {
			return err
		}
		for c, count := range counts {
			line := fmt.Sprintf("shim memory x%-3d %s %s", count, berth.label, use[c].String(count))
			if runc == nil {
				fmt.Println(line)
				continue
			}
			pss := float64(use[c].pss) / float64(runc[c].pss)
			anon := float64(use[c].anon) / float64(runc[c].anon)
			fmt.Printf("%s | %s %s | ratio Pss %.2f, Pss_Anon %.2f\n", line, b.runcs[0].label, runc[c].String(count), pss, anon)
			pair := "berth shim/runc shim"
			what := fmt.Sprintf("shim %%s x%d, %s", count, berth.settings)
			sum.add(fmt.Sprintf(what, "Pss"), pair, pss, 0)
			anonTarget := 0.0
			if berth == b.single {
				anonTarget = 1
			}
			sum.add(fmt.Sprintf(what, "Pss_Anon"), pair, anon, anonTarget)
		}
	}
	return nil
}

// memUse is the memory of some processes, summed, in kB: PSS, and the part
// of it that is anonymous (heap, stacks), which the binary's size does not
// explain; and how many processes.
type memUse struct{ pss, anon, shims int64 }

// String prints the figures for count containers.
func (m memUse) String(count int) string {
	return fmt.Sprintf("Pss %s, Pss_Anon %s (%d shims, Pss %s per container)", mib(m.pss), mib(m.anon), m.shims, mib(m.pss/int64(count)))
}

// memory starts sleeping containers of rt up to each count and returns the
// memory of their shims at each; then it removes the containers.
func (b *shimBench) memory(ctx context.Context, rt *shimRuntime, counts []int) (use []memUse, err error) {
	var ids []string
	defer func() {
		// After ^C, Close removes them: it has its own context.
		if ctx.Err() == nil {
			if rerr := b.d.RemoveContainers(ctx, ids); err == nil && rerr != nil {
				err = fmt.Errorf("removing containers: %w", rerr)
			}
		}
	}()
	for _, count := range counts {
		for len(ids) < count {
			id := fmt.Sprintf("bm-%d-%s-%d", os.Getpid(), rt.short, len(ids))
			b.d.Track(id)
			ids = append(ids, id)
			if _, err := b.d.Ctr(ctx, b.runArgs(rt, []string{"--detach", "--null-io"}, id, "sleep", "300")...); err != nil {
				return nil, fmt.Errorf("%s: %w", rt.label, err)
			}
		}
		shims, err := b.shimsOf(ctx, rt, ids)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.label, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted")
		case <-time.After(memSettle):
		}
		m, err := shimMemory(shims)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.label, err)
		}
		use = append(use, m)
	}
	return use, nil
}

// shimsOf finds the shim of each container by pid — the parent of its
// init, which must run rt's shim binary and serve our containerd — and
// returns them, each once.
func (b *shimBench) shimsOf(ctx context.Context, rt *shimRuntime, ids []string) (map[int]bool, error) {
	tasks, err := b.d.Tasks(ctx)
	if err != nil {
		return nil, err
	}
	ours := map[int]bool{}
	for _, pid := range b.d.ShimPids() {
		ours[pid] = true
	}
	shims := map[int]bool{}
	for _, id := range ids {
		t, ok := tasks[id]
		if !ok || t.Status != "RUNNING" {
			return nil, fmt.Errorf("container %s: task %+v (listed %v), want RUNNING", id, t, ok)
		}
		shim := ctrd.ParentPid(t.Pid)
		exe, _ := ctrd.Exe(shim)
		if exe != rt.server || !ours[shim] {
			return nil, fmt.Errorf("container %s: init %d's parent %d runs %q: %w", id, t.Pid, shim, exe, errNotShim)
		}
		shims[shim] = true
	}
	return shims, nil
}

// shimMemory sums the memory of the shims.
func shimMemory(shims map[int]bool) (memUse, error) {
	var sum memUse
	for pid := range shims {
		m, err := readMemUse(pid)
		if err != nil {
			return sum, err
		}
		sum.pss += m.pss
		sum.anon += m.anon
		sum.shims++
	}
	return sum, nil
}

// readMemUse reads the Pss: and Pss_Anon: lines (kB) of
// /proc/<pid>/smaps_rollup; a kernel without Pss_Anon (before 5.9)
// leaves anon 0.
func readMemUse(pid int) (memUse, error) {
	var m memUse
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "Pss" && name != "Pss_Anon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc/%d/smaps_rollup: %s: %w", pid, name, err)
		}
		if name == "Pss" {
			m.pss, found = kb, true
		} else {
			m.anon = kb
		}
	}
	if !found {
		return m, fmt.Errorf("no Pss: in /proc/%d/smaps_rollup (%v)", pid, sc.Err())
	}
	return m, nil
}

// mib prints kB as MiB with one decimal.
func mib(kb int64) string { return fmt.Sprintf("%.1fMiB", float64(kb)/1024) }
