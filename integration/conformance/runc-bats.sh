#!/usr/bin/env bash
# Runs runc's own integration suite (the bats files in tests/integration of
# the runc Go module, at the version containerd pins) against berth-runtime
# and against runc built from the same module, side by side, file by file.
# See README.md.
#
#   runc-bats.sh [--setup]    --setup: only prepare (suite copy, helper
#                             programs, images, runc), run nothing
#
# Environment:
#   RUNC_BATS="exec.bats kill"   run only these files (.bats optional)
#   RUNC_BATS_RUNTIMES="A B"     runtimes (default: bin/berth-runtime and
#                                the runc hack/runc.sh builds)
#   RUNC_BATS_VERSION=v1.5.2     the runc module (default: containerd's pin)
#   RUNC_BATS_TIMEOUT=600        seconds before one file's run is killed
#   RUNC_BATS_EXCLUDE=FILE       exclusion list (default runc-exclusions.txt)
#   RUNC_BATS_STRICT=1           exit 1 when the first runtime fails a test
#                                the last one passes and that is not excluded
#   RUNC_BATS_CACHE=DIR          image cache (default /var/cache/berth-conformance)
#   CONFORMANCE_WORK=DIR         work dir (default: _work next to this file)
#
# Output: one line per test with each runtime's result (ok, not ok, skip),
# the totals per runtime, then the tests the first runtime fails that the
# last one passes. Logs: _work/runc-bats/logs/<runtime>/<file>.log (the
# whole bats output, TAP with each failure's details), results.tsv.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${CONFORMANCE_WORK:-$HERE/_work}/runc-bats
CACHE=${RUNC_BATS_CACHE:-/var/cache/berth-conformance}
EXCLUDE=${RUNC_BATS_EXCLUDE:-$HERE/runc-exclusions.txt}
TIMEOUT=${RUNC_BATS_TIMEOUT:-600}
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
GO=${GO:-go}

die() { echo "runc-bats.sh: $*" >&2; exit 2; }

[[ $(id -u) == 0 ]] || die "runc's suite creates containers, cgroups and mounts: run as root"
for tool in bats script debootstrap xz "$GO" make gcc; do
	command -v "$tool" >/dev/null || die "needs $tool on PATH (hack/deps.sh installs it)"
done
mkdir -p "$WORK" "$CACHE"
exec 9>"$WORK/.lock"
flock -n 9 || die "another runc-bats.sh is using $WORK"

