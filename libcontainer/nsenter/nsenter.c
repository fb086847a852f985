// The half of namespace setup that Go cannot do: joining a mount or user
// namespace (and a time namespace) needs a single-threaded process, and the Go
// runtime starts its threads before main. This constructor runs first, in the
// freshly exec'd init, and only when the parent asked for it through
// _BERTH_NSJOIN. Everything else (new namespaces, joining net/ipc/uts/pid/
// cgroup) is done by the parent with clone flags and setns on a locked thread.
//
// _BERTH_NSJOIN is a comma-separated list of kind:path with kind one of
// user, mnt, time, in the order to join them (user first, so that the other
// joins happen with the capabilities the user namespace grants).
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
	return -1;
}

__attribute__((constructor)) static void berth_nsjoin(void) {
	// A container's init or exec process must not be ptraced or have its
	// memory read by the container before it has dropped to the
	// container's credentials and exec'd (the CVE-2016-9962 class): it
	// holds the runtime's fds until then. Set it before joining anything.
	if (getenv("_BERTH_INITPIPE") != NULL) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	const char *env = getenv("_BERTH_NSJOIN");
	if (env == NULL || *env == '\0') return;
	char *list = strdup(env);
	if (list == NULL) die("join namespaces", "(out of memory)");
	unsetenv("_BERTH_NSJOIN");

	char *save = NULL;
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *path = strchr(item, ':');
		if (path == NULL) die("bad namespace join entry", item);
		*path++ = '\0';
		int flag = kind_flag(item);
		if (flag < 0) die("unknown namespace kind", item);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) die("open namespace", path);
		if (setns(fd, flag) < 0) die("join namespace", path);
		close(fd);
		// Joining a user namespace keeps our host uid, which it may not
		// map: become its root, as runc does, so the process acts as the
		// container's root from here on.
		if (flag == CLONE_NEWUSER && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
			die("become root in user namespace", path);
	}
	free(list);
}
