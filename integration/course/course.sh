#!/usr/bin/env bash
# The course's docker commands (chapter 1: images, containers, volumes)
# with berth in docker's place, as a user types them. Docker Hub is a
# local registry: berth.toml names it as docker.io's mirror, so
# `pull ubuntu:focal` is the course's own line; it holds ubuntu:focal and
# hello-world, both busybox stand-ins (no bash: /bin/sh in its place,
# and a file written in place of `apt install`). The account the course
# pushes to is a second registry, with a password.
#
# integration/berth_course_test.go runs it; by hand:
#   BERTH_BIN=bin/berth BERTH_CONFIG=... HUB=127.0.0.1:PORT \
#   ACCOUNT_REGISTRY=127.0.0.1:PORT ACCOUNT_USER=u ACCOUNT_PASSWORD=p \
#   WORKDIR=/tmp/x bash integration/course/course.sh
#
# Each course line prints "ok   LINE", or "FAIL LINE (exit N)" and its
# output indented; the script exits 1 when any failed. Left out:
# `--vm 1 --vm-bytes` (stress's flags, not docker's) and Dockerfile
# builds. The web server is busybox httpd in apache2's place; focal:net
# stands in for focal:with-ping (busybox has ping).
set -uo pipefail
: "${BERTH_BIN:?} ${BERTH_CONFIG:?} ${HUB:?} ${ACCOUNT_REGISTRY:?} ${ACCOUNT_USER:?} ${ACCOUNT_PASSWORD:?} ${WORKDIR:?}"

# berth is this test's berth, for the script's lines and for whatever they
# start (timeout, script's shell): a wrapper first on PATH, so that no line
# reaches another berth and its containerd.
mkdir -p "$WORKDIR/bin"
printf '#!/bin/sh\nexec %q --config %q "$@"\n' "$BERTH_BIN" "$BERTH_CONFIG" >"$WORKDIR/bin/berth"
chmod +x "$WORKDIR/bin/berth"
export PATH=$WORKDIR/bin:$PATH
# -it needs a terminal: script(1) gives the line one, and types in what
# the line pipes to it. script runs the line with $SHELL, which CI may not
# set: dash, unlike bash, forks for the line's last command, so a plain
# `timeout` there becomes a background process group of the terminal and
# berth, setting raw mode, is stopped by SIGTTOU. Hence bash, and timeout
# --foreground on every line that has the terminal.
on_tty() { SHELL=/bin/bash script -qec "$1" /dev/null; }

failed=0
out=$WORKDIR/course.out
# course LINE [PATTERN]: runs LINE in this shell (so `ct=$(...)` stays set);
# it must exit 0 and, with PATTERN, print something matching it (grep -E).
course() {
	local line=$1 want=${2:-} rc=0 start=$SECONDS
	eval "$line" >"$out" 2>&1 || rc=$?
	local took=$((SECONDS - start))s
	if ((rc == 0)) && [[ -n $want ]] && ! grep -Eq -- "$want" "$out"; then
		rc=no-match
	fi
	if [[ $rc == 0 ]]; then
		echo "ok   $line ($took)"
	else
		failed=1
		if [[ $rc == no-match ]]; then
			echo "FAIL $line (printed nothing matching /$want/, $took)"
		else
			echo "FAIL $line (exit $rc, $took)"
		fi
		sed 's/^/    /' "$out"
	fi
}

## 1.2 Basics
course 'ct=$(berth run -it -d ubuntu:focal)' # pulls ubuntu:focal from the "hub"
course 'berth ps -a' "Up .* ${ct:0:12}|${ct:0:12} .*Up "
## 1.2.1 Namespace lab
course 'pid=$(berth inspect --format "{{.State.Pid}}" $ct)'
course 'ls -alt /proc/$pid/ns' 'mnt -> .?mnt:\['
course '[[ $(readlink /proc/$pid/ns/pid) != "$(readlink /proc/self/ns/pid)" ]]'

## 1.3.1 Images
course 'berth image ls' '^ubuntu +focal '
course 'berth image ls -q' '^[0-9a-f]{12}$'
course 'berth image list' '^ubuntu +focal '
course 'berth search $HUB/ubuntu' "$HUB/library/ubuntu"
course 'berth image pull ubuntu:focal' 'Status: Image is up to date for ubuntu:focal'
course 'berth image pull hello-world' 'Status: Downloaded newer image for hello-world:latest'
course 'berth image inspect ubuntu:focal' '"RepoTags"'
course 'berth history $(berth image ls -q ubuntu:focal)' 'IMAGE +CREATED'
course 'berth image tag ubuntu:focal focal:copy'
course 'berth image ls' '^focal +copy '
course 'berth image rm focal:copy' 'Untagged: focal:copy'

