// The half of namespace and cgroup setup that Go cannot do: joining a mount
// or user namespace (and a time namespace) needs a single-threaded process,
// and the Go runtime starts its threads before main; so does a process that
// moves all of itself into a v1 cgroup (cheap only for a thread moving
// itself). This constructor runs first, in the freshly exec'd init or exec'd
// process, and only when the parent asked for it through _BERTH_INITPIPE,
// _BERTH_CGJOIN, _BERTH_NSJOIN and _BERTH_NSNEW.
//
// For every container process it makes the process non-dumpable and puts
// every signal back to its default disposition, unblocked: a signal the
// runtime's caller ignores (SIGHUP under nohup) must not stay ignored in
// the container, and exec keeps SIG_IGN and the signal mask.
//
// _BERTH_CGJOIN is a comma-separated list of fds, each a cgroup v1 tasks
// file the parent opened: the process moves itself into the container's
// cgroup by writing "0" to each while it is still single-threaded, so the
// move covers the whole process and every thread the Go runtime starts
// later (see cgroups.Entry for why the parent does not move it).
//
// _BERTH_NSJOIN is a comma-separated list of kind:path with kind one of
// user, mnt, pid, net, ipc, uts, time, cgroup. Every namespace but the user
// one is joined first, with the runtime's capabilities; one the kernel
// refuses (EPERM: it belongs to a user namespace the runtime has no
// capabilities in) is joined again after the user namespace.
//
// _BERTH_NSNEW is the clone flags of the namespaces to make after the
// joins, so that they belong to the joined user namespace. A new user
// namespace is made first; the process then writes {"type":"userns"} on
// the init pipe and waits for a line back ({"type":"userns-mapped"}) once
// the parent has written its uid and gid maps.
//
// setns and unshare of a pid namespace move only the children: when one
// was joined or made, the constructor forks (with CLONE_PARENT, so the
// runtime is the parent of the container process), writes
// {"type":"pid","pid":N} on the init pipe and exits. The child is the first
// process of the runtime's in the container's pid namespace, and it has
// the container's root and cwd from its first moment (see nsPlan).
//
// _BERTH_PIDNS is an fd on a pid namespace to join, set only when init
// re-execs itself after it has set up the container's root (nsPlan.lateFork):
// the constructor joins it and forks as above, so that the first process of
// the runtime's in that namespace already has the container's root and cwd.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static void die(const char *what, const char *path) {
	// The parent reads stderr of a failed init: say what could not be joined.
	fprintf(stderr, "berth-runtime init: %s %s: %s\n", what, path, strerror(errno));
	_exit(1);
}

static int kind_flag(const char *kind) {
	if (!strcmp(kind, "user")) return CLONE_NEWUSER;
	if (!strcmp(kind, "mnt")) return CLONE_NEWNS;
	if (!strcmp(kind, "time")) return CLONE_NEWTIME;
	if (!strcmp(kind, "cgroup")) return CLONE_NEWCGROUP;
	if (!strcmp(kind, "pid")) return CLONE_NEWPID;
	if (!strcmp(kind, "net")) return CLONE_NEWNET;
	if (!strcmp(kind, "ipc")) return CLONE_NEWIPC;
	if (!strcmp(kind, "uts")) return CLONE_NEWUTS;
	return -1;
}

static void join_cgroups(void) {
	const char *env = getenv("_BERTH_CGJOIN");
	if (env == NULL || *env == '\0') return;
	char *list = strdup(env);
	if (list == NULL) die("join cgroup", "(out of memory)");
	unsetenv("_BERTH_CGJOIN");

	char *save = NULL;
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		int fd = atoi(item);
		if (write(fd, "0", 1) != 1) {
			int err = errno;
			char link[64], path[4096];
			snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, path, sizeof path - 1);
			path[n < 0 ? 0 : n] = '\0';
			errno = err;
			die("join cgroup", n < 0 ? item : path);
		}
		close(fd);
	}
	free(list);
}

// reset_hidden_signals does for the signals glibc keeps for itself (32
// and 33, below SIGRTMIN: thread cancellation and setxid) what
// reset_signals does for the rest: glibc's sigaction refuses them, so the
// kernel's is called directly. GNU make, for one, starts its commands with
// them ignored, and exec keeps that. One ignored here is not in use by
// glibc (it would have installed its handler), so it is safe to reset.
static void reset_hidden_signals(void) {
#if !defined(__mips__)
	// The kernel's struct sigaction on every architecture but mips.
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask[64 / (8 * sizeof(unsigned long))];
	} old, dfl;
	memset(&dfl, 0, sizeof(dfl)); // SIG_DFL, no flags, nothing blocked
	for (int sig = 32; sig < SIGRTMIN; sig++) {
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, sizeof(old.mask)) == 0 && old.handler == SIG_IGN)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
	}
#endif
}

// reset_signals puts every signal the process inherited as ignored back
// to its default, and unblocks all: the container's process must start as
// if from a fresh fork of its own init, whatever its caller ignored.
static void reset_signals(void) {
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &old) < 0) continue;
		if (old.sa_handler == SIG_IGN) signal(sig, SIG_DFL);
	}
	reset_hidden_signals();
}

static void become_root(const char *what) {
	// Joining or making a user namespace keeps our host ids, which it may
	// not map: become its root, as runc does, so the process acts as the
	// container's root from here on.
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("become root in user namespace", what);
}

