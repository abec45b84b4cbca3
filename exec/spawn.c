/* Workload process creation: see spawn.h. With a cgroup, the child is
 * born in it (clone3 with CLONE_INTO_CGROUP, so the pids controller checks
 * pids.max on the fork itself); on x86-64 it shares our memory until it
 * calls execve, elsewhere it has a copy and its failure comes back through
 * a shared page. Without a cgroup (or on a kernel before 5.7), it shares
 * our memory (CLONE_VM|CLONE_VFORK) and joins the cgroup itself. Either
 * way CLONE_VFORK suspends the parent until then, the child only makes
 * system calls, and it must not allocate or touch shared locks. */
#include "exec/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/restrict.h"
#include "lib/config.h"
#include "lib/util.h"

#define SPAWN_STACK (64 * 1024)
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h, Linux 5.11 */
#endif

struct spawn_ctx {
	const struct spawn_req *req;
	struct spawn_err *err;  /* ours, or the shared page after clone3 */
	bool join_cgroup;       /* write "0" to the cgroup's cgroup.procs */
};

static _Alignas(16) char spawn_stack[SPAWN_STACK];
static bool no_clone3;
/* spawn_set_pidns: the workloads' PID namespace, and ours to come back to. */
static int pidns = -1, own_pidns = -1;

static _Noreturn void child_fail(struct spawn_ctx *ctx, enum spawn_stage stage, int err)
{
	ctx->err->stage = stage;
	ctx->err->err = err;
	_exit(127);
}

/* execvp(3) with the child's own PATH rather than ours: EACCES from any
 * candidate wins over ENOENT, as in execvp. */
static void exec_search(struct spawn_ctx *ctx, const struct spawn_req *r)
{
	const char *file = r->argv[0], *p = r->path ? r->path : SPAWN_DEFAULT_PATH;
	size_t flen = strlen(file);
	char buf[PATH_MAX];
	int err = ENOENT;
	bool eacces = false;

	if (strchr(file, '/')) {
		execve(file, r->argv, r->envp);
		child_fail(ctx, SPAWN_EXEC, errno);
	}
	for (;;) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);

		if (dlen + 1 + flen < sizeof(buf)) {
			memcpy(buf, p, dlen);
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(dlen ? buf : file, r->argv, r->envp);
			if (errno == EACCES)
				eacces = true;
			else if (errno != ENOENT && errno != ENOTDIR)
				err = errno;
		} else if (err == ENOENT) {
			err = ENAMETOOLONG;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	child_fail(ctx, SPAWN_EXEC, eacces ? EACCES : err);
}