## 1.3.2 Lab: an image with "ping", committed, pushed, tagged
course 'berth run -it -d --name focal-ping ubuntu:focal'
course 'berth exec focal-ping sh -c "echo installed > /etc/ping-installed"' # apt install iputils-ping
course 'berth ps' 'focal-ping'
course 'berth ps | grep ubuntu' 'ubuntu:focal'
course 'berth commit -m "focal with ping" -a "$ACCOUNT_USER" focal-ping $ACCOUNT_REGISTRY/$ACCOUNT_USER/focal:net'
course 'echo "$ACCOUNT_PASSWORD" | berth login -u $ACCOUNT_USER --password-stdin $ACCOUNT_REGISTRY' 'Login Succeeded'
course 'berth image push $ACCOUNT_REGISTRY/$ACCOUNT_USER/focal:net' 'net: digest: sha256:'
course 'berth image tag $ACCOUNT_REGISTRY/$ACCOUNT_USER/focal:net focal:net'
course 'berth run --rm focal:net cat /etc/ping-installed' '^installed'
course 'berth history focal:net' 'focal with ping'
## Import/Export
course 'berth save focal:net > $WORKDIR/registry.tar'
course 'berth image rm focal:net'
course 'berth load < $WORKDIR/registry.tar' 'Loaded image: focal:net'
course 'berth run --rm focal:net cat /etc/ping-installed' '^installed'

## 1.4.2 Ps/Inspect, Run
course 'berth ps' "${ct:0:12}"
course 'berth ps -a' "${ct:0:12}"
course 'berth inspect $ct' '"Running": true'
course 'berth inspect --format "{{ .State.Pid }}" $ct' "^$pid\$"
course 'berth run ubuntu:focal /bin/sh'
course 'printf "tty\nexit\n" | on_tty "berth run -it ubuntu:focal"' '^/dev/pts/[0-9]'
course 'berth run --name CT_Name ubuntu:focal'
course 'berth ps -a' 'CT_Name'
course 'bg=$(berth run -it -d ubuntu:focal)'
course 'printf "echo in-the-container\nexit\n" | on_tty "berth run -it --rm ubuntu:focal"' '^in-the-container'
## Attach/Exec
# The keys are typed once berth has the terminal in raw mode: before that
# the terminal itself takes Ctrl-Q (XON), as it would from a fast typist.
course '{ sleep 2; printf "echo attached-\$((1+2))\n"; sleep 1; printf "\020\021"; } | on_tty "timeout --foreground -k 5 60 berth attach $bg"' # Ctrl-P Ctrl-Q detaches
course 'berth inspect --format "{{.State.Running}}" $bg' '^true$'
course 'for i in $(seq 100); do berth logs $bg | grep -q attached-3 && break; sleep 0.1; done; berth logs $bg' 'attached-3'
course '{ sleep 2; printf "\020\021"; } | on_tty "timeout --foreground -k 5 60 berth run -it --name detached ubuntu:focal"' # Ctrl-PQ
course 'berth inspect --format "{{.State.Running}}" detached' '^true$'
course 'berth rm -f detached' '^detached$'
course 'printf "ps aux\ntty\nexit\n" | on_tty "berth exec -it $bg /bin/sh"' '^/dev/pts/[0-9]'
## Stop
course 'berth stop $bg' "^$bg\$"
course 'berth ps -a' "${bg:0:12} .*Exited \\(137\\)" # sh as pid 1 ignores SIGTERM: killed after 10s
course 'berth start $bg' "^$bg\$"
course 'berth ps' "${bg:0:12}"
course 'berth kill $bg' "^$bg\$"
course 'berth ps -a' "${bg:0:12} .*Exited \\(137\\)"
course 'berth rm $bg' "^$bg\$"
course 'berth run -d --name doomed ubuntu:focal sleep 1000'
course 'berth rm -f doomed' '^doomed$'
## Resource limitation
course 'berth run -m 200M --memory-swap=300M ubuntu:focal'
course 'berth run -c 1024 ubuntu:focal'
# ... and what they set, seen from inside (v1 and v2 file names).
course 'berth run --rm -m 200M --memory-swap=300M ubuntu:focal sh -c "cat /sys/fs/cgroup/memory/memory.limit_in_bytes || cat /sys/fs/cgroup/memory.max"' '^209715200$'
course 'berth run --rm -c 1024 ubuntu:focal sh -c "cat /sys/fs/cgroup/cpu/cpu.shares || cat /sys/fs/cgroup/cpu.weight"' '^(1024|39)$'
course 'printf "exit\n" | on_tty "berth run -it --blkio-weight 600 ubuntu:focal"'
## Pause/Unpause
course 'berth pause $ct' "^$ct\$"
course 'berth ps' "${ct:0:12} .*\\(Paused\\)"
course 'berth unpause $ct' "^$ct\$"
## Monitor
course 'berth ps' "${ct:0:12}"
course 'berth container top $ct' 'PID'
course 'berth top $ct' '/bin/sh'
course 'lg=$(berth run -d ubuntu:focal sh -c "echo first; sleep 2; echo second")'
course 'timeout 60 berth logs -f $lg' '^second' # follows until the container ends
course 'berth logs $lg' '^first'

