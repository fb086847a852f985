package libcontainer

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The init protocol's version must change whenever what travels between
// a runtime and the init it starts changes: the shim and berth-runtime
// may come from different builds. This pins the shape of initConfig (and
// the spec inside it) and the sync messages to the version. When it
// fails, bump initProtocol and update pinnedInitShape.
const pinnedInitShape = "fbc42f446b60b10c"

func TestInitProtocolPinned(t *testing.T) {
	var b strings.Builder
	writeShape(&b, reflect.TypeOf(initConfig{}), map[reflect.Type]bool{})
	writeShape(&b, reflect.TypeOf(syncMsg{}), map[reflect.Type]bool{})
	for _, m := range []string{msgHooks, msgHooksDone, msgReady, msgError, envInitPipe, envInitProtocol} {
		b.WriteString(m + ";")
	}
	got := fmt.Sprintf("%x", sha256.Sum256([]byte(b.String())))[:16]
	if got != pinnedInitShape {
		t.Fatalf("initConfig, the spec or the sync messages changed (shape %s, pinned %s): bump initProtocol (now %q) and set pinnedInitShape to %q",
			got, pinnedInitShape, initProtocol, got)
	}
}

// writeShape writes the names, JSON tags and kinds of t's fields, through
// pointers, slices, arrays and maps, each named type once.
func writeShape(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		b.WriteString(t.Kind().String() + "(")
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Map:
		b.WriteString("map(")
		writeShape(b, t.Key(), seen)
		b.WriteString(",")
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Struct:
		b.WriteString(t.String())
		if seen[t] {
			return
		}
		seen[t] = true
		b.WriteString("{")
		for i := range t.NumField() {
			f := t.Field(i)
			b.WriteString(f.Name + " `" + f.Tag.Get("json") + "` ")
			writeShape(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	default:
		b.WriteString(t.String())
	}
}
