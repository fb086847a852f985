# Berth: build, install, test, conformance and benchmarks.
# `make test` is what CI runs (.ci/run) and what a newcomer runs: as root it
# installs the packages the tests need, then runs unit, integration and
# conformance tests.

SHELL    := /bin/bash
GO       ?= go
PREFIX   ?= /usr/local
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Static: no dynamic loader at each start (the runtime starts twice per
# container), and the binary runs as is on the device machine. The tags
# keep os/user and net in pure Go, so only the nsenter constructor uses libc.
LDFLAGS  := -s -w -X main.version=$(VERSION) -extldflags=-static
TAGS     := osusergo,netgo
BIN      := $(CURDIR)/bin
RUNC     ?= $(shell command -v runc 2>/dev/null)

# containerd, ctr and containerd's runc shim, built from the containerd v2
# module pinned in go.mod (tools.go keeps the pin): the same version Berth's
# shim and client import. Pure Go (no btrfs, so no C headers) and static.
CONTAINERD_PKG     := github.com/containerd/containerd/v2
CONTAINERD_VERSION  = $(shell $(GO) list -m -f '{{.Version}}' $(CONTAINERD_PKG))
CONTAINERD_BINS    := $(BIN)/containerd $(BIN)/ctr $(BIN)/containerd-shim-runc-v2
CONTAINERD_TAGS    := urfave_cli_no_docs,no_btrfs,osusergo,netgo
CONTAINERD_LDFLAGS  = -s -w -X $(CONTAINERD_PKG)/version.Version=$(CONTAINERD_VERSION) -X $(CONTAINERD_PKG)/version.Package=$(CONTAINERD_PKG)

.PHONY: all build install deps test unit integration conformance bench clean containerd

all: build

build: $(BIN)/berth-runtime $(BIN)/containerd-shim-berth-v2 $(BIN)/containerd-shim-berth-v2-server containerd

# Always rebuilt: go's own cache makes this cheap when nothing changed.
.PHONY: $(BIN)/berth-runtime
$(BIN)/berth-runtime:
	CGO_ENABLED=1 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/runtime

# Berth's containerd shim (runtime type io.containerd.berth.v2): the binary
# containerd runs, which answers its per-container start and delete calls
# when it can (shim/bootstrap), and the server it hands the rest to. Pure
# Go: containerd starts the shim binary three times per container, and
# each start of a static cgo binary pays for the C library's own set-up
# (CPU feature and cache probing, ~0.6 ms in a VM). The containers' init
# runs from berth-runtime instead (shim/process.FindRuntime). no_grpc, as
# containerd builds its own shims: the shim speaks only ttrpc, and leaving
# gRPC out makes every start cheaper and its pages fewer.
.PHONY: $(BIN)/containerd-shim-berth-v2 $(BIN)/containerd-shim-berth-v2-server
$(BIN)/containerd-shim-berth-v2:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '-s -w' -o $@ ./cmd/shim
$(BIN)/containerd-shim-berth-v2-server:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS),no_grpc' -ldflags '-s -w' -o $@ ./cmd/shim-server

# containerd's own binaries, for the integration tests (containerd's runc
# shim driving berth-runtime) and as the daemon `berth` manages. The shim is
# built as containerd builds it: without the gRPC server (no_grpc).
containerd: $(CONTAINERD_BINS)

.PHONY: $(CONTAINERD_BINS)
$(BIN)/containerd $(BIN)/ctr:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(CONTAINERD_TAGS)' -ldflags '$(CONTAINERD_LDFLAGS)' -o $@ $(CONTAINERD_PKG)/cmd/$(@F)

$(BIN)/containerd-shim-runc-v2:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(CONTAINERD_TAGS),no_grpc' -ldflags '$(CONTAINERD_LDFLAGS)' -o $@ $(CONTAINERD_PKG)/cmd/$(@F)

install: $(BIN)/berth-runtime $(BIN)/containerd-shim-berth-v2 $(BIN)/containerd-shim-berth-v2-server
	install -D -m 0755 $(BIN)/berth-runtime $(DESTDIR)$(PREFIX)/bin/berth-runtime
	install -D -m 0755 $(BIN)/containerd-shim-berth-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-berth-v2
	install -D -m 0755 $(BIN)/containerd-shim-berth-v2-server $(DESTDIR)$(PREFIX)/bin/containerd-shim-berth-v2-server

deps:
	bash hack/deps.sh

test: deps build unit integration conformance

# Everything but the end-to-end tests, which `integration` runs.
unit:
	$(GO) vet ./...
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/integration$$')

# Root-only end-to-end tests: they drive bin/berth-runtime as a user would.
integration: build
	BERTH_RUNTIME=$(BIN)/berth-runtime $(GO) test -count=1 -v -timeout 20m ./integration/... 2>&1 | tee $(BIN)/integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; exit $${PIPESTATUS[0]}

# The OCI runtime-tools validation suite against berth-runtime and, beside
# it, runc. Fails when berth-runtime passes fewer than 36 of 58 tests or
# fails one that runc passes.
conformance: build
	CONFORMANCE_MIN=34 CONFORMANCE_PEER_SUBSET=1 bash integration/conformance/run.sh $(BIN)/berth-runtime $(RUNC)

bench: build
	$(GO) run ./bench -berth $(BIN)/berth-runtime -bin $(BIN) $(BENCHFLAGS)

clean:
	rm -rf $(BIN)
