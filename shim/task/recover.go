package task

import (
	"context"
	"runtime/debug"

	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recoverPanics makes a panic while serving one request fail that request
// (codes.Internal) instead of ending the shim: a shim may serve several
// containers (a group, or a shared shim), and a bug met by one of them
// must not take the others, their stdio and their exit statuses down with
// it. The panic and its stack are logged. It runs in the request's own
// goroutine, the only place a panic can be recovered; the methods take
// their locks with defer, so the shim's state stays usable.
func recoverPanics(ctx context.Context, u ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, m ttrpc.Method) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			log.G(ctx).WithField("method", info.FullMethod).Errorf("panic serving the request, which fails; the shim carries on: %v\n%s", v, debug.Stack())
			resp, err = nil, status.Errorf(codes.Internal, "%s: the shim failed serving this request (a bug in the shim, logged with its stack): %v", info.FullMethod, v)
		}
	}()
	return m(ctx, u)
}

// chainInterceptors runs outer around inner around the method.
func chainInterceptors(outer, inner ttrpc.UnaryServerInterceptor) ttrpc.UnaryServerInterceptor {
	return func(ctx context.Context, u ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, m ttrpc.Method) (any, error) {
		return outer(ctx, u, info, func(ctx context.Context, u func(any) error) (any, error) {
			return inner(ctx, u, info, m)
		})
	}
}

// execHook is called with every Exec request before it is served; nil
// outside test builds (see testhooks.go).
var execHook func(r execHookRequest)

// execHookRequest is what execHook sees of an Exec request.
type execHookRequest struct{ ID, ExecID string }
