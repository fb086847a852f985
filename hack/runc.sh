#!/usr/bin/env bash
# Prints the path of runc at the version containerd pins (the runc-version
# file of the containerd module that hack/containerd pins), building it
# first into _output/runc-VERSION/runc when it is not there yet. make bench
# compares berth-runtime with it.
#
#   hack/runc.sh [VERSION]     a VERSION (e.g. v1.5.2) overrides containerd's
#
# runc is built from its Go module as its own Makefile builds it (`make
# runc`: dynamic, PIE, seccomp), without the libpathrs tag, which wants the
# Rust libpathrs library: runc then resolves paths with its pure-Go code.
# Needs gcc, make, pkg-config and libseccomp-dev (hack/deps.sh installs
# them); the modules come through the Go module proxy. Build output goes
# to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
GO=${GO:-go}

# moduleDir MODULE@VERSION: where the Go module cache holds it.
moduleDir() {
	"$GO" mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

version=${1:-}
if [[ -z $version ]]; then
	containerd=$(cd "$HERE/containerd" && "$GO" list -m -f '{{.Path}}@{{.Version}}' github.com/containerd/containerd/v2)
	version=$(tr -d ' \n' <"$(moduleDir "$containerd")/script/setup/runc-version")
fi
out=$REPO/_output/runc-$version/runc
if [[ -x $out ]]; then
	echo "$out"
	exit 0
fi

echo "building runc $version into $out" >&2
dir=$(moduleDir "github.com/opencontainers/runc@$version")
if [[ ! -d $dir ]]; then
	echo "runc.sh: could not download github.com/opencontainers/runc@$version" >&2
	exit 1
fi
# The module cache is read-only, and runc's Makefile builds in place.
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$dir/." "$work/"
chmod -R u+w "$work"
# The module zip has no vendor dir: dependencies come through the proxy.
# COMMIT: the module has no git history for runc's `git describe`.
GOFLAGS=-mod=mod make -C "$work" runc GO="$GO" RUNC_BUILDTAGS=-libpathrs COMMIT="$version" >&2 2> >(grep -v '^fatal: not a git repository' >&2)
mkdir -p "$(dirname "$out")"
install -m 0755 "$work/runc" "$out"
echo "$out"
