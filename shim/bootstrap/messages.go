package bootstrap

import (
	"github.com/berthrt/berth/shim/record"
	"github.com/berthrt/berth/shim/wire"
)

// Params are the bootstrap parameters containerd writes to `shim start`
// (containerd.runtime.bootstrap.v1.BootstrapParams), the fields Berth uses.
type Params struct {
	InstanceID  string
	Namespace   string
	LogLevel    int32
	GRPCAddress string
	Extensions  []Any
	SocketDir   string
}

// Any is an extension's value: runtime options.
type Any = wire.Any

// DecodeParams reads BootstrapParams.
func DecodeParams(b []byte) (Params, error) {
	var p Params
	err := wire.Fields(b, func(f wire.Field) error {
		switch f.Num {
		case 1:
			p.InstanceID = string(f.Bytes)
		case 2:
			p.Namespace = string(f.Bytes)
		case 3:
			p.LogLevel = int32(f.Varint)
		case 6:
			p.GRPCAddress = string(f.Bytes)
		case 8: // Extension{google.protobuf.Any value = 1}
			return wire.Fields(f.Bytes, func(e wire.Field) error {
				if e.Num != 1 {
					return nil
				}
				a, err := wire.ReadAny(e.Bytes)
				p.Extensions = append(p.Extensions, a)
				return err
			})
		case 9:
			p.SocketDir = string(f.Bytes)
		}
		return nil
	})
	return p, err
}

// Result is the BootstrapResult for a shim serving task API v3 over ttrpc
// at addr.
func Result(addr string) []byte {
	var b []byte
	b = wire.AppendVarint(b, 1, 3)
	b = wire.AppendString(b, 2, addr)
	return wire.AppendString(b, 3, "ttrpc")
}

// DeleteResponse is `shim delete`'s reply (task v3 DeleteResponse).
func DeleteResponse(e record.Exit) []byte {
	var b []byte
	b = wire.AppendVarint(b, 1, uint64(uint32(e.Pid)))
	b = wire.AppendVarint(b, 2, uint64(uint32(e.Status)))
	return wire.AppendTimestamp(b, 3, e.At)
}
