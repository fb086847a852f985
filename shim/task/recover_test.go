package task

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/berthrt/berth/shim/idle"
)

// A request whose handler panics fails with codes.Internal, and the
// server (the shim) goes on serving the next requests: those of its
// other containers.
func TestRecoverPanics(t *testing.T) {
	s := &service{idle: idle.New(time.Hour, "/containerd.task.v3.Task/Wait")}
	server, err := ttrpc.NewServer(ttrpc.WithUnaryServerInterceptor(s.UnaryServerInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	method := func(fail bool) ttrpc.Method {
		return func(ctx context.Context, unmarshal func(any) error) (any, error) {
			var req emptypb.Empty
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			if fail {
				var m map[string]int
				m["nil map"]++ // a bug: assignment to a nil map panics
			}
			return &emptypb.Empty{}, nil
		}
	}
	server.RegisterService("test.Svc", &ttrpc.ServiceDesc{Methods: map[string]ttrpc.Method{
		"Panic": method(true), "Fine": method(false),
	}})
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go server.Serve(ctx, l)
	defer server.Close()
	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()

	for _, tc := range []struct {
		method string
		code   codes.Code
	}{{"Fine", codes.OK}, {"Panic", codes.Internal}, {"Fine", codes.OK}, {"Panic", codes.Internal}, {"Fine", codes.OK}} {
		err := client.Call(ctx, "test.Svc", tc.method, &emptypb.Empty{}, &emptypb.Empty{})
		if got := status.Code(err); got != tc.code {
			t.Fatalf("%s: %v (code %s), want code %s", tc.method, err, got, tc.code)
		}
		if tc.code == codes.Internal && !strings.Contains(err.Error(), "nil map") {
			t.Errorf("%s: %v, want the panic's message", tc.method, err)
		}
	}
}
