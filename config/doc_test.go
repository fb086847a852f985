package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocumented keeps docs/CONFIG.md true: every key of Config is in its
// tables (under its table's heading) and nothing else is, and its example
// loads.
func TestDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var documented []string
	section := ""
	heading := regexp.MustCompile("^## `\\[(\\w+)\\]`")
	row := regexp.MustCompile("^\\| `(\\w+)` \\|")
	for _, line := range strings.Split(doc, "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			section = m[1] + "."
		} else if strings.HasPrefix(line, "## ") {
			section = ""
		}
		if m := row.FindStringSubmatch(line); m != nil {
			documented = append(documented, section+m[1])
		}
	}
	keys := tomlKeys(reflect.TypeOf(Config{}), "")
	slices.Sort(documented)
	slices.Sort(keys)
	if !slices.Equal(documented, keys) {
		t.Errorf("docs/CONFIG.md documents %v\nConfig has %v", documented, keys)
	}

	example := regexp.MustCompile("(?s)```toml\n(.*?)```").FindStringSubmatch(doc)
	if example == nil {
		t.Fatal("docs/CONFIG.md has no toml example")
	}
	if _, err := Load(writeConfig(t, example[1])); err != nil {
		t.Errorf("docs/CONFIG.md's example: %v", err)
	}
}

// tomlKeys lists the keys of a config struct, tables' keys with the
// table's name and a dot.
func tomlKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, tomlKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}
