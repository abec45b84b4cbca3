/* sbx-restart: how long the agent is gone when its server process is
 * killed mid-command. Each trial starts commands (`sleep 30`), sends
 * SIGKILL to the server, and runs `true` until one succeeds: PID 1
 * restarts the server, which takes back the jobs and accepts the
 * connections waiting on the listening socket PID 1 kept. The time is
 * from the kill to the end of that `true`. The sleep, now a detached job
 * of the new server, is then killed and collected, so nothing piles up.
 *
 * Who kills: for a unix: address (development mode, plain or as PID 1 of
 * namespaces) this program, which finds the server as the `--server`
 * child of the sbx-init listening on that path. Elsewhere (a VM) the
 * server is not visible from the host; a command then kills its parent
 * (`sh -c 'kill -9 $PPID'`) and the time starts when its connection
 * drops. That only works when workloads may signal the server, i.e. with
 * the `seccomp` configuration key off.
 *
 * Paired with a plain `true` round trip in the same run (A B A B ...), as
 * bench/restart.sh reports it:
 *
 *   sbx-restart ADDR [N]      markdown rows; N trials (default 20)
 *
 * Trials are 1.2 s apart: PID 1 restarts the server at most once a
 * second. A row also counts the commands the restarted server did not
 * take back (docs/PROTOCOL.md: every running command keeps running and
 * the restarted server takes it back). Exit status: 0; 1 if a restart did
 * not happen within 5 s (or another failure); 3 if a command was lost. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libsbx/sbx.h"
#include "lib/util.h"

#define RESTART_WAIT_NS (5 * NSEC_PER_SEC)
#define SPACING_NS (1200 * NSEC_PER_MSEC)

static const char *addr;
static int lost, started; /* commands running at a kill; those not taken back */
static const char *unix_path; /* unix: addresses: the socket's path */

