package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/config"
)

func TestSelectCases(t *testing.T) {
	for _, tc := range []struct {
		which                                   string
		runtime                                 []string
		shimRun, shimMem, berth, network, build bool
	}{
		{"all", []string{"run /bin/true", "cycle /bin/true"}, true, true, true, true, true},
		{"run", []string{"run /bin/true"}, false, false, false, false, false},
		{"shim", nil, true, true, false, false, false},
		{"berth", nil, false, false, true, false, false},
		{"network", nil, false, false, false, true, false},
		{"build", nil, false, false, false, false, true},
		{"shim-mem,cycle", []string{"cycle /bin/true"}, false, true, false, false, false},
		{"cycle,run,shim-run", []string{"run /bin/true", "cycle /bin/true"}, true, false, false, false, false},
	} {
		sel, err := selectCases(tc.which)
		if err != nil {
			t.Fatalf("%s: %v", tc.which, err)
		}
		var names []string
		for _, c := range sel.runtime {
			names = append(names, c.name)
		}
		if !slices.Equal(names, tc.runtime) || sel.shimRun != tc.shimRun || sel.shimMem != tc.shimMem || sel.berth != tc.berth || sel.network != tc.network || sel.build != tc.build {
			t.Errorf("%s: runtime %v shim-run %v shim-mem %v berth %v network %v build %v; want %v %v %v %v %v %v",
				tc.which, names, sel.shimRun, sel.shimMem, sel.berth, sel.network, sel.build, tc.runtime, tc.shimRun, tc.shimMem, tc.berth, tc.network, tc.build)
		}
	}
	if _, err := selectCases("run,bogus"); err == nil {
		t.Error("run,bogus: no error")
	}
}

// TestAlternate checks the order of turns (the first one alternates) and
// that warm-up iterations are dropped.
func TestAlternate(t *testing.T) {
	var order []int
	samples, err := alternate(context.Background(), 2, 1, 2, func(j, i int) (time.Duration, error) {
		order = append(order, j)
		return time.Duration(10*i + j), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 1, 0, 0, 1}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if !slices.Equal(samples[0], []time.Duration{10, 20}) || !slices.Equal(samples[1], []time.Duration{11, 21}) {
		t.Errorf("samples %v", samples)
	}
}

func TestReadMemUse(t *testing.T) {
	m, err := readMemUse(os.Getpid())
	if err != nil {
		t.Skipf("no smaps_rollup here: %v", err)
	}
	if m.pss <= 0 || m.anon < 0 || m.anon > m.pss {
		t.Errorf("own memory %+v: want 0 < anon <= pss", m)
	}
}

// TestReportRatios: one ratio of the first contender's median to each
// other's, in order.
func TestReportRatios(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	line, ratios := report("run", []string{"berth", "runc 1.5.2", "runc 1.1.5"},
		[][]time.Duration{ms(10, 10, 10), ms(20, 20, 20), ms(40, 40, 40)})
	if !slices.Equal(ratios, []float64{0.5, 0.25}) {
		t.Errorf("ratios %v, want [0.5 0.25]", ratios)
	}
	for _, want := range []string{"ratio to runc 1.5.2 0.50", "ratio to runc 1.1.5 0.25"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if _, ratios := report("run", []string{"berth"}, [][]time.Duration{ms(1)}); ratios != nil {
		t.Errorf("one contender: ratios %v, want none", ratios)
	}
}

func TestParseTaskList(t *testing.T) {
	out := "TASK        PID      STATUS    \nbb-ctrmem-1-0    4242    RUNNING\nbb-ctrmem-1-1    0       STOPPED\n"
	tasks, err := parseTaskList(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ctrTask{"bb-ctrmem-1-0": {4242, "RUNNING"}, "bb-ctrmem-1-1": {0, "STOPPED"}}
	if len(tasks) != len(want) {
		t.Fatalf("tasks %v, want %v", tasks, want)
	}
	for id, w := range want {
		if tasks[id] != w {
			t.Errorf("%s: %+v, want %+v", id, tasks[id], w)
		}
	}
	for _, bad := range []string{"TASK PID STATUS\nid x RUNNING\n", "TASK PID STATUS\nid 1\n"} {
		if _, err := parseTaskList(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParsePids(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
		pids []int
		ok   bool
	}{
		{"12\n34\n", 2, []int{12, 34}, true},
		{"12\n", 2, nil, false},    // one container missing
		{"12\n0\n", 2, nil, false}, // one not running
		{"12\n<no value>\n", 2, nil, false},
	} {
		pids, err := parsePids(tc.out, tc.want)
		if (err == nil) != tc.ok || !slices.Equal(pids, tc.pids) {
			t.Errorf("%q: %v, %v; want %v (ok %v)", tc.out, pids, err, tc.pids, tc.ok)
		}
	}
}

// TestBerthConfig: the bench's berth.toml is one berth reads, and puts
// everything berth and its containerd write under the temp dir.
func TestBerthConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "berth.toml")
	if err := os.WriteFile(path, []byte(berthConfig(dir, "/opt/berth/cni")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != berthBenchNamespace {
		t.Errorf("namespace %q, want %q", cfg.Namespace, berthBenchNamespace)
	}
	for what, p := range map[string]string{"data_root": cfg.DataRoot, "root": cfg.Containerd.Root,
		"state": cfg.Containerd.State, "socket": cfg.Containerd.Socket, "cni.conf_dir": cfg.CNI.ConfDir} {
		if !strings.HasPrefix(p, dir+"/") {
			t.Errorf("%s %q is not under %s", what, p, dir)
		}
	}
	if cfg.CNI.PluginDir != "/opt/berth/cni" || cfg.CNI.DefaultNetwork != "none" {
		t.Errorf("cni: %+v, want the plugins given and no network unless asked", cfg.CNI)
	}
}

func TestWithout(t *testing.T) {
	list := []string{"a", "b", "c", "b"}
	if got := without(list, []string{"b", "x"}); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("without: %v", got)
	}
	if !slices.Equal(list, []string{"a", "b", "c", "b"}) {
		t.Errorf("without changed its input: %v", list)
	}
}
