#!/usr/bin/env bash
# Runs the OCI runtime-tools v0.9.0 validation suite (58 tests) against one or
# more OCI runtimes, side by side. See README.md.
#
#   run.sh RUNTIME [RUNTIME...]      e.g. run.sh /work/main/bin/berth-runtime "$(command -v runc)"
#   run.sh --build                   only build the suite into _work/bin
#
# Environment:
#   CONFORMANCE_TESTS="a b"      run only these tests (names of validation/* dirs)
#   CONFORMANCE_TIMEOUT=60       seconds before a test is killed (counts as FAIL)
#   CONFORMANCE_MIN=N            exit 1 if the first runtime passed fewer than N
#   CONFORMANCE_PEER_SUBSET=1    exit 1 if the first runtime fails a test that
#                                the last runtime (the peer, e.g. runc) passed
#   CONFORMANCE_WORK=DIR         build/work dir (default: _work next to this file)
#   CONFORMANCE_RACY="killsig"   tests that race with themselves: a failed run
#                                is tried again, up to CONFORMANCE_TRIES (3) in all
#
# A test PASSES only when it exits 0, prints at least one TAP "ok" line and no
# "not ok" line. Logs: _work/logs/<runtime>/<test>.log (test output, then the
# harness's cleanup notes, lines starting with "###"), and <test>.cmds (every
# command line the test ran the runtime with).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
WORK=${CONFORMANCE_WORK:-$HERE/_work}
BIN=$WORK/bin
RT_MODULE=github.com/opencontainers/runtime-tools

die() { echo "run.sh: $*" >&2; exit 2; }

# ---------------------------------------------------------------------------
# Internal mode, run by testwrap after each test while it still holds the
# test's orphans: force-delete every container left in the runtime's root.
# The root is private to this harness and emptied before each test, so all
# that is there was created by the test that just ran.
#   run.sh --cleanup-root WRAPPER ROOT
cleanup_root() {
	local wrapper=$1 root=$2 ids id out
	unset CONFORMANCE_CMDLOG
	# `list -q` where the runtime has it, plus the state root's directories
	# (runc and Berth keep <root>/<id>/state.json) in case it has not.
	ids=$( { out=$(timeout 20 "$wrapper" list -q 2>/dev/null) && echo "$out"
		if [[ -d $root ]]; then find "$root" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'; fi
	} | grep -E '^[A-Za-z0-9][A-Za-z0-9_.+-]*$' | sort -u || true)
	for id in $ids; do
		echo "### cleanup: LEFTOVER CONTAINER $id: $(timeout 10 "$wrapper" state "$id" 2>&1 | tr -s ' \n' ' ' | cut -c1-300)"
		if ! timeout 30 "$wrapper" delete --force "$id"; then
			echo "### cleanup: delete --force $id failed"
		fi
	done
}
if [[ ${1:-} == --cleanup-root ]]; then
	cleanup_root "$2" "$3"
	exit 0
fi

