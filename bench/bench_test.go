package main

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"
)

func TestSelectCases(t *testing.T) {
	for _, tc := range []struct {
		which            string
		runtime          []string
		shimRun, shimMem bool
	}{
		{"all", []string{"run /bin/true", "cycle /bin/true"}, true, true},
		{"run", []string{"run /bin/true"}, false, false},
		{"shim", nil, true, true},
		{"shim-mem,cycle", []string{"cycle /bin/true"}, false, true},
		{"cycle,run,shim-run", []string{"run /bin/true", "cycle /bin/true"}, true, false},
	} {
		sel, err := selectCases(tc.which)
		if err != nil {
			t.Fatalf("%s: %v", tc.which, err)
		}
		var names []string
		for _, c := range sel.runtime {
			names = append(names, c.name)
		}
		if !slices.Equal(names, tc.runtime) || sel.shimRun != tc.shimRun || sel.shimMem != tc.shimMem {
			t.Errorf("%s: runtime %v shim-run %v shim-mem %v; want %v %v %v",
				tc.which, names, sel.shimRun, sel.shimMem, tc.runtime, tc.shimRun, tc.shimMem)
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
