/* A template's spares: see spare.h. A spare is a clone made up to its
 * QEMU started (launcher/sandbox.c, sandbox_spare_make); fillers of a
 * template take the lock file <data>/templates/.NAME.spares, so that two
 * of them do not both make the last one and template rm waits for the
 * one at work before it stops the spares. */
#include "launcher/spare.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher/image.h"
#include "launcher/sandbox.h"
#include "launcher/template.h"
#include "lib/util.h"

static void lock_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/templates/.%s.spares", image_data_dir(), name);
}

void spares_unlock_file(const char *name)
{
	char path[PATH_MAX];

	lock_path(path, sizeof(path), name);
	unlink(path);
}

int spares_lock(const char *name)
{
	char path[PATH_MAX];
	int fd;

	lock_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void spares_fill(const char *name)
{
	struct sbx_error err;
	struct template t;
	pid_t pid = fork();
	int fd, failed = 0;

	if (pid != 0) {
		if (pid > 0) /* the first child ends at once: reaped here */
			waitpid(pid, NULL, 0);
		return;
	}
	/* A grandchild of the caller, in a session of its own, holding
	 * nothing of it: not $(sbx create)'s stdout, not its sockets. */
	if (fork() != 0)
		_exit(0);
	setsid();
	/* sbx create blocks SIGINT, SIGTERM and SIGHUP while it boots: the
	 * filler answers them as any process. */
	signals_reset_for_exec();
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	if (spares_lock(name) < 0 || template_load(name, &t, &err) < 0)
		_exit(1);
	/* Two failures in a row: the next create tries again. */
	while (sandbox_spares(name, false) < t.spares && failed < 2)
		failed = sandbox_spare_make(&t, &err) < 0 ? failed + 1 : 0;
	_exit(failed ? 1 : 0);
}
