#!/usr/bin/env bash
# Installs what Berth's build and tests need on a fresh Debian machine: a
# static busybox for test images, runc as the peer for conformance and
# bench, gcc and libseccomp for the runtime's cgo parts. Go modules come
# through `go` itself.
set -euo pipefail

need=()
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
	need+=(busybox-static)
fi
command -v runc >/dev/null || need+=(runc)
command -v gcc >/dev/null || need+=(gcc)
command -v ip >/dev/null || need+=(iproute2)
# seccomp: libseccomp's headers and static library, found through pkg-config.
pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev pkg-config)

if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "missing packages: ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
		exit 1
	fi
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
