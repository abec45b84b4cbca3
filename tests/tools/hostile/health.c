/* sbx-hostile: the server's health after a case: the same process,
 * still serving, back to its fd count and RSS; and the processes a case
 * left behind. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/tools/hostile/hostile.h"

int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static bool server_alive(void)
{
	char path[64], buf[512], *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)server);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

int echo_works(void)
{
	char *argv[] = { "echo", "still-serving", NULL };

	return run_prints(argv, NULL, NULL, "still-serving\n");
}

/* Processes whose command line contains `marker`. */
int procs_with(const char *marker)
{
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		char path[300], cmd[4096];
		ssize_t k;
		int fd;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (k <= 0)
			continue;
		for (ssize_t i = 0; i < k; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[k] = '\0';
		n += strstr(cmd, marker) != NULL;
	}
	closedir(dir);
	return n;
}

int wait_procs_gone(const char *marker, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	while (procs_with(marker) > 0) {
		if (now_ms() > deadline)
			return fail("%d processes with '%s' are still there after %d ms",
				    procs_with(marker), marker, ms);
		usleep(20000);
	}
	return 0;
}

/* After a case: the same server serves, and gives back what it took. */
int healthy(void)
{
	uint64_t deadline;
	int fds = -1;
	long rss = -1;

	if (!server_alive())
		return fail("the server process %d is gone (crashed?)", (int)server);
	if (echo_works() < 0) {
		char saved[sizeof(why)];

		memcpy(saved, why, sizeof(saved));
		return fail("the agent no longer runs commands: %s", saved);
	}
	deadline = now_ms() + SETTLE_MS;
	for (;;) {
		fds = fd_count(server);
		rss = rss_kib(server);
		if (fds == base_fds && rss >= 0 && rss <= base_rss + rss_slack_kib)
			break;
		if (now_ms() > deadline)
			return fail("the server holds %d fds (%d before) and %ld KiB RSS (%ld before, "
				    "%ld allowed above)", fds, base_fds, rss, base_rss, rss_slack_kib);
		usleep(20000);
	}
	if (rss - base_rss > worst_rss_delta)
		worst_rss_delta = rss - base_rss;
	if (!server_alive())
		return fail("the server process %d is gone (crashed?)", (int)server);
	return 0;
}