# ---------------------------------------------------------------------------
# Build runtimetest, the 58 validation binaries and testwrap into
# $WORK/bin, once per change of go.mod/go.sum/testwrap/Go version.
build() {
	local stamp want tmp
	want=$(cd "$HERE" && { cat go.mod go.sum testwrap/main.go; go version; go env GOARCH; } | sha256sum | cut -d' ' -f1)
	stamp=$BIN/.stamp
	if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		return
	fi
	echo "building runtime-tools validation suite into $BIN ..." >&2
	tmp=$WORK/bin.new
	rm -rf "$tmp"
	mkdir -p "$tmp/validation"
	(
		cd "$HERE"
		local tests arch moddir
		tests=$(go list "$RT_MODULE/validation/..." | grep -v '/validation/util$')
		# The validation binaries run on the host; runtimetest runs inside
		# the busybox rootfs, so it must be static (as upstream's Makefile).
		CGO_ENABLED=0 go build -trimpath -o "$tmp/validation/" $tests
		CGO_ENABLED=0 go build -trimpath -o "$tmp/runtimetest" "$RT_MODULE/cmd/runtimetest"
		CGO_ENABLED=0 go build -trimpath -o "$tmp/testwrap" ./testwrap
		arch=$(go env GOARCH)
		moddir=$(go list -m -f '{{.Dir}}' "$RT_MODULE")
		[[ -f $moddir/rootfs-$arch.tar.gz ]] || die "runtime-tools ships no rootfs-$arch.tar.gz"
		cp "$moddir/rootfs-$arch.tar.gz" "$tmp/"
		for t in $tests; do basename "$t"; done | sort >"$tmp/tests.txt"
	)
	echo "$want" >"$tmp/.stamp"
	rm -rf "$BIN"
	mv "$tmp" "$BIN"
	echo "built $(wc -l <"$BIN/tests.txt") validation tests" >&2
}
# ---------------------------------------------------------------------------
usage() {
	awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$SELF" >&2
	exit 2
}
[[ $# -ge 1 ]] || usage
[[ $1 == -h || $1 == --help ]] && usage
if [[ $1 == --build ]]; then # build only (no root needed)
	mkdir -p "$WORK"
	exec 9>"$WORK/.lock"
	flock -n 9 || die "another run.sh is using $WORK"
	build
	exit 0
fi
[[ $(id -u) == 0 ]] || die "the validation tests create containers: run as root"
for tool in go tar unshare timeout flock find; do
	command -v "$tool" >/dev/null || die "needs $tool on PATH"
done

TIMEOUT=${CONFORMANCE_TIMEOUT:-60}
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "CONFORMANCE_TIMEOUT must be a number of seconds"

# Runtimes: absolute paths (a bare name is looked up on PATH). Each gets a
# label (its base name, made unique) used in the report and in _work paths.
RT_BINS=() RT_NAMES=()
for arg in "$@"; do
	bin=$arg
	case $bin in
	/*) ;;
	*/*) bin=$(realpath -e "$bin" 2>/dev/null || true) ;; # the tests run elsewhere
	*) bin=$(command -v "$bin" || true) ;;
	esac
	[[ -n $bin && -x $bin && -f $bin ]] || die "runtime not found or not executable: $arg"
	name=$(basename "$bin")
	n=2
	while [[ " ${RT_NAMES[*]:-} " == *" $name "* ]]; do
		name="$(basename "$bin")-$n"
		n=$((n + 1))
	done
	RT_BINS+=("$bin")
	RT_NAMES+=("$name")
done

mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock -n 9 || die "another run.sh is using $WORK"

build

ALL_TESTS=$(cat "$BIN/tests.txt")
if [[ -n ${CONFORMANCE_TESTS:-} ]]; then
	TESTS=()
	for t in $CONFORMANCE_TESTS; do
		grep -qxF "$t" "$BIN/tests.txt" || die "no such validation test: $t (see $BIN/tests.txt)"
		TESTS+=("$t")
	done
else
	mapfile -t TESTS <<<"$ALL_TESTS"
fi
NTESTS=${#TESTS[@]}

# ---------------------------------------------------------------------------
# Per runtime:
#   rt/<name>/<name>  wrapper used as $RUNTIME: util.NewRuntime does
#                     exec.LookPath($RUNTIME), so it must be one executable, not
#                     a command line. It adds `--root state/<name>` (a private
#                     state root, so cleanup only ever sees this run's
#                     containers) and logs each invocation.
#   cwd/<name>/       the tests' working directory: they read ./runtimetest and
#                     ./rootfs-<arch>.tar.gz from it.
#   tmp/<name>/       $TMPDIR: bundles (ocitest*) and pid-file dirs (oci-pid*).
setup_runtime() {
	local bin=$1 name=$2 wrapper
	local root=$WORK/state/$name
	mkdir -p "$WORK/rt/$name" "$root" "$WORK/cwd/$name" "$WORK/tmp/$name"
	wrapper=$WORK/rt/$name/$name
	cat >"$wrapper" <<EOF
#!/bin/bash
# Generated by run.sh: runs $bin with a private state root for the conformance run.
if [[ -n \${CONFORMANCE_CMDLOG:-} ]]; then
	{ printf '%q ' "\$@"; echo; } >>"\$CONFORMANCE_CMDLOG" 2>/dev/null || true
fi
exec $(printf '%q' "$bin") --root $(printf '%q' "$root") "\$@"
EOF
	chmod 755 "$wrapper"
	cp -f "$BIN/runtimetest" "$BIN"/rootfs-*.tar.gz "$WORK/cwd/$name/"
	rm -rf "$WORK/logs/$name"
	mkdir -p "$WORK/logs/$name"
	# Leftovers of an interrupted earlier run.
	cleanup_root "$wrapper" "$root" >/dev/null 2>&1 || true
	clean_tmp "$WORK/tmp/$name" >/dev/null || true
}

# clean_tmp DIR: remove (and report) whatever the test left in its TMPDIR.
clean_tmp() {
	local dir=$1 left m
	left=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
	[[ -z $left ]] && return 0
	echo "### harness: LEFTOVER TEMP DIRS in \$TMPDIR: $left"
	# A runtime should not leave host mounts in a bundle, but do not let one
	# make rm -rf cross into the host's files.
	for m in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r); do
		echo "### harness: LEFTOVER MOUNT $m"
		umount -l "$m" || true
	done
	find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + || true
	return 1
}

