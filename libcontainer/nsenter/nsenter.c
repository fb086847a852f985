// The half of namespace and cgroup setup that Go cannot do: joining a mount
// or user namespace (and a time namespace) needs a single-threaded process,
// and the Go runtime starts its threads before main; so does a process that
// moves all of itself into a v1 cgroup (cheap only for a thread moving
// itself). This constructor runs first, in the freshly exec'd init or exec'd
// process, and only when the parent asked for it through _BERTH_CGJOIN and
// _BERTH_NSJOIN. Everything else (new namespaces, joining net/ipc/uts/pid)
// is done by the parent with clone flags and setns on a locked thread.
//
// _BERTH_NSJOIN is a comma-separated list of kind:path with kind one of
// user, mnt, time, cgroup, in the order to join them (user first, so that
// the other joins happen with the capabilities the user namespace grants;
// cgroup here because a thread in the container's cgroup namespace cannot
// clone into the container's v2 cgroup).
//
// _BERTH_CGJOIN is a comma-separated list of fds, each a cgroup v1 tasks
// file the parent opened: the process moves itself into the container's
// cgroup by writing "0" to each while it is still single-threaded, so the
// move covers the whole process and every thread the Go runtime starts
// later (see cgroups.Entry for why the parent does not move it).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
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

__attribute__((constructor)) static void berth_nsjoin(void) {
	// A container's init or exec process must not be ptraced or have its
	// memory read by the container before it has dropped to the
	// container's credentials and exec'd (the CVE-2016-9962 class): it
	// holds the runtime's fds until then. Set it before joining anything.
	if (getenv("_BERTH_INITPIPE") != NULL) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	// The cgroup first: the namespaces joined below are the container's,
	// and everything from here on is charged to the container.
	join_cgroups();

	const char *env = getenv("_BERTH_NSJOIN");
	if (env == NULL || *env == '\0') return;
	char *list = strdup(env);
	if (list == NULL) die("join namespaces", "(out of memory)");
	unsetenv("_BERTH_NSJOIN");

	// Every namespace is opened before any is joined: the paths are the
	// host's (/proc/<pid>/ns/...), which a joined mount namespace hides.
	struct { int flag, fd; const char *path; } joins[8];
	int n = 0;
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
		n++;
	}
	for (int i = 0; i < n; i++) {
		if (setns(joins[i].fd, joins[i].flag) < 0) die("join namespace", joins[i].path);
		close(joins[i].fd);
		// Joining a user namespace keeps our host uid, which it may not
		// map: become its root, as runc does, so the process acts as the
		// container's root from here on.
		if (joins[i].flag == CLONE_NEWUSER && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
			die("become root in user namespace", joins[i].path);
	}
	free(list);
}