static bool read_file(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return false;
	k = read(fd, out, n - 1);
	close(fd);
	if (k <= 0)
		return false;
	for (ssize_t i = 0; i < k; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	out[k] = '\0';
	return true;
}

/* The server of the agent listening on unix_path: a `sbx-init --server`
 * whose parent runs with `--listen unix:PATH`. 0 if there is none. */
static pid_t find_server(void)
{
	char want[256], path[64], cmd[4096], stat[512];
	struct dirent *d;
	pid_t found = 0;
	DIR *dir;

	snprintf(want, sizeof(want), "--listen unix:%s", unix_path);
	dir = opendir("/proc");
	if (!dir)
		return 0;
	while (!found && (d = readdir(dir))) {
		pid_t pid = (pid_t)atoi(d->d_name);
		int ppid;
		char *rp;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		if (!read_file(path, cmd, sizeof(cmd)) || !strstr(cmd, "sbx-init --server"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (!read_file(path, stat, sizeof(stat)) || !(rp = strrchr(stat, ')')) ||
		    sscanf(rp + 1, " %*c %d", &ppid) != 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", ppid);
		if (read_file(path, cmd, sizeof(cmd)) && strstr(cmd, want) &&
		    (size_t)(strstr(cmd, want) - cmd) + strlen(want) <= strlen(cmd) &&
		    (strstr(cmd, want)[strlen(want)] == ' ' || strstr(cmd, want)[strlen(want)] == '\0'))
			found = pid;
	}
	closedir(dir);
	return found;
}

static _Noreturn void die_msg(const char *what, const struct sbx_error *err)
{
	fprintf(stderr, "sbx-restart: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

/* `true`, start to end; -1 if it failed. */
static double exec_true_ms(void)
{
	const char *argv[] = { "true", NULL };
	struct sbx_exec_opts o = { .argv = argv };
	struct sbx_error err;
	struct sbx_exit x;
	uint64_t t0 = time_mono_ns();

	if (sbx_run(addr, &o, -1, -1, -1, &x, &err) < 0 || x.how != EXIT_EXITED || x.code != 0)
		return -1;
	return (double)(time_mono_ns() - t0) / 1e6;
}

/* Ends a detached job (SIGKILL, through the agent: its pid may be in
 * another pid namespace) and collects it: attach, read to EXIT,
 * acknowledge it. */
static int kill_on_attach(void *arg, struct sbx_conn *c, struct sbx_error *err)
{
	char b;

	/* Called once: the pipe's one byte is gone afterwards. */
	if (read(*(int *)arg, &b, 1) != 1)
		return 0;
	return sbx_exec_signal(c, SIGKILL, err);
}

static bool collect(pid_t pid)
{
	bool ok = true;
	struct sbx_io io = { .in_fd = -1, .out_fd = -1, .err_fd = -1, .on_extra = kill_on_attach };
	struct sbx_error err;
	struct sbx_conn *c;
	struct sbx_exit x;
	int p[2];

	/* A pipe with one byte in it: the I/O loop calls kill_on_attach at
	 * once, and SIGNAL goes right behind ATTACH. */
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 || write(p[1], "k", 1) != 1)
		die_msg("pipe", NULL);
	io.extra_fd = p[0];
	io.arg = &p[0];
	if (sbx_connect(addr, &c, &err) < 0)
		die_msg("connect", &err);
	if (sbx_attach_io(c, pid, false, &io, &x, &err) < 0) {
		fprintf(stderr, "sbx-restart: command %d, started before the kill, is lost: %s\n",
			(int)pid, err.msg);
		ok = false;
	}
	sbx_close(c);
	close(p[0]);
	close(p[1]);
	return ok;
}

/* Starts `argv` on a new connection; its pid from STARTED. */
static struct sbx_conn *start(const char *const *argv, pid_t *pid)
{
	struct sbx_exec_opts o = { .argv = argv };
	struct sbx_error err;
	struct sbx_conn *c;
	struct frame f;

	if (sbx_connect(addr, &c, &err) < 0 || sbx_exec_send(c, &o, &err) < 0 ||
	    sbx_recv(c, &f, 5000, &err) < 0)
		die_msg("start a command", &err);
	if (f.type != FT_STARTED || f.len != 4)
		die_msg("no STARTED", NULL);
	*pid = (pid_t)get_le32(f.payload);
	return c;
}

/* Waits until the connection drops (the server died); false if the
 * command ended instead. */
static bool until_dropped(struct sbx_conn *c)
{
	struct sbx_error err;
	struct frame f;
	int r;

	while ((r = sbx_recv(c, &f, 5000, &err)) == 0)
		if (f.type == FT_EXIT)
			return false;
	if (r == -EAGAIN)
		die_msg("the server did not die", &err);
	return true;
}

/* The sleepers the new server holds whose STARTED never reached us: the
 * old server started them and died before its frame left (so they were
 * taken back, as they should be), or a start came late. Collected too,
 * so that no trial leaves a command behind. */
struct orphans {
	pid_t pid[64];
	int n;
};

static void find_orphan(void *arg, const struct ps_entry *p)
{
	struct orphans *o = arg;

	if (p->state == PS_RUNNING && strcmp(p->argv, "sleep 30") == 0 && o->n < 64)
		o->pid[o->n++] = (pid_t)p->pid;
}

static void collect_orphans(void)
{
	struct orphans o = { .n = 0 };
	struct sbx_error err;

	if (sbx_ps(addr, find_orphan, &o, &err) < 0)
		die_msg("ps", &err);
	for (int i = 0; i < o.n; i++)
		collect(o.pid[i]);
}

#define SLEEPERS 4 /* commands started together just before each kill */

/* One restart: ms from the server's death to the end of the next
 * successful `true`. Before the kill, SLEEPERS commands are started on
 * as many connections at once, and the kill comes as soon as the first
 * says STARTED: the others' starts are still on their way, which is when
 * a restart is most likely to lose track of a command. */
static double restart_ms(void)
{
	static const char *const sleeper[] = { "sleep", "30", NULL };
	static const char *const killer[] = { "sh", "-c", "kill -9 $PPID", NULL };
	struct sbx_exec_opts o = { .argv = sleeper };
	struct sbx_conn *cs[SLEEPERS], *c;
	pid_t jobs[SLEEPERS] = { 0 }, job, server = unix_path ? find_server() : 0;
	struct sbx_error err;
	uint64_t dead, deadline;
	double ms;

	if (server > 0) {
		struct frame f;

		for (int i = 0; i < SLEEPERS; i++)
			if (sbx_connect(addr, &cs[i], &err) < 0 || sbx_exec_send(cs[i], &o, &err) < 0 ||
			    sbx_flush(cs[i], &err) < 0)
				die_msg("start a command", &err);
		if (sbx_recv(cs[0], &f, 5000, &err) < 0 || f.type != FT_STARTED || f.len != 4)
			die_msg("no STARTED", &err);
		jobs[0] = (pid_t)get_le32(f.payload);
		dead = time_mono_ns();
		if (kill(server, SIGKILL) < 0)
			die_msg("kill the server", NULL);
	} else {
		c = start(killer, &job);
		if (!until_dropped(c)) {
			fprintf(stderr, "sbx-restart: the server is not visible from here and commands "
				"may not kill it (the seccomp key is on): nothing to measure\n");
			exit(1);
		}
		dead = time_mono_ns();
		sbx_close(c);
		jobs[0] = job;
	}
	deadline = dead + RESTART_WAIT_NS;
	while (exec_true_ms() < 0) {
		if (time_mono_ns() > deadline) {
			fprintf(stderr, "sbx-restart: no command ran within 5 s of the server's death\n");
			exit(1);
		}
		usleep(1000);
	}
	ms = (double)(time_mono_ns() - dead) / 1e6;
	/* Which sleepers had started when the server died: what their
	 * connections got before they dropped. A connection that was still
	 * in the listening socket's queue at the kill is served by the new
	 * server and does not drop: its command started after the restart,
	 * and closing the connection hangs it up. */
	for (int i = 0; server > 0 && i < SLEEPERS; i++) {
		struct frame f;
		int r;

		while ((r = sbx_recv(cs[i], &f, 5000, &err)) == 0)
			if (f.type == FT_STARTED && f.len == 4)
				jobs[i] = (pid_t)get_le32(f.payload);
		if (r == -EAGAIN)
			jobs[i] = 0;
		sbx_close(cs[i]);
	}
	for (int i = 0; i < SLEEPERS; i++)
		if (jobs[i] > 0) {
			started++;
			lost += !collect(jobs[i]);
		}
	collect_orphans();
	return ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 20;
	double *restart, *plain, *ratio;
	uint64_t last;

	if (argc < 2 || n < 1) {
		fprintf(stderr, "usage: sbx-restart ADDR [N]\n");
		return 2;
	}
	addr = argv[1];
	if (strncmp(addr, "unix:", 5) == 0)
		unix_path = addr + 5;
	restart = calloc((size_t)n, sizeof(double));
	plain = calloc((size_t)n, sizeof(double));
	ratio = calloc((size_t)n, sizeof(double));
	if (!restart || !plain || !ratio)
		die_msg("calloc", NULL);
	for (int i = 0; i < 5; i++)
		if (exec_true_ms() < 0)
			die_msg("the agent does not run `true`", NULL);
	/* The server may have been (re)started just now: wait out PID 1's
	 * once-a-second limit before the first kill. */
	usleep(SPACING_NS / 1000);
	last = time_mono_ns();
	for (int i = 0; i < n; i++) {
		while (time_mono_ns() < last + SPACING_NS)
			usleep(10000);
		plain[i] = exec_true_ms();
		if (plain[i] < 0)
			die_msg("`true` failed", NULL);
		restart[i] = restart_ms();
		last = time_mono_ns();
		ratio[i] = restart[i] / plain[i];
		fprintf(stderr, "# trial %d: restart %.1f ms, plain exec %.2f ms\n", i + 1, restart[i],
			plain[i]);
	}
	{
		double rmed = median(restart, n), pmed = median(plain, n), q = median(ratio, n);

		printf("| server killed (kill -9) mid-command → next `true` done | sbx | %d | %.1f ms | "
		       "%.1f–%.1f ms | %.1f× |\n", n, rmed, restart[0], restart[n - 1], q);
		printf("| `true` round trip, server up | baseline | %d | %.2f ms | %.2f–%.2f ms | |\n", n,
		       pmed, plain[0], plain[n - 1]);
		printf("| commands running at a kill that the new server did not take back | sbx "
		       "| %d | %d | | |\n", started, lost);
	}
	return lost ? 3 : 0;
}
