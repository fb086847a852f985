// Package build builds images from Dockerfiles through containerd, with
// no build daemon: each RUN step is a container on berth's runtime over a
// snapshot of the step before, each COPY/ADD a snapshot written in place,
// and each step's changes a layer made by containerd's diff service.
// Parsing is buildkit's (frontend/dockerfile), not ours.
package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a parsed Dockerfile: its stages, the ARGs before the first
// FROM, and the escape token its directive chose.
type Dockerfile struct {
	Name     string
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	Escape   rune
	lines    []string
}

// Parse parses a Dockerfile named name (for errors). An error names the
// file, the line and the line's text.
func Parse(name string, data []byte) (*Dockerfile, error) {
	df := &Dockerfile{Name: name, lines: strings.Split(string(data), "\n")}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, df.located(err)
	}
	df.Escape = res.EscapeToken
	df.Stages, df.MetaArgs, err = instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, df.located(err)
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction: a Dockerfile needs one to start a stage", name)
	}
	return df, nil
}

// located writes err as FILE:LINE: TEXT: ERROR when buildkit gave a
// location.
func (df *Dockerfile) located(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return df.errorAt(le.Locations[0][0].Start.Line, le.Unwrap())
	}
	return fmt.Errorf("%s: %w", df.Name, err)
}

// errorAt is err at line (1-based) of the Dockerfile.
func (df *Dockerfile) errorAt(line int, err error) error {
	text := ""
	if line >= 1 && line <= len(df.lines) {
		text = strings.TrimSpace(df.lines[line-1])
	}
	return fmt.Errorf("%s:%d: %s: %w", df.Name, line, text, err)
}

// lineOf is the first line of a location, 0 when buildkit gave none.
func lineOf(loc []parser.Range) int {
	if len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// text is an instruction as written (every buildkit command is a
// fmt.Stringer giving its source).
func text(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return cmd.Name()
}