// send_line writes one protocol line on the init pipe.
static void send_line(int sync_fd, const char *line) {
	size_t len = strlen(line);
	if (write(sync_fd, line, len) != (ssize_t)len) die("write to the runtime", "(init pipe)");
}

// wait_line reads one line from the init pipe, a byte at a time: what
// follows it is the Go side's to read.
static void wait_line(int sync_fd, const char *want) {
	char buf[128];
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(sync_fd, &c, 1);
		if (r <= 0) die("wait for the runtime", "(init pipe closed)");
		if (c == '\n') break;
		if (n < sizeof buf - 1) buf[n++] = c;
	}
	buf[n] = '\0';
	if (strstr(buf, want) == NULL) {
		errno = EPROTO;
		die("unexpected message from the runtime", buf);
	}
}

struct nsjoin {
	int flag, fd;
	const char *path;
};

// join_namespaces joins what _BERTH_NSJOIN lists (see the top of the file
// for the order) and says whether a pid namespace was among them.
static int join_namespaces(char *list) {
	// Every namespace is opened before any is joined: the paths are the
	// host's (/proc/<pid>/ns/...), which a joined mount namespace hides.
	struct nsjoin joins[8];
	int n = 0, user = -1, pid = 0;
	char *save = NULL;
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *path = strchr(item, ':');
		if (path == NULL) die("bad namespace join entry", item);
		*path++ = '\0';
		if (n == (int)(sizeof joins / sizeof joins[0])) die("too many namespaces to join", path);
		joins[n].flag = kind_flag(item);
		if (joins[n].flag < 0) die("unknown namespace kind", item);
		joins[n].fd = open(path, O_RDONLY | O_CLOEXEC);
		if (joins[n].fd < 0) die("open namespace", path);
		joins[n].path = path;
		if (joins[n].flag == CLONE_NEWUSER) user = n;
		if (joins[n].flag == CLONE_NEWPID) pid = 1;
		n++;
	}
	for (int i = 0; i < n; i++) {
		if (i == user) continue;
		if (setns(joins[i].fd, joins[i].flag) == 0) {
			close(joins[i].fd);
			joins[i].fd = -1;
		} else if (errno != EPERM || user < 0) {
			die("join namespace", joins[i].path);
		}
	}
	if (user >= 0) {
		if (setns(joins[user].fd, CLONE_NEWUSER) < 0) die("join namespace", joins[user].path);
		close(joins[user].fd);
		joins[user].fd = -1;
		become_root(joins[user].path);
	}
	for (int i = 0; i < n; i++) {
		if (joins[i].fd < 0) continue;
		if (setns(joins[i].fd, joins[i].flag) < 0) die("join namespace", joins[i].path);
		close(joins[i].fd);
	}
	return pid;
}

// make_namespaces makes the namespaces in _BERTH_NSNEW inside the joined
// ones, a user namespace first.
static void make_namespaces(int sync_fd, int flags) {
	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0) die("create namespace", "user");
		send_line(sync_fd, "{\"type\":\"userns\"}\n");
		wait_line(sync_fd, "\"userns-mapped\"");
		become_root("(new)");
		flags &= ~CLONE_NEWUSER;
	}
	if (flags != 0 && unshare(flags) < 0) die("create namespaces", "(mnt, uts, ipc, net, pid)");
}

// fork_into_pidns forks the process that goes on, in the pid namespace
// that was joined or made, and reports its pid; the caller exits.
static void fork_into_pidns(int sync_fd) {
	// fork(2) without the C library's wrapper: CLONE_PARENT makes the
	// runtime, which waits for it, the new process's parent.
	long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0) die("fork into the pid namespace", "");
	if (pid == 0) return;
	char line[64];
	snprintf(line, sizeof line, "{\"type\":\"pid\",\"pid\":%ld}\n", pid);
	send_line(sync_fd, line);
	_exit(0);
}

__attribute__((constructor)) static void berth_nsjoin(void) {
	const char *initpipe = getenv("_BERTH_INITPIPE");
	if (initpipe == NULL) return;
	int sync_fd = atoi(initpipe);
	// A container's init or exec process must not be ptraced or have its
	// memory read by the container before it has dropped to the
	// container's credentials and exec'd (the CVE-2016-9962 class): it
	// holds the runtime's fds until then. Set it before joining anything.
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	reset_signals();

	// The cgroup first: the namespaces joined below are the container's,
	// and everything from here on is charged to the container.
	join_cgroups();

	const char *env = getenv("_BERTH_NSJOIN");
	int joined_pid = 0;
	if (env != NULL && *env != '\0') {
		char *list = strdup(env);
		if (list == NULL) die("join namespaces", "(out of memory)");
		unsetenv("_BERTH_NSJOIN");
		joined_pid = join_namespaces(list);
		free(list);
	}
	const char *unshare_env = getenv("_BERTH_NSNEW");
	int flags = unshare_env != NULL ? atoi(unshare_env) : 0;
	unsetenv("_BERTH_NSNEW");
	make_namespaces(sync_fd, flags);
	const char *pidns = getenv("_BERTH_PIDNS");
	if (pidns != NULL && *pidns != '\0') {
		int fd = atoi(pidns);
		unsetenv("_BERTH_PIDNS");
		if (setns(fd, CLONE_NEWPID) < 0) die("join namespace", "pid (held fd)");
		close(fd);
		joined_pid = 1;
	}
	if (joined_pid || (flags & CLONE_NEWPID)) fork_into_pidns(sync_fd);
}
