/* The workloads' PID namespace and its init: see workns.h. The init is a
 * fork of PID 1 (no exec): it closes what it inherited, then reaps the
 * orphans of the namespace forever. Only a SIGTERM from outside the
 * namespace (PID 1 shutting down: si_pid 0) ends it, once no workload is
 * left: its exit would SIGKILL them all, and PID 1 gives them the grace
 * period first. A workload cannot kill it (the kernel ignores SIGKILL
 * from inside the namespace, the seccomp filter refuses signals to pid 1). */
#include "init/workns.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"

#define EMPTY_POLL_NS (100 * 1000 * 1000L)

static volatile sig_atomic_t stop;

static void on_term(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_pid == 0)
		stop = 1;
}

static void on_chld(int sig)
{
	(void)sig;
}

static _Noreturn void reaper_main(void)
{
	struct sigaction term = { .sa_sigaction = on_term, .sa_flags = SA_SIGINFO },
			 chld = { .sa_handler = on_chld, .sa_flags = SA_NOCLDSTOP };
	struct timespec tick = { .tv_nsec = EMPTY_POLL_NS };
	sigset_t open;

	/* PID 1's descriptors (held jobs' pipes, the listening socket, the
	 * configuration) are not ours to keep open. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	prctl(PR_SET_NAME, "sbx-workloads");
	sigaction(SIGTERM, &term, NULL);
	sigaction(SIGCHLD, &chld, NULL);
	/* Everything else stays blocked, as PID 1 had it: the kernel drops
	 * signals an init does not handle anyway. */
	sigfillset(&open);
	sigdelset(&open, SIGTERM);
	sigdelset(&open, SIGCHLD);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		/* kill(-1) from a namespace's init reaches every other member:
		 * ESRCH when there is none. */
		if (stop && kill(-1, 0) < 0 && errno == ESRCH)
			_exit(0);
		ppoll(NULL, 0, stop ? &tick : NULL, &open);
	}
}

pid_t workns_start(int *ns)
{
	char path[64];
	pid_t pid;

	/* clone(2) without a stack is fork(2) into a new PID namespace. */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0UL);
	if (pid < 0)
		return -errno;
	if (pid == 0)
		reaper_main();
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	*ns = open(path, O_RDONLY | O_CLOEXEC);
	if (*ns < 0) {
		int e = -errno;

		kill(pid, SIGKILL);
		return e;
	}
	return pid;
}
