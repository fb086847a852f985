package restart

import (
	"strings"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    Policy
		wantErr string
	}{
		{value: "", want: Policy{Mode: No}},
		{value: "no", want: Policy{Mode: No}},
		{value: "always", want: Policy{Mode: Always}},
		{value: "unless-stopped", want: Policy{Mode: UnlessStopped}},
		{value: "on-failure", want: Policy{Mode: OnFailure}},
		{value: "on-failure:0", want: Policy{Mode: OnFailure}},
		{value: "on-failure:5", want: Policy{Mode: OnFailure, MaxRetries: 5}},
		{value: "on-failure:-1", wantErr: "must be a number ≥ 0"},
		{value: "on-failure:x", wantErr: "must be a number ≥ 0"},
		{value: "always:3", wantErr: "allowed with on-failure only"},
		{value: "no:1", wantErr: "allowed with on-failure only"},
		{value: "sometimes", wantErr: `invalid --restart value "sometimes": allowed are no, always, unless-stopped, on-failure and on-failure:N`},
		{value: "Always", wantErr: "allowed are"},
	} {
		got, err := ParsePolicy(tc.value)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--restart") {
				t.Errorf("ParsePolicy(%q): error %v, want one naming --restart and containing %q", tc.value, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want %+v", tc.value, got, err, tc.want)
		}
	}
}

func TestPolicyStringRoundTrips(t *testing.T) {
	for _, v := range []string{"no", "always", "unless-stopped", "on-failure", "on-failure:3"} {
		p, err := ParsePolicy(v)
		if err != nil || p.String() != v {
			t.Errorf("ParsePolicy(%q).String() = %q, %v", v, p.String(), err)
		}
	}
	if s := (Policy{}).String(); s != "no" {
		t.Errorf("zero Policy prints %q, want no", s)
	}
}

func TestShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		policy string
		exit   Exit
		want   bool
	}{
		{"no", Exit{ExitCode: 1}, false},
		{"", Exit{ExitCode: 1}, false},
		{"always", Exit{ExitCode: 0}, true},
		{"always", Exit{ExitCode: 137, RestartCount: 1000}, true},
		{"always", Exit{ExitCode: 137, StoppedByUser: true}, false},
		{"unless-stopped", Exit{ExitCode: 0}, true},
		{"unless-stopped", Exit{ExitCode: 143, StoppedByUser: true}, false},
		{"on-failure", Exit{ExitCode: 0}, false},
		{"on-failure", Exit{ExitCode: 1, RestartCount: 99}, true},
		{"on-failure", Exit{ExitCode: 137, StoppedByUser: true}, false},
		{"on-failure:2", Exit{ExitCode: 3, RestartCount: 0}, true},
		{"on-failure:2", Exit{ExitCode: 3, RestartCount: 1}, true},
		{"on-failure:2", Exit{ExitCode: 3, RestartCount: 2}, false},
		{"on-failure:2", Exit{ExitCode: 0, RestartCount: 0}, false},
	} {
		p, err := ParsePolicy(tc.policy)
		if err != nil {
			t.Fatal(err)
		}
		if got := ShouldRestart(p, tc.exit); got != tc.want {
			t.Errorf("ShouldRestart(%q, %+v) = %v, want %v", tc.policy, tc.exit, got, tc.want)
		}
	}
}

func TestShouldStartWithDaemon(t *testing.T) {
	for _, tc := range []struct {
		policy        string
		stoppedByUser bool
		want          bool
	}{
		{"no", false, false},
		{"always", false, true},
		{"always", true, true}, // docker: always comes back with the daemon
		{"unless-stopped", false, true},
		{"unless-stopped", true, false},
		{"on-failure", false, false},
		{"on-failure:3", true, false},
	} {
		p, _ := ParsePolicy(tc.policy)
		if got := ShouldStartWithDaemon(p, tc.stoppedByUser); got != tc.want {
			t.Errorf("ShouldStartWithDaemon(%q, stopped by user %v) = %v, want %v", tc.policy, tc.stoppedByUser, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	const short = time.Second
	var b Backoff
	var got []time.Duration
	for range 12 {
		got = append(got, b.Next(short))
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays of a crash loop: %v, want %v ms", got, want)
		}
	}
	if d := b.Next(ResetAfter); d != FirstDelay {
		t.Errorf("after a run of %v the delay is %v, want %v", ResetAfter, d, FirstDelay)
	}
	if d := b.Next(ResetAfter - time.Millisecond); d != 2*FirstDelay {
		t.Errorf("after a short run following a reset the delay is %v, want %v", d, 2*FirstDelay)
	}
}

func TestLabelsReaders(t *testing.T) {
	labels := map[string]string{LabelCount: "3", LabelStoppedByUser: "true", LabelPolicy: "on-failure:4"}
	if CountOf(labels) != 3 || !StoppedByUser(labels) {
		t.Errorf("CountOf/StoppedByUser of %v", labels)
	}
	if p, err := PolicyOf(labels); err != nil || p != (Policy{Mode: OnFailure, MaxRetries: 4}) {
		t.Errorf("PolicyOf: %+v, %v", p, err)
	}
	if _, err := PolicyOf(map[string]string{LabelPolicy: "bad"}); err == nil || !strings.Contains(err.Error(), LabelPolicy) {
		t.Errorf("PolicyOf of a bad label: %v, want an error naming the label", err)
	}
	if CountOf(map[string]string{LabelCount: "-2"}) != 0 || CountOf(nil) != 0 {
		t.Error("CountOf of a bad or missing label is not 0")
	}
	now := time.Date(2026, 12, 2, 11, 0, 0, 123456789, time.FixedZone("x", 3600))
	if got := ParseTime(formatTime(now)); !got.Equal(now) || formatTime(now) != "2026-12-02T10:00:00.123456789Z" {
		t.Errorf("time label round trip: %s → %v", formatTime(now), got)
	}
	if !IsBerthContainer(map[string]string{"berth/name": "x"}) || IsBerthContainer(map[string]string{"containerd.io/restart.policy": "always"}) {
		t.Error("IsBerthContainer")
	}
}

func TestContainerDataDir(t *testing.T) {
	for _, tc := range []struct{ id, logPath, want string }{
		{"abc", "/var/lib/berth/containers/abc/abc-json.log", "/var/lib/berth/containers/abc"},
		{"abc", "", ""},
		{"abc", "relative/containers/abc/abc-json.log", ""},
		{"abc", "/var/lib/berth/containers/other/abc-json.log", ""},
		{"abc", "/var/lib/berth/elsewhere/abc/abc-json.log", ""},
		{"abc", "/var/lib/berth/containers/abc/../abc/abc-json.log", ""},
		{"abc", "/var/log/abc-json.log", ""},
	} {
		if got := containerDataDir(tc.id, tc.logPath); got != tc.want {
			t.Errorf("containerDataDir(%q, %q) = %q, want %q", tc.id, tc.logPath, got, tc.want)
		}
	}
}

func TestWasRunning(t *testing.T) {
	at := func(s int) string { return formatTime(time.Unix(int64(s), 0)) }
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{}, false}, // never started
		{map[string]string{LabelStartedAt: at(10)}, true},
		{map[string]string{LabelStartedAt: at(10), LabelFinishedAt: at(20)}, false},
		{map[string]string{LabelStartedAt: at(30), LabelFinishedAt: at(20)}, true}, // restarted since
	} {
		if got := wasRunning(tc.labels); got != tc.want {
			t.Errorf("wasRunning(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}
