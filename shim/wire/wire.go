// Package wire reads and writes the few small protobuf messages of a
// shim's start-up calls (bootstrap parameters and result, the delete
// response, runtime options) field by field, with protowire.
//
// containerd's generated types for them would do the same, but loading
// them loads containerd's protobuf registry with them: about 1.6 ms of
// package initialisation and page faults in every `shim start` and `shim
// delete`, two of which run for every container (shim/bootstrap). The
// messages' field numbers are fixed by protobuf's compatibility rules, and
// the tests check each reader and writer against the generated types.
package wire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field is one field of a message: Varint for the varint kinds (bool,
// enums, integers), Bytes for the length-delimited ones (strings, bytes,
// embedded messages). Fixed-size fields are skipped.
type Field struct {
	Num    protowire.Number
	Varint uint64
	Bytes  []byte
}

// Fields calls f with each field of the message b, in order.
func Fields(b []byte, f func(Field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		fd := Field{Num: num}
		switch typ {
		case protowire.VarintType:
			fd.Varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			fd.Bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("protobuf message, field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType && typ != protowire.BytesType {
			continue
		}
		if err := f(fd); err != nil {
			return err
		}
	}
	return nil
}

// Any is a google.protobuf.Any.
type Any struct {
	TypeURL string
	Value   []byte
}

// ReadAny decodes a google.protobuf.Any.
func ReadAny(b []byte) (Any, error) {
	var a Any
	err := Fields(b, func(f Field) error {
		switch f.Num {
		case 1:
			a.TypeURL = string(f.Bytes)
		case 2:
			a.Value = f.Bytes
		}
		return nil
	})
	return a, err
}

// AppendString appends a string field; proto3 leaves empty ones out.
func AppendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// AppendVarint appends a varint field; proto3 leaves zeros out.
func AppendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendTimestamp appends a google.protobuf.Timestamp field.
func AppendTimestamp(b []byte, num protowire.Number, t time.Time) []byte {
	var ts []byte
	ts = AppendVarint(ts, 1, uint64(t.Unix()))
	ts = AppendVarint(ts, 2, uint64(t.Nanosecond()))
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}
