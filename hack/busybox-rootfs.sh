#!/usr/bin/env bash
# Writes to stdout a tar of a small busybox root filesystem made from the
# host's static busybox: the local parts README's quick start imports as
# an image (`berth import - busybox`), since no Docker Hub is reachable.
#
#   bash hack/busybox-rootfs.sh | berth import - busybox
set -euo pipefail
bb=${BUSYBOX:-/bin/busybox}
if [[ ! -x $bb ]] || ldd "$bb" >/dev/null 2>&1; then
	echo "busybox-rootfs.sh: needs a static busybox at $bb: apt-get install busybox-static (hack/deps.sh does)" >&2
	exit 1
fi
if [[ -t 1 ]]; then
	echo "busybox-rootfs.sh: stdout is a terminal; pipe it into \`berth import - NAME\` or a file" >&2
	exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# mktemp's 0700 would become the image's /: no user but root could then
# reach anything in it.
chmod 755 "$dir"
mkdir -p "$dir"/{bin,etc,root,tmp,proc,sys,dev,var/www}
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
	[[ $applet == busybox || $applet == */* ]] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$dir" -c .
