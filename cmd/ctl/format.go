package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/template"
)

// formatFuncs are the template functions docker's --format offers that
// berth's outputs use so far.
var formatFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// writeFormat writes v through the Go template format, as docker's
// --format does (a newline after it).
func writeFormat(w io.Writer, format string, v any) error {
	tmpl, err := template.New("format").Funcs(formatFuncs).Parse(format)
	if err != nil {
		return usageError{fmt.Errorf("--format %q: %w", format, err)}
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("--format %q: %w", format, err)
	}
	_, err = fmt.Fprintln(w)
	return err
}