# Cgroups the tests ask for (cgroups.AbsCgroupPath/RelCgroupPath in
# runtime-tools), and any named after a container id the test created.
check_cgroups() {
	local cmds=$1 ids names=(cgrouptest testdir) d found=0
	ids=$(awk '$1 == "create" && NF > 1 { print $NF }' "$cmds" 2>/dev/null | grep -E '^[A-Za-z0-9][A-Za-z0-9_.-]*$' | sort -u || true)
	for id in $ids; do names+=("$id"); done
	local expr=()
	for n in "${names[@]}"; do expr+=(-o -name "$n"); done
	while IFS= read -r d; do
		[[ -n $d ]] || continue
		echo "### harness: LEFTOVER CGROUP $d"
		found=1
		# Only empty cgroups can be removed, deepest first.
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done < <(find /sys/fs/cgroup -mindepth 2 -maxdepth 5 -type d \( -false "${expr[@]}" \) -prune -print 2>/dev/null)
	return $found
}

declare -A RESULT NOTE
PASSED=()
INTERRUPTED=0
for i in "${!RT_NAMES[@]}"; do
	setup_runtime "${RT_BINS[$i]}" "${RT_NAMES[$i]}"
	PASSED[$i]=0
done

# run_one INDEX TEST: run TEST against runtime INDEX, set RESULT/NOTE.
run_one() {
	local i=$1 t=$2 name=${RT_NAMES[$1]}
	local wrapper=$WORK/rt/$name/$name root=$WORK/state/$name tmp=$WORK/tmp/$name
	local log=$WORK/logs/$name/$t.log cmds=$WORK/logs/$name/$t.cmds
	local rc=0 oks notoks notes=()
	: >"$cmds"
	# Host state a runtime that failed to unshare a namespace would change
	# (linux_sysctl sets net.ipv4.ip_forward, hostname sets the hostname).
	local host_fwd host_name host_prop
	host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
	host_name=$(hostname)
	host_prop=$(findmnt -no PROPAGATION / || true)
	{
		echo "### harness: test $t, runtime ${RT_BINS[$i]} (as \$RUNTIME=$wrapper), $(date -Is)"
		echo "### harness: cwd=$WORK/cwd/$name TMPDIR=$tmp timeout=${TIMEOUT}s"
	} >"$log"
	(
		cd "$WORK/cwd/$name"
		export RUNTIME=$wrapper TMPDIR=$tmp CONFORMANCE_CMDLOG=$cmds
		exec "$BIN/testwrap" -timeout "${TIMEOUT}s" -log "$log" \
			-after "$(printf '%q ' "$SELF" --cleanup-root "$wrapper" "$root")" \
			-- "$BIN/validation/$t"
	) || rc=$?

	# Second pass, now that every process is gone: anything still in the
	# root is a container the runtime could not delete.
	if [[ -n $(find "$root" -mindepth 1 -maxdepth 1 2>/dev/null) ]]; then
		cleanup_root "$wrapper" "$root" >>"$log" 2>&1 || true
		if [[ -n $(find "$root" -mindepth 1 -maxdepth 1 2>/dev/null) ]]; then
			echo "### harness: STATE LEFT IN ROOT after delete --force: $(ls "$root" | tr '\n' ' ') (removed)" >>"$log"
			find "$root" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + || true
		fi
	fi
	clean_tmp "$tmp" >>"$log" 2>&1 || true
	check_cgroups "$cmds" >>"$log" 2>&1 || true
	if [[ $(cat /proc/sys/net/ipv4/ip_forward) != "$host_fwd" ]]; then
		echo "### harness: HOST CHANGED: net.ipv4.ip_forward became $(cat /proc/sys/net/ipv4/ip_forward) (restored to $host_fwd)" >>"$log"
		echo "$host_fwd" >/proc/sys/net/ipv4/ip_forward
	fi
	if [[ $(hostname) != "$host_name" ]]; then
		echo "### harness: HOST CHANGED: hostname became $(hostname) (restored to $host_name)" >>"$log"
		hostname "$host_name"
	fi
	if [[ $(findmnt -no PROPAGATION / || true) != "$host_prop" ]]; then
		echo "### harness: HOST CHANGED: propagation of / became $(findmnt -no PROPAGATION /) (was $host_prop; not restored)" >>"$log"
	fi
	grep -q '^### testwrap: INTERRUPTED' "$log" && INTERRUPTED=1

	# Strict TAP verdict, from the test's own output only (up to testwrap's
	# first note; the cleanup notes after it all start with "###").
	local tap
	tap=$(awk '/^### testwrap: /{exit} {print}' "$log")
	oks=$(grep -cE '^ok( |$)' <<<"$tap" || true)
	notoks=$(grep -cE '^not ok( |$)' <<<"$tap" || true)
	if [[ $rc == 0 && $oks -ge 1 && $notoks == 0 ]]; then
		RESULT[$i,$t]=PASS
		PASSED[$i]=$((PASSED[$i] + 1))
		if [[ $(awk '/^ok( |$)/ && !/#[[:space:]]*[Ss][Kk][Ii][Pp]/' <<<"$tap" | wc -l) == 0 ]]; then
			notes+=("all ok lines are SKIP")
		fi
	else
		RESULT[$i,$t]=FAIL
		case $rc in
		0) ;;
		124) notes+=("timed out after ${TIMEOUT}s") ;;
		*) notes+=("exit $rc") ;;
		esac
		[[ $notoks == 0 ]] || notes+=("$notoks not ok")
		[[ $oks -ge 1 ]] || notes+=("no ok line")
		# The hook tests and the *_fail tests never print an "ok": when they
		# are content they exit 0 with no result and no diagnostic at all.
		if [[ $rc == 0 && $oks == 0 && $notoks == 0 ]] && ! grep -q '^  ---' <<<"$tap"; then
			notes+=("exit 0 and no diagnostic: this test's only way to succeed, a FAIL by the strict rule")
		fi
	fi
	grep -q '^### cleanup: LEFTOVER CONTAINER' "$log" && notes+=("left $(grep -c '^### cleanup: LEFTOVER CONTAINER' "$log") container(s)")
	grep -q '^### testwrap: LEFTOVER PROCESSES killed' "$log" && notes+=("left processes")
	grep -q '^### harness: LEFTOVER TEMP DIRS' "$log" && notes+=("left temp dirs")
	grep -q '^### harness: LEFTOVER CGROUP' "$log" && notes+=("left cgroups")
	grep -q '^### harness: STATE LEFT IN ROOT' "$log" && notes+=("runtime could not delete")
	grep -q '^### harness: HOST CHANGED' "$log" && notes+=("CHANGED THE HOST (see log)")
	NOTE[$i,$t]=$(IFS=';'; echo "${notes[*]:-}" | sed 's/;/; /g')
}

