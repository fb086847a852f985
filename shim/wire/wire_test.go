package wire

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Fields yields varint and length-delimited fields in order and skips the
// fixed-size ones; a truncated message is an error.
func TestFields(t *testing.T) {
	var b []byte
	b = AppendVarint(b, 1, 300)
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	b = AppendString(b, 3, "x")
	b = AppendVarint(b, 4, 0)  // left out
	b = AppendString(b, 5, "") // left out
	var got []Field
	if err := Fields(b, func(f Field) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Field{{Num: 1, Varint: 300}, {Num: 3, Bytes: []byte("x")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Fields = %+v, want %+v", got, want)
	}
	for _, bad := range [][]byte{b[:len(b)-1], {0xff}} {
		if err := Fields(bad, func(Field) error { return nil }); err == nil {
			t.Errorf("Fields(%x) accepted a broken message", bad)
		}
	}
}

func TestAnyAndTimestamp(t *testing.T) {
	b, err := proto.Marshal(&anypb.Any{TypeUrl: "t/x", Value: []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadAny(b)
	if err != nil || a.TypeURL != "t/x" || !reflect.DeepEqual(a.Value, []byte{1, 2}) {
		t.Fatalf("ReadAny = %+v, %v", a, err)
	}
	for _, at := range []time.Time{time.Unix(1800000000, 999), time.Unix(-5, 0), {}} {
		var ts timestamppb.Timestamp
		// A timestamp field's bytes are the Timestamp message.
		err := Fields(AppendTimestamp(nil, 1, at), func(f Field) error { return proto.Unmarshal(f.Bytes, &ts) })
		if err != nil || !ts.AsTime().Equal(at) {
			t.Errorf("AppendTimestamp(%v) reads as %v, %v", at, ts.AsTime(), err)
		}
	}
}