## 1.4.3 Lab
course 'berth run hello-world' 'Hello from Berth'
course '! berth ps | grep -q hello-world'
course 'berth ps -a' 'hello-world'
course 'printf "exit\n" | on_tty "berth run -it --rm ubuntu:focal /bin/sh"'
course 'berth container ps' "${ct:0:12}"
course 'printf "ps aux\ntty\nexit\n" | on_tty "berth exec -it ${ct:0:12} /bin/sh"' '^/dev/pts/[0-9]'
course 'berth ps -a' "${ct:0:12}"

## 1.5 Volumes
course 'berth volume create vol1' '^vol1$'
course 'berth volume list' 'local +vol1'
course 'berth volume inspect vol1' '"Name": "vol1"'
course 'printf "ls /data\ntouch /data/xxx\necho yyy > /data/xxx\nexit\n" | on_tty "berth run -it --rm -v vol1:/data ubuntu:focal /bin/sh"'
course 'printf "cat /data/xxx\nexit\n" | on_tty "berth run -it --rm -v vol1:/data ubuntu:focal /bin/sh"' '^yyy'

## Bind mounts: $(pwd), :rw and :ro
course 'cd $WORKDIR'
course 'berth run --rm -v $(pwd):/workspace ubuntu:focal ls /workspace' '^registry.tar'
course 'berth run --rm -v $(pwd):/workspace:rw ubuntu:focal sh -c "echo from-the-container > /workspace/rw.txt"'
course 'cat $WORKDIR/rw.txt' '^from-the-container'
course 'berth run --rm -v $(pwd):/workspace:ro ubuntu:focal cat /workspace/rw.txt' '^from-the-container'
course '! berth run --rm -v $(pwd):/workspace:ro ubuntu:focal touch /workspace/refused' 'Read-only file system'

## 1.4 Run a Web Server: -p, and -P
course 'web=$(berth container run -d --rm -p 8888:80 ubuntu:focal sh -c "echo course-web > /tmp/index.html; exec httpd -f -p 80 -h /tmp")'
course 'for i in $(seq 50); do curl -s localhost:8888 && break; sleep 0.1; done' '^course-web' # access the web page
course 'berth port $web' '^80/tcp -> 0.0.0.0:8888$'
course 'berth rm -f $web'
course 'berth run -d -P --expose 80 ubuntu:focal httpd -f -p 80'
course 'berth ps' '0.0.0.0:[0-9]+->80/tcp'

## 1.6 Network modes
course 'berth run --net=none focal:net ip addr show' '^1: lo:'
course '! berth run --rm --net=none focal:net ip addr show | grep -q eth0'
course 'a=$(berth run -it -d focal:net sh)'
course 'b=$(berth run --net=container:${a:0:12} -it -d focal:net sh)'
course '[[ $(readlink /proc/$(berth inspect --format "{{.State.Pid}}" ${b:0:12})/ns/net) == "$(readlink /proc/$(berth inspect --format "{{.State.Pid}}" ${a:0:12})/ns/net)" ]]'
course 'h=$(berth run --net=host -it -d focal:net sh)'
# The course compares with /proc/1's; the script's own shell is on the host
# too, and PID 1 may not let the test read its links.
course '[[ $(readlink /proc/$(berth inspect --format "{{.State.Pid}}" ${h:0:12})/ns/net) == "$(readlink /proc/$$/ns/net)" ]]'
course 'printf "exit\n" | on_tty "berth run -it --network=host ubuntu:focal"'

## 1.6.2 Lab: VM-VM ping on a user network
course 'berth network create net1'
course 'berth network list' 'net1 +bridge'
course 'berth network inspect net1' '"Name": "net1"'
course 'berth run --name ct1 -it -d --net=net1 focal:net'
course 'printf "ping -c 1 ct1\nexit\n" | on_tty "berth run --name ct2 -it --net=net1 focal:net /bin/sh"' '1 packets received'
course 'berth network connect net1 $a'
course 'berth exec $a ping -c 1 ct1' '1 packets received'
course 'berth network disconnect net1 $a'
course '! berth exec $a ping -c 1 -W 1 ct1'
course 'printf "exit\n" | on_tty "berth container run --name ct3 -it --rm --net=net1 ubuntu:focal"'
course 'berth rm -f ct1 ct2'
course 'berth network rm net1' '^net1$'

## Clean up as the course does
course 'berth rm -f $(berth container ps -aq)'
course '[[ -z $(berth ps -aq) ]]'
course 'berth image rm $(berth image ls -q) -f'
course '[[ -z $(berth image ls -q) ]]'

exit $failed
