//go:build tools

// Package conformance pins the OCI runtime-tools validation suite so that
// run.sh can build it with `go build`.
package conformance

import (
	_ "github.com/opencontainers/runtime-tools/cmd/runtimetest"
	_ "github.com/opencontainers/runtime-tools/validation/util"
)
