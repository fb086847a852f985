package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestExplainEINVAL(t *testing.T) {
	write := func(file string, errno error) error {
		return fmt.Errorf("cgroups: write: %w", &fs.PathError{Op: "open", Path: "/sys/fs/cgroup/cpu/c1/" + file, Err: errno})
	}
	for _, tt := range []struct {
		err  error
		hint string
	}{
		{write("cpu.rt_runtime_us", unix.EINVAL), "parent cgroup"},
		{write("cpu.shares", unix.EINVAL), "SCHED_IDLE"},
		{write("memory.limit_in_bytes", unix.EINVAL), "memory+swap"},
		{write("cpu.shares", unix.EBUSY), ""},
		{write("pids.max", unix.EINVAL), ""},
		{errors.New("no path"), ""},
	} {
		got := explainEINVAL(tt.err)
		if !errors.Is(got, tt.err) {
			t.Errorf("%v: the original error is lost: %v", tt.err, got)
		}
		if tt.hint == "" && got.Error() != tt.err.Error() || tt.hint != "" && !strings.Contains(got.Error(), tt.hint) {
			t.Errorf("explainEINVAL(%v) = %v, want hint %q", tt.err, got, tt.hint)
		}
	}
}