# killsig signals a `sh` as soon as `state` says running: when the signal
# lands before sh has run its `trap`, sh dies of it and the test fails,
# whatever the runtime (runc too, one run in four here). Such a test is
# tried again, for every runtime alike, and the note says which try passed;
# each failed try's log is kept as <test>.log.tryN.
RACY=" ${CONFORMANCE_RACY-killsig} "
TRIES=${CONFORMANCE_TRIES:-3}

# run_racy INDEX TEST: run_one, again after a failure of a racy test.
run_racy() {
	local i=$1 t=$2 try=1 log=$WORK/logs/${RT_NAMES[$1]}/$2.log
	run_one "$i" "$t"
	while [[ ${RESULT[$i,$t]} != PASS && $RACY == *" $t "* && $try -lt $TRIES && $INTERRUPTED == 0 ]]; do
		mv -f "$log" "$log.try$try"
		try=$((try + 1))
		run_one "$i" "$t"
	done
	if ((try > 1)); then
		local n="try $try of $TRIES (racy test; earlier logs: $t.log.try*)"
		NOTE[$i,$t]=${NOTE[$i,$t]:+${NOTE[$i,$t]}; }$n
	fi
}

width=0
for t in "${TESTS[@]}"; do ((${#t} > width)) && width=${#t}; done

echo "runtime-tools $(cd "$HERE" && go list -m -f '{{.Version}}' "$RT_MODULE") validation, $NTESTS tests, timeout ${TIMEOUT}s; logs in $WORK/logs/"
for i in "${!RT_NAMES[@]}"; do
	echo "  ${RT_NAMES[$i]} = ${RT_BINS[$i]} ($("${RT_BINS[$i]}" --version 2>/dev/null | head -1 || true))"
done
# ^C reaches testwrap too (same process group), which kills the test and
# still cleans up; stop after that test.
trap 'INTERRUPTED=1' INT TERM HUP
DONE=()
for t in "${TESTS[@]}"; do
	line=$(printf "%-${width}s" "$t")
	for i in "${!RT_NAMES[@]}"; do
		run_racy "$i" "$t"
		line+=" ${RT_NAMES[$i]}: ${RESULT[$i,$t]} "
		[[ $INTERRUPTED == 0 ]] || break
	done
	[[ $INTERRUPTED == 0 ]] || break
	echo "${line% }"
	DONE+=("$t")
done
if [[ $INTERRUPTED == 1 ]]; then
	echo "interrupted during $t; results so far:" >&2
	TESTS=("${DONE[@]}")
	NTESTS=${#TESTS[@]}
fi

echo
for i in "${!RT_NAMES[@]}"; do
	echo "${RT_NAMES[$i]}: ${PASSED[$i]}/$NTESTS passed"
done

notes_hdr=0
for t in "${TESTS[@]}"; do
	for i in "${!RT_NAMES[@]}"; do
		[[ -n ${NOTE[$i,$t]} ]] || continue
		if [[ $notes_hdr == 0 ]]; then
			echo
			echo "notes (details in $WORK/logs/<runtime>/<test>.log):"
			notes_hdr=1
		fi
		echo "  $t ${RT_NAMES[$i]} ${RESULT[$i,$t]}: ${NOTE[$i,$t]}"
	done
done

# Machine-readable results.
{
	printf 'test'
	for i in "${!RT_NAMES[@]}"; do printf '\t%s' "${RT_NAMES[$i]}"; done
	echo
	for t in "${TESTS[@]}"; do
		printf '%s' "$t"
		for i in "${!RT_NAMES[@]}"; do printf '\t%s' "${RESULT[$i,$t]}"; done
		echo
	done
} >"$WORK/results.tsv"

status=0
if [[ -n ${CONFORMANCE_MIN:-} ]]; then
	if ((PASSED[0] < CONFORMANCE_MIN)); then
		echo "FAIL: ${RT_NAMES[0]} passed ${PASSED[0]}, fewer than CONFORMANCE_MIN=$CONFORMANCE_MIN" >&2
		status=1
	fi
fi
if [[ ${CONFORMANCE_PEER_SUBSET:-0} == 1 && ${#RT_NAMES[@]} -ge 2 ]]; then
	last=$((${#RT_NAMES[@]} - 1))
	for t in "${TESTS[@]}"; do
		if [[ ${RESULT[$last,$t]} == PASS && ${RESULT[0,$t]} != PASS ]]; then
			echo "FAIL: ${RT_NAMES[0]} fails $t, which ${RT_NAMES[$last]} passes" >&2
			status=1
		fi
	done
fi
[[ $INTERRUPTED == 0 ]] || exit 130
exit $status
