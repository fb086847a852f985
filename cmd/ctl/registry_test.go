package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestLoginComplete: what login takes from flags and a piped stdin, and
// what it refuses when stdin is no terminal to ask on.
func TestLoginComplete(t *testing.T) {
	for _, tc := range []struct {
		name           string
		opts           loginOptions
		stdin          string
		user, password string
		err            string
	}{
		{name: "flags", opts: loginOptions{username: "u", password: "p"}, user: "u", password: "p"},
		{name: "password-stdin", opts: loginOptions{username: "u", passwordStdin: true}, stdin: "s3cret\n", user: "u", password: "s3cret"},
		{name: "password-stdin without newline", opts: loginOptions{username: "u", passwordStdin: true}, stdin: "s3cret", user: "u", password: "s3cret"},
		{name: "both password flags", opts: loginOptions{username: "u", password: "p", passwordStdin: true}, err: "mutually exclusive"},
		{name: "password-stdin without user", opts: loginOptions{passwordStdin: true}, stdin: "x\n", err: "needs a user name"},
		{name: "nothing, on a pipe", opts: loginOptions{}, stdin: "u\np\n", err: "when stdin is not a terminal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			var out bytes.Buffer
			err := o.complete(strings.NewReader(tc.stdin), &out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || o.username != tc.user || o.password != tc.password {
				t.Fatalf("got %q %q %v, want %q %q", o.username, o.password, err, tc.user, tc.password)
			}
		})
	}
}
