package containers

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{in: "", want: []byte{0x10, 0x11}},
		{in: "ctrl-p,ctrl-q", want: []byte{0x10, 0x11}},
		{in: "ctrl-A,x", want: []byte{0x01, 'x'}},
		{in: "ctrl-@,ctrl-_", want: []byte{0x00, 0x1f}},
		{in: "ctrl-1", err: true},
		{in: "ctrl-", err: true},
		{in: "xy", err: true},
	} {
		got, err := ParseDetachKeys(tc.in)
		if (err != nil) != tc.err || !bytes.Equal(got, tc.want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestDetachReader: the bytes before the detach keys pass, a partial
// sequence that is not one passes whole, the keys end the stream.
func TestDetachReader(t *testing.T) {
	keys := []byte{0x10, 0x11}
	for _, tc := range []struct {
		name, in, want string
		detached       bool
	}{
		{name: "plain", in: "hello\n", want: "hello\n"},
		{name: "keys", in: "ls\n\x10\x11echo after\n", want: "ls\n", detached: true},
		{name: "one key alone", in: "a\x10b", want: "a\x10b"},
		{name: "key repeated", in: "\x10\x10\x11rest", want: "\x10", detached: true},
		{name: "partial at the end", in: "a\x10", want: "a\x10"},
		{name: "more than one read holds", in: strings.Repeat("x", 5000) + "\x10\x11", want: strings.Repeat("x", 5000), detached: true},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(&detachReader{r: r, keys: keys})
			if string(got) != tc.want || errors.Is(err, ErrDetached) != tc.detached {
				t.Errorf("%s (one byte at a time %v): %q, %v; want %q, detached %v", tc.name, oneByte, got, err, tc.want, tc.detached)
			}
		}
	}
}
