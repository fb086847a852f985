package build

import "testing"

func TestCopyDest(t *testing.T) {
	for _, tc := range []struct{ workdir, dest, want string }{
		{"/app", ".", "/app/"}, // COPY app.py . puts /app/app.py
		{"/app", "./", "/app/"},
		{"/app", "sub/.", "/app/sub/"},
		{"/app", "conf/", "/app/conf/"},
		{"/app", "name.txt", "/app/name.txt"},
		{"", "name.txt", "/name.txt"},
		{"", ".", "/"},
		{"/app", "/abs", "/abs"},
		{"/app", "/abs/", "/abs/"},
		{"/app", "/abs/.", "/abs/"},
	} {
		if got := copyDest(tc.workdir, tc.dest); got != tc.want {
			t.Errorf("WORKDIR %q, COPY … %q: got %q, want %q", tc.workdir, tc.dest, got, tc.want)
		}
	}
}
