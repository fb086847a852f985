package logs

import (
	"testing"

	"github.com/berthrt/berth/restart"
)

func TestWillRestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		code   int
		want   bool
	}{
		{name: "no policy", labels: nil, code: 1},
		{name: "no", labels: map[string]string{restart.LabelPolicy: "no"}, code: 1},
		{name: "always", labels: map[string]string{restart.LabelPolicy: "always"}, code: 0, want: true},
		{name: "unless-stopped", labels: map[string]string{restart.LabelPolicy: "unless-stopped"}, code: 0, want: true},
		{name: "always, stopped by the user", labels: map[string]string{restart.LabelPolicy: "always", restart.LabelStoppedByUser: "true"}},
		{name: "on-failure, success", labels: map[string]string{restart.LabelPolicy: "on-failure"}, code: 0},
		{name: "on-failure, failure", labels: map[string]string{restart.LabelPolicy: "on-failure"}, code: 2, want: true},
		{name: "on-failure, unknown exit", labels: map[string]string{restart.LabelPolicy: "on-failure"}, code: -1, want: true},
		{name: "on-failure:3, 2 restarts", labels: map[string]string{restart.LabelPolicy: "on-failure:3", restart.LabelCount: "2"}, code: 1, want: true},
		{name: "on-failure:3, 3 restarts", labels: map[string]string{restart.LabelPolicy: "on-failure:3", restart.LabelCount: "3"}, code: 1},
		{name: "on-failure:3, killed by the user", labels: map[string]string{restart.LabelPolicy: "on-failure:3", restart.LabelStoppedByUser: "true"}, code: 137},
		{name: "unknown policy", labels: map[string]string{restart.LabelPolicy: "sometimes"}, code: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := willRestart(tc.labels, tc.code); got != tc.want {
				t.Errorf("willRestart(%v, %d) = %v, want %v", tc.labels, tc.code, got, tc.want)
			}
		})
	}
}
