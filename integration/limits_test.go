package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func TestMemoryLimitOOMKills(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
	}, "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
	res := r.run("run", "-b", b, newID(t))
	if res.code != 137 {
		t.Fatalf("a 128 MiB buffer under a 32 MiB limit: exit %d (stderr %q), want 137 (OOM kill)", res.code, res.stderr)
	}
	// The same program fits without the limit.
	b = busybox(t, nil, "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
	if res := r.run("run", "-b", b, newID(t)); res.code != 0 {
		t.Fatalf("without a limit: exit %d %s", res.code, res.stderr)
	}
}

// cpuSeconds runs a 2 s busy loop and returns the user+sys seconds it got.
func cpuSeconds(t *testing.T, r *rt, edit func(*specs.Spec)) float64 {
	b := busybox(t, edit, "sh", "-c",
		`end=$(( $(date +%s) + 2 )); time sh -c "while [ \$(date +%s) -lt $end ]; do :; done" 2>&1`)
	res := r.run("run", "-b", b, newID(t))
	if res.code != 0 {
		t.Fatalf("busy loop: exit %d %s %s", res.code, res.stdout, res.stderr)
	}
	// busybox time prints "real 0m 2.00s / user 0m 0.10s / sys 0m 0.08s".
	var total float64
	for _, l := range strings.Split(res.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && (f[0] == "user" || f[0] == "sys") {
			m, _ := strconv.ParseFloat(strings.TrimSuffix(f[1], "m"), 64)
			s, _ := strconv.ParseFloat(strings.TrimSuffix(f[2], "s"), 64)
			total += m*60 + s
		}
	}
	return total
}

func TestCPUQuotaCapsUsage(t *testing.T) {
	r := newRT(t)
	capped := cpuSeconds(t, r, func(s *specs.Spec) {
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(10000), Period: u64(100000)}
	})
	free := cpuSeconds(t, r, nil)
	// 10% of one CPU over 2 s is 0.2 s; unlimited gets most of 2 s.
	if capped > 0.45 || free < 1.0 {
		t.Fatalf("cpu seconds: capped %.2f (want <= 0.45), uncapped %.2f (want >= 1.0)", capped, free)
	}
}

func TestPidsLimitStopsFork(t *testing.T) {
	r := newRT(t)
	b := busybox(t, func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(8)}
	}, "sh", "-c", "for i in $(seq 20); do sleep 2 & done 2>&1; wait")
	res := r.run("run", "-b", b, newID(t))
	if !strings.Contains(res.stdout+res.stderr, "fork") {
		t.Fatalf("20 forks under pids.max=8: exit %d, out %q %q; want a fork failure", res.code, res.stdout, res.stderr)
	}
}

func TestBlkioThrottleSlowsRead(t *testing.T) {
	r := newRT(t)
	// A direct read of a file in the rootfs sends its bios to the disk the
	// test's temp dir lives on, charged to the container's cgroup. (The
	// device node itself cannot be opened on these machines, even by root.)
	disk := diskOf(t, t.TempDir())
	readMiB := func(edit func(*specs.Spec)) time.Duration {
		b := busybox(t, edit, "dd", "if=/data", "of=/dev/null", "bs=1M", "iflag=direct")
		data := make([]byte, 3<<20)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(b, "rootfs/data"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if res := r.run("run", "-b", b, newID(t)); res.code != 0 {
			t.Fatalf("dd: exit %d %s", res.code, res.stderr)
		}
		return time.Since(start)
	}
	throttled := readMiB(func(s *specs.Spec) {
		s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: disk, Rate: 1 << 20}}}
	})
	free := readMiB(nil)
	// 3 MiB at 1 MiB/s takes about 3 s; unthrottled a fraction of that.
	if throttled < 2*time.Second || free > throttled/2 {
		t.Fatalf("3 MiB direct read: throttled %v (want >= 2s), unthrottled %v", throttled, free)
	}
}

// diskOf is the whole disk (blkio throttles take no partitions) under the
// filesystem at path, from stat(2) and sysfs. It skips the test where that
// filesystem is not on a block device (tmpfs, overlayfs).
func diskOf(t *testing.T, path string) specs.LinuxBlockIODevice {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	num := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if _, err := os.Stat("/sys/dev/block/" + num + "/partition"); err == nil {
		// The partition's sysfs directory sits inside its disk's.
		b, err := os.ReadFile("/sys/dev/block/" + num + "/../dev")
		if err != nil {
			t.Fatalf("disk of partition %s: %v", num, err)
		}
		num = strings.TrimSpace(string(b))
	} else if _, err := os.Stat("/sys/dev/block/" + num); err != nil {
		t.Skipf("%s is on device %s, not a block device: nothing to throttle", path, num)
	}
	var d specs.LinuxBlockIODevice
	if _, err := fmt.Sscanf(num, "%d:%d", &d.Major, &d.Minor); err != nil {
		t.Fatalf("device number %q: %v", num, err)
	}
	return d
}