# runc: built from the pinned module by hack/runc.sh, which also tells the
# version the suite must come from.
RUNC_BIN=$(GO=$GO bash "$REPO/hack/runc.sh" ${RUNC_BATS_VERSION:-})
VERSION=$("$RUNC_BIN" --version | awk 'NR == 1 { print "v" $3 }')
MODDIR=$("$GO" mod download -json "github.com/opencontainers/runc@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -d $MODDIR/tests/integration ]] || die "no tests/integration in the runc module at $MODDIR"

# A writable copy of the module (the cache is read-only; the suite writes
# testdata/ and the helper programs into tests/cmd/_bin), made once per
# version, with the helpers built as runc's `make test-binaries` builds them.
SRC=$WORK/src-$VERSION
if [[ ! -f $SRC/.built ]]; then
	echo "copying the runc $VERSION module to $SRC and building tests/cmd ..." >&2
	rm -rf "$SRC"
	mkdir -p "$SRC"
	cp -r "$MODDIR/." "$SRC/"
	chmod -R u+w "$SRC"
	# Module zips keep no mode bits: the suite's scripts must be executable.
	find "$SRC/tests" -type f -exec grep -lI '^#!' {} + | xargs -r chmod +x
	GOFLAGS=-mod=mod make -C "$SRC" test-binaries GO="$GO" RUNC_BUILDTAGS=-libpathrs COMMIT="$VERSION" >&2
	touch "$SRC/.built"
fi
INTEGRATION=$SRC/tests/integration

# Images, cached between runs: get-images.sh only downloads what is not in
# testdata/ already, under the names it prints (it picks *.tar.xz; tar
# detects the compression when the suite unpacks them).
arch=$("$GO" env GOARCH)
# The busybox one is made again when busybox or the script that makes it
# changed.
busybox_img=$CACHE/busybox-$arch.tar.xz
want=$(cat "$REPO/hack/busybox-rootfs.sh" /bin/busybox | sha256sum | cut -d' ' -f1)
if [[ ! -s $busybox_img || $(cat "$busybox_img.stamp" 2>/dev/null) != "$want" ]]; then
	echo "making $busybox_img from busybox-static ..." >&2
	bash "$REPO/hack/busybox-rootfs.sh" | xz -T0 -1 >"$busybox_img.tmp"
	mv "$busybox_img.tmp" "$busybox_img"
	echo "$want" >"$busybox_img.stamp"
fi
# Files: all, or RUNC_BATS's.
FILES=()
if [[ -n ${RUNC_BATS:-} ]]; then
	for f in $RUNC_BATS; do
		f=${f%.bats}.bats
		[[ -f $INTEGRATION/$f ]] || die "no such file in runc's suite: $f (see $INTEGRATION)"
		FILES+=("$f")
	done
else
	for f in "$INTEGRATION"/*.bats; do FILES+=("$(basename "$f")"); done
fi

# The Debian image only when a chosen file uses it (debootstrap takes
# minutes); otherwise an empty stand-in, so that get-images.sh does not try
# to download it.
debian_img=$CACHE/debian-$arch.tar.xz
if grep -q setup_debian "${FILES[@]/#/$INTEGRATION/}" && [[ ! -s $debian_img ]]; then
	echo "making $debian_img with debootstrap --variant=minbase bookworm (minutes) ..." >&2
	rm -rf "$CACHE/debian-rootfs.tmp"
	debootstrap --variant=minbase bookworm "$CACHE/debian-rootfs.tmp" >"$CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $CACHE/debootstrap.log"
	tar --numeric-owner -C "$CACHE/debian-rootfs.tmp" -c . | xz -T0 -1 >"$debian_img.tmp"
	mv "$debian_img.tmp" "$debian_img"
	rm -rf "$CACHE/debian-rootfs.tmp"
fi
ln -sf "$busybox_img" "$INTEGRATION/testdata/busybox-$arch.tar.xz"
rm -f "$INTEGRATION/testdata/debian-$arch.tar.xz"
if [[ -s $debian_img ]]; then
	ln -s "$debian_img" "$INTEGRATION/testdata/debian-$arch.tar.xz"
else
	: >"$INTEGRATION/testdata/debian-$arch.tar.xz"
fi

[[ ${1:-} == --setup ]] && { echo "ready: $INTEGRATION, runc $RUNC_BIN" >&2; exit 0; }

# Runtimes and their labels (base names, made unique).
read -r -a RT_BINS <<<"${RUNC_BATS_RUNTIMES:-$REPO/bin/berth-runtime $RUNC_BIN}"
RT_NAMES=()
for i in "${!RT_BINS[@]}"; do
	b=${RT_BINS[$i]}
	[[ $b == /* ]] || b=$(realpath -e "$b" 2>/dev/null || command -v "$b" || true)
	[[ -n $b && -x $b ]] || die "runtime not found or not executable: ${RT_BINS[$i]}"
	RT_BINS[$i]=$b
	name=$(basename "$b")
	[[ $name == runc ]] && name=runc-$VERSION
	while [[ " ${RT_NAMES[*]:-} " == *" $name "* ]]; do name+=_; done
	RT_NAMES+=("$name")
done

# One TMPDIR root per work dir (held by its lock): two runs with different
# CONFORMANCE_WORK never remove each other's tests.
TMPROOT=/tmp/berth-runc-bats.$(printf '%s' "$WORK" | sha256sum | cut -c1-8)

# run_file NAME BIN FILE: the file's TAP, under script(1) so the tests have
# a terminal, as in runc's CI. Each runtime has its own TMPDIR, under which
# the suite keeps every test's state root, bundle and sockets (/tmp: the
# userns tests need every parent directory searchable).
run_file() {
	local name=$1 bin=$2 f=$3 log=$WORK/logs/$1/$3.log tmp=$TMPROOT/$1 cmd
	mkdir -p "$WORK/logs/$name"
	rm -rf --one-file-system "$tmp"
	mkdir -p "$tmp"
	chmod 755 "$tmp"
	cmd=$(printf '%q ' cd "$INTEGRATION") && cmd+="&& $(printf '%q ' env RUNC="$bin" TMPDIR="$tmp" timeout -k 10 "$TIMEOUT" bats --tap "$f")"
	# stdin: a fifo opened for reading and writing, which never reaches
	# EOF. At EOF on its stdin script(1) sends the pty an EOF of its own,
	# which the first container of a file could read and echo back (a
	# stray ^@ before its output, failing its first test now and then, for
	# runc and berth-runtime alike).
	[[ -p $WORK/stdin.fifo ]] || mkfifo "$WORK/stdin.fifo"
	local start=$SECONDS rc=0
	script -q -e -f -c "$cmd" /dev/null <>"$WORK/stdin.fifo" 2>&1 | tr -d '\r' >"$log" || rc=$?
	echo "### runc-bats: $f under $bin: exit $rc after $((SECONDS - start))s" >>"$log"
	# What a killed run (timeout) left: mounts first, then the files.
	local m
	for m in $(findmnt -rn -o TARGET | grep -F "$tmp/" | sort -r); do umount -l "$m" || true; done
	rm -rf --one-file-system "$tmp" || true
	# The suite's teardown removes its parent cgroup from the v1
	# hierarchies it knows by name; on a hybrid host the unified one
	# (/sys/fs/cgroup/unified) keeps it, empty. rmdir only takes empty ones.
	for m in /sys/fs/cgroup/*/runc-cgroups-integration-test /sys/fs/cgroup/runc-cgroups-integration-test; do
		[[ -d $m ]] && find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

# results FILE LOG: "test name<TAB>ok|not ok|skip" from a TAP log.
results() {
	sed -nE 's/^(ok|not ok) [0-9]+ (.*)$/\1\t\2/p' "$2" | awk -F'\t' '{
		r = $1; t = $2
		if (t ~ /# [Ss][Kk][Ii][Pp]/) { r = "skip"; sub(/ # [Ss][Kk][Ii][Pp].*$/, "", t) }
		print t "\t" r }'
}

declare -A RES SEEN
declare -A TOT
ORDER=()
echo "runc $VERSION integration suite ($INTEGRATION), ${#FILES[@]} files; logs in $WORK/logs/"
for i in "${!RT_NAMES[@]}"; do echo "  ${RT_NAMES[$i]} = ${RT_BINS[$i]}"; done
trap 'echo "interrupted" >&2; exit 130' INT TERM
: >"$WORK/results.tsv.new"
for f in "${FILES[@]}"; do
	for i in "${!RT_NAMES[@]}"; do
		run_file "${RT_NAMES[$i]}" "${RT_BINS[$i]}" "$f"
		while IFS=$'\t' read -r t r; do
			k="$f: $t"
			[[ -n ${SEEN[$k]+x} ]] || { SEEN[$k]=1; ORDER+=("$k"); }
			RES[$k,$i]=$r
		done < <(results "$f" "$WORK/logs/${RT_NAMES[$i]}/$f.log")
	done
	for k in "${ORDER[@]}"; do
		[[ $k == "$f: "* && -z ${RES[$k,printed]+x} ]] || continue
		RES[$k,printed]=1
		line=$k
		row=${k#"$f: "}
		for i in "${!RT_NAMES[@]}"; do
			r=${RES[$k,$i]:-missing}
			line+="  ${RT_NAMES[$i]}: $r"
			row+=$'\t'$r
			TOT[$i,$r]=$((${TOT[$i,$r]:-0} + 1))
		done
		echo "$line"
		printf '%s\t%s\n' "$f" "$row" >>"$WORK/results.tsv.new"
	done
done
mv "$WORK/results.tsv.new" "$WORK/results.tsv"
rmdir "$TMPROOT" 2>/dev/null || true

echo
for i in "${!RT_NAMES[@]}"; do
	echo "${RT_NAMES[$i]}: ${TOT[$i,ok]:-0} ok, ${TOT[$i,not ok]:-0} not ok, ${TOT[$i,skip]:-0} skip, ${TOT[$i,missing]:-0} missing, of ${#ORDER[@]}"
done

# The first runtime against the last: what it fails that the peer passes.
status=0
if ((${#RT_NAMES[@]} >= 2)); then
	last=$((${#RT_NAMES[@]} - 1))
	excluded() { [[ -f $EXCLUDE ]] && grep -v '^#' "$EXCLUDE" | cut -f1 | grep -qxF "$1"; }
	worse=() excl=()
	for k in "${ORDER[@]}"; do
		[[ ${RES[$k,$last]:-} == ok && ${RES[$k,0]:-missing} != ok && ${RES[$k,0]:-missing} != skip ]] || continue
		if excluded "$k"; then excl+=("$k"); else worse+=("$k"); fi
	done
	echo
	echo "${RT_NAMES[0]} fails ${#worse[@]} test(s) ${RT_NAMES[$last]} passes (and ${#excl[@]} on $(basename "$EXCLUDE")):"
	for k in "${worse[@]}"; do echo "  $k"; done
	for k in "${excl[@]}"; do echo "  $k (excluded)"; done
	if ((${#worse[@]})); then
		echo
		echo "by file:"
		printf '%s\n' "${worse[@]}" | sed 's/: .*//' | sort | uniq -c | sort -rn
		[[ ${RUNC_BATS_STRICT:-0} == 1 ]] && status=1
	fi
fi
exit $status
