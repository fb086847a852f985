package main

import (
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{in: "KILL", want: syscall.SIGKILL},
		{in: "sigterm", want: syscall.SIGTERM},
		{in: "SIGUSR1", want: syscall.SIGUSR1},
		{in: "9", want: syscall.SIGKILL},
		{in: "0", want: 0}, // a liveness check, as kill(2)'s
		{in: "64", want: 64},
		{in: "65", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "NOPE", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := parseSignal(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseSignal(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