static int child_main(void *arg)
{
	struct spawn_ctx *ctx = arg;
	const struct spawn_req *r = ctx->req;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	/* The pid clients are told: the one the workload sees as its own. */
	ctx->err->own_pid = getpid();
	/* We ignore SIGPIPE; the workload must not inherit that. */
	sigaction(SIGPIPE, &dfl, NULL);
	if (setsid() < 0)
		child_fail(ctx, SPAWN_SETUP, errno);
	if (r->ctty >= 0 && ioctl(r->ctty, TIOCSCTTY, 0) < 0)
		child_fail(ctx, SPAWN_SETUP, errno);
	for (int i = 0; i < 3; i++) {
		if (r->fd[i] == i) {
			if (fcntl(i, F_SETFD, 0) < 0)
				child_fail(ctx, SPAWN_SETUP, errno);
		} else if (dup2(r->fd[i], i) < 0) {
			child_fail(ctx, SPAWN_SETUP, errno);
		}
	}
	/* A command gets fds 0-2 and nothing else of the agent's: whatever
	 * else is open here (a descriptor someone forgot to mark, the
	 * terminal's slave it now has as 0-2) closes at execve. Our own
	 * table (no CLONE_FILES): the agent's stays as it is. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		child_fail(ctx, SPAWN_SETUP, errno);
	/* Into its own cgroup before it can fork, ordinary OOM and file
	 * limits, then the restrictions while still privileged enough to
	 * install them. */
	if (ctx->join_cgroup) {
		int fd = openat(r->cgroup, "cgroup.procs", O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "0", 1) < 0)
			child_fail(ctx, SPAWN_SETUP, errno);
		close(fd);
	}
	if (r->confine) {
		int e = restrict_confine();

		if (e < 0)
			child_fail(ctx, SPAWN_SETUP, -e);
	}
	if (r->reset_oom) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "0", 1) < 0)
			child_fail(ctx, SPAWN_SETUP, errno);
		close(fd);
	}
	/* The raw system calls, not musl's setrlimit, setgroups, setgid and
	 * setuid: those apply to every thread of the process through
	 * __synccall, which signals each thread in the list this child
	 * shares or copies from the agent (a hasher thread's id, which in the
	 * workloads' PID namespace may be a workload's). */
	if (r->nofile && syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, r->nofile, NULL) < 0)
		child_fail(ctx, SPAWN_SETUP, errno);
	for (size_t i = 0; i < r->nrlimits; i++)
		if (syscall(SYS_prlimit64, 0, r->rlimits[i].resource, &r->rlimits[i].lim, NULL) < 0)
			child_fail(ctx, SPAWN_SETUP, errno);
	if (r->restricted) {
		int e = restrict_apply(r->filter);

		if (e < 0)
			child_fail(ctx, SPAWN_SETUP, -e);
	}
	if (r->set_ids) {
		if (syscall(SYS_setgroups, (size_t)r->ngroups, r->groups) < 0 ||
		    syscall(SYS_setresgid, r->gid, r->gid, r->gid) < 0 ||
		    syscall(SYS_setresuid, r->uid, r->uid, r->uid) < 0)
			child_fail(ctx, SPAWN_IDS, errno);
	}
	if (r->cwd && chdir(r->cwd) < 0) {
		if (!r->cwd_optional || chdir("/") < 0)
			child_fail(ctx, SPAWN_CWD, errno);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	exec_search(ctx, r);
	return 127;
}

/* AddressSanitizer: gcc says __SANITIZE_ADDRESS__, clang __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define SPAWN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPAWN_ASAN 1
#endif
#endif

#if defined(__x86_64__) && !defined(SPAWN_ASAN)
#define SPAWN_CLONE3_VM 1
/* clone3(2) with CLONE_VM: the child comes out of the system call on
 * args->stack, where no C frame exists, so it calls fn(arg) from here
 * and exits with its value, as musl's clone(3) does for clone(2). The
 * result: the child's pid, or -errno. */
static long clone3_vm(struct clone_args *args, int (*fn)(void *), void *arg)
{
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov %[exit], %%eax\n\t"
			 "syscall\n\t"
			 "hlt\n"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r12),
			   "r"(r13), [exit] "i"(SYS_exit)
			 : "rcx", "r11", "memory");
	return ret;
}
#endif

/* clone3 into r->cgroup: the child's pid, or -1 with errno (ENOSYS where
 * the kernel has no clone3 or no CLONE_INTO_CGROUP). On x86-64 the child
 * shares our memory until it calls execve, as the clone(2) path below
 * does: copying the agent's address space and tearing the copy down
 * again at execve cost a command more than its own start under TCG.
 * Elsewhere (and in the AddressSanitizer build) it gets a copy, and its
 * failure comes back through a shared page. */
static pid_t spawn_into_cgroup(struct spawn_ctx *ctx)
{
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP | CLONE_VFORK,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)ctx->req->cgroup,
	};
	pid_t child;

	if (no_clone3) {
		errno = ENOSYS;
		return -1;
	}
#ifdef SPAWN_CLONE3_VM
	{
		long r;

		args.flags |= CLONE_VM;
		args.stack = (uint64_t)(uintptr_t)spawn_stack;
		args.stack_size = sizeof(spawn_stack);
		r = clone3_vm(&args, child_main, ctx);
		child = r < 0 ? -1 : (pid_t)r;
		if (r < 0)
			errno = (int)-r;
	}
