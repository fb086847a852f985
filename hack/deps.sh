#!/usr/bin/env bash
# Installs what Berth's build and tests need on a fresh Debian machine: a
# static busybox for test images, tini for `berth run --init`, skopeo and
# docker-registry for the image tests, runc as the peer for conformance and
# bench, gcc and libseccomp for the runtime's cgo parts, iptables for
# networks, curl for the course's Apache lab (curl from the host). Go
# modules come through `go` itself.
set -euo pipefail

need=()
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
	need+=(busybox-static)
fi
command -v runc >/dev/null || need+=(runc)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v ip >/dev/null || need+=(iproute2)
# Independent checks and the registry the image tests push to and pull from.
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
# networks: berth (its in-process bridge, its isolation and masquerade
# rules) and the portmap plugin set up NAT, published ports and isolation
# with iptables; the network tests
# ping between namespaces (busybox's ping, above).
PATH=$PATH:/usr/sbin:/sbin command -v iptables >/dev/null || need+=(iptables)
# berth run --init: tini's static build, bind-mounted as docker-init.
command -v tini-static >/dev/null || need+=(tini)
# runc's own integration suite (integration/conformance/runc-bats.sh): bats
# from Debian, script(1) (bsdutils, essential), the tools the suite calls
# (gawk, jq, criu for checkpoint.bats, sshfs for mounts_sshfs.bats), xz for
# the cached images, debootstrap for its Debian image (and for the base of
# the course's Dockerfile labs, integration/berth_build_labs_test.go).
command -v bats >/dev/null || need+=(bats)
PATH=$PATH:/usr/sbin:/sbin command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl ca-certificates)
# make bench: berth build against Debian's buildah (bud).
command -v buildah >/dev/null || need+=(buildah)
command -v xz >/dev/null || need+=(xz-utils)
command -v gawk >/dev/null || need+=(gawk)
command -v jq >/dev/null || need+=(jq)
PATH=$PATH:/usr/sbin:/sbin command -v criu >/dev/null || need+=(criu)
command -v sshfs >/dev/null || need+=(sshfs)
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
