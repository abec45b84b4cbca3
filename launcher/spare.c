/* A template's spares: see spare.h. A spare is a clone made up to its
 * QEMU started (launcher/sandbox.c, sandbox_spare_make). The filler is
 * the sbx binary run again (`sbx template _fill NAME`), not a fork that
 * goes on: sbx serve calls this from one of its threads. Fillers of a
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

int spares_lock(const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/templates/.%s.spares", image_data_dir(), name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void spares_fill(const char *name)
{
	char sbx[PATH_MAX];
	pid_t pid;
	int fd;

	sandbox_find_file("sbx", sbx, sizeof(sbx));
	if ((pid = fork()) != 0) {
		if (pid > 0) /* the first child ends at once: reaped here */
			waitpid(pid, NULL, 0);
		return;
	}
	/* Only async-signal-safe calls from here to the exec. A grandchild
	 * of the caller, in a session of its own, holding nothing of it:
	 * not $(sbx create)'s stdout, not its sockets. */
	if (fork() != 0)
		_exit(0);
	setsid();
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	/* sbx create blocks SIGINT, SIGTERM and SIGHUP while it boots. */
	signals_reset_for_exec();
	execlp(sbx, "sbx", "template", "_fill", name, (char *)NULL);
	_exit(127);
}

int spares_fill_now(const char *name)
{
	struct sbx_error err;
	struct template t;
	int failed = 0;

	if (spares_lock(name) < 0 || template_load(name, &t, &err) < 0)
		return 1;
	/* Two failures in a row: the next create tries again. */
	while (sandbox_spares(name, SPARES_WAITING) < t.spares && failed < 2)
		failed = sandbox_spare_make(&t, &err) < 0 ? failed + 1 : 0;
	return failed ? 1 : 0;
}