#else
	static struct spawn_err *shared_err;

	if (!shared_err) {
		void *p = mmap(NULL, sizeof(*shared_err), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -1;
		shared_err = p;
	}
	*shared_err = (struct spawn_err){ 0 };
	ctx->err = shared_err;
	child = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (child == 0)
		_exit(child_main(ctx));
#endif
	/* E2BIG: clone_args too new for the kernel (before 5.7). */
	if (child < 0 && (errno == ENOSYS || errno == E2BIG)) {
		no_clone3 = true;
		errno = ENOSYS;
	}
	return child;
}

int spawn_set_pidns(int ns)
{
	int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);

	if (own < 0)
		return -errno;
	/* Try the round trip once, so that a refusal shows here. */
	if (setns(ns, CLONE_NEWPID) < 0 || setns(own, CLONE_NEWPID) < 0) {
		int e = -errno;

		setns(own, CLONE_NEWPID);
		close(own);
		return e;
	}
	pidns = ns;
	own_pidns = own;
	return 0;
}

/* The NSpid line of /proc/PID/status: our pid, then the pid in each
 * nested namespace; the last is the innermost. *levels: how many. */
static pid_t nspid_last(pid_t pid, int *levels)
{
	char path[64], buf[2048], *p, *end;
	pid_t last = -ESRCH;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	p = strstr(buf, "\nNSpid:");
	if (!p)
		return -ENOSYS;
	*levels = 0;
	for (p += 7; *p && *p != '\n'; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		last = (pid_t)v;
		(*levels)++;
	}
	return last;
}

pid_t spawn_pid_in_workload(pid_t pid)
{
	int levels;

	return pidns >= 0 ? nspid_last(pid, &levels) : pid;
}

pid_t spawn_pid_from_workload(pid_t inner)
{
	struct dirent *d;
	pid_t found = -ESRCH;
	DIR *dir;

	if (pidns < 0)
		return inner;
	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while (found < 0 && (d = readdir(dir))) {
		pid_t pid = (pid_t)atoi(d->d_name);
		int levels = 0;

		if (pid > 0 && nspid_last(pid, &levels) == inner && levels == 2)
			found = pid;
	}
	closedir(dir);
	return found;
}

int spawn_process(const struct spawn_req *r, pid_t *pid, struct spawn_err *e)
{
	struct spawn_err err = { 0 };
	struct spawn_ctx ctx = { .req = r, .err = &err };
	pid_t child = -1;

	/* setns(CLONE_NEWPID) moves only the children to come; ours come
	 * back to our namespace below (nothing else of ours forks there). */
	if (pidns >= 0 && setns(pidns, CLONE_NEWPID) < 0) {
		e->stage = SPAWN_SETUP;
		e->err = errno;
		return -e->err;
	}
	errno = ENOSYS;
	if (r->cgroup >= 0)
		child = spawn_into_cgroup(&ctx);
	if (child < 0 && errno == ENOSYS) {
		ctx.err = &err;
		ctx.join_cgroup = r->cgroup >= 0;
#if defined(SPAWN_ASAN)
		/* AddressSanitizer cannot follow a switch to our own stack;
		 * vfork shares memory the same way (the instrumented build only). */
		(void)spawn_stack;
		child = vfork();
		if (child == 0)
			_exit(child_main(&ctx));
#else
		child = clone(child_main, spawn_stack + sizeof(spawn_stack),
			      CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
#endif
	}
	if (pidns >= 0) {
		int saved = errno;

		setns(own_pidns, CLONE_NEWPID);
		errno = saved;
	}
	if (child < 0) {
		e->stage = SPAWN_SETUP;
		e->err = errno;
		return -e->err;
	}
	/* CLONE_VFORK: the child has exec'd or exited by now. */
	*e = *ctx.err;
	if (e->stage != SPAWN_OK)
		return -e->err;
	*pid = child;
	return 0;
}
