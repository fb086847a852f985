package reaper

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func waitExit(t *testing.T, ch <-chan Exit) Exit {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no exit reported in 10s")
		return Exit{}
	}
}

func TestTrackReportsStatus(t *testing.T) {
	r := New()
	defer r.Close()
	for _, tc := range []struct {
		script string
		want   int
	}{{"exit 3", 3}, {"kill -9 $$", 137}, {"true", 0}} {
		release := r.Hold()
		cmd := exec.Command("sh", "-c", tc.script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ch := make(chan Exit, 1)
		r.Track(cmd.Process.Pid, func(e Exit) { ch <- e })
		release()
		if e := waitExit(t, ch); e.Status != tc.want || e.Pid != cmd.Process.Pid {
			t.Errorf("sh -c %q: exit %+v, want status %d", tc.script, e, tc.want)
		}
	}
}

// A child that exits before it is tracked stays a zombie while the reaper
// is held, and Track then reports its own status.
func TestExitBeforeTrack(t *testing.T) {
	r := New()
	defer r.Close()
	release := r.Hold()
	cmd := exec.Command("sh", "-c", "exit 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, cmd.Process.Pid)
	r.pass() // what the SIGCHLD of its exit makes the reaper do
	if st := procState(cmd.Process.Pid); !strings.Contains(st, "zombie") {
		t.Fatalf("the untracked child was reaped while the reaper was held (state %s)", st)
	}
	ch := make(chan Exit, 1)
	r.Track(cmd.Process.Pid, func(e Exit) { ch <- e })
	release()
	if e := waitExit(t, ch); e.Status != 5 {
		t.Errorf("exit %+v, want status 5", e)
	}
}

// While held, the reaper leaves untracked children to whoever waits for
// them (a hook's exec.Cmd.Wait).
func TestHoldLeavesUntrackedChildren(t *testing.T) {
	r := New()
	defer r.Close()
	release := r.Hold()
	defer release()
	cmd := exec.Command("sh", "-c", "exit 4")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, cmd.Process.Pid)
	r.pass()
	err := cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 4 {
		t.Fatalf("exec.Cmd.Wait of an untracked child under a hold: %v, state %v", err, cmd.ProcessState)
	}
}

// An orphan reparented to a subreaper is reaped once nothing holds.
func TestReapsOrphans(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	r := New()
	defer r.Close()
	release := r.Hold()
	cmd := exec.Command("sh", "-c", "sleep 0.2 >/dev/null 2>&1 & echo $!")
	out, err := cmd.Output() // waits for sh itself; the sleep is orphaned
	release()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for procExists(orphan) {
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d was not reaped (state %s)", orphan, procState(orphan))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitZombie waits until pid has exited and waits to be reaped.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(procState(pid), "zombie") {
		if time.Now().After(deadline) {
			t.Fatalf("process %d is not a zombie within 10s (state %s)", pid, procState(pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func procExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func procState(pid int) string {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "State:") {
			return sc.Text()
		}
	}
	return "?"
}
