/* sbx-bench: in-process benchmark driver. Each measurement runs sbx and
 * its baseline alternately (A B A B ...) in one run and reports both and
 * their ratio, pair by pair, as markdown table rows:
 *
 *   sbx-bench exec ADDR N            /bin/true round trip vs fork+exec+wait
 *   sbx-bench stdout ADDR BYTES RUNS command stdout vs a plain Unix socket
 *   sbx-bench stdin ADDR BYTES RUNS  command stdin vs a plain Unix socket
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/stats.h"
#include "host/sbx.h"

#define WARMUP 50

static _Noreturn void die_msg(const char *what, const struct sbx_error *err)
{
	fprintf(stderr, "sbx-bench: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

static void row(const char *what, const char *side, size_t n, double med, double p99,
		const char *unit, const char *ratio)
{
	printf("| %s | %s | %zu | %.1f %s | %.1f %s | %s |\n", what, side, n, med, unit, p99, unit,
	       ratio);
}

/* ---- exec round trip ---- */

static double floor_once(const char *prog)
{
	uint64_t t0 = bench_now_ns();
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
		die_msg("fork+exec+wait", NULL);
	return (double)(bench_now_ns() - t0) / 1000.0;
}

static double sbx_once(const char *addr, const char *prog)
{
	const char *argv[] = { prog, NULL };
	struct sbx_exec_opts o = { .argv = argv };
	struct sbx_exit x;
	struct sbx_error err;
	uint64_t t0 = bench_now_ns();

	if (sbx_run(addr, &o, -1, -1, -1, &x, &err) < 0)
		die_msg("sbx exec", &err);
	if (sbx_exit_status(&x) != 0) {
		fprintf(stderr, "sbx-bench: %s exited %d: %s\n", prog, sbx_exit_status(&x), x.msg);
		exit(1);
	}
	return (double)(bench_now_ns() - t0) / 1000.0;
}

static int bench_exec(const char *addr, size_t n, const char *prog)
{
	struct samples a = { 0 }, b = { 0 }, r = { 0 };
	char ratio[128];

	for (int i = 0; i < WARMUP; i++) {
		floor_once(prog);
		sbx_once(addr, prog);
	}
	for (size_t i = 0; i < n; i++) {
		double x = floor_once(prog), y = sbx_once(addr, prog);

		samples_add(&a, x);
		samples_add(&b, y);
		samples_add(&r, y / x);
	}
	snprintf(ratio, sizeof(ratio), "%.2f (p99 of pairs %.2f)", samples_pct(&r, 50),
		 samples_pct(&r, 99));
	row("exec `/bin/true`, round trip", "floor: fork+exec+wait", n, samples_pct(&a, 50),
	    samples_pct(&a, 99), "µs", "1");
	row("exec `/bin/true`, round trip", "sbx over its Unix socket (libsbx)", n,
	    samples_pct(&b, 50), samples_pct(&b, 99), "µs", ratio);
	return 0;
}

/* ---- streams ---- */

#define CHUNK (1 << 20)

static size_t drain_fd(int fd)
{
	static char buf[CHUNK];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

/* Baseline: the same command writes straight into a Unix socket. */
static double stdout_plain(const char *bytes)
{
	int sv[2], status;
	uint64_t t0 = bench_now_ns();
	size_t got;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die_msg("socketpair", NULL);
	pid = fork();
	if (pid == 0) {
		dup2(sv[1], 1);
		execlp("head", "head", "-c", bytes, "/dev/zero", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	got = drain_fd(sv[0]);
	close(sv[0]);
	waitpid(pid, &status, 0);
	if (got == 0)
		die_msg("plain socket copy read nothing", NULL);
	return (double)got / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

static double stdout_sbx(const char *addr, const char *bytes, size_t want)
{
	const char *argv[] = { "head", "-c", bytes, "/dev/zero", NULL };
	struct sbx_exec_opts o = { .argv = argv };
	struct sbx_conn *c;
	struct sbx_error err;
	struct frame f;
	struct sbx_event ev;
	size_t got = 0;
	uint64_t t0 = bench_now_ns();

	if (sbx_connect(addr, &c, &err) < 0 || sbx_exec_send(c, &o, &err) < 0)
		die_msg("sbx exec", &err);
	for (;;) {
		if (sbx_recv(c, &f, -1, &err) < 0 || sbx_exec_event(&f, &ev, &err) < 0)
			die_msg("sbx exec", &err);
		if (ev.kind == SBX_EV_STDOUT)
			got += ev.len;
		if (ev.kind == SBX_EV_EXIT)
			break;
	}
	sbx_close(c);
	if (got != want) {
		fprintf(stderr, "sbx-bench: got %zu bytes of %zu\n", got, want);
		exit(1);
	}
	return (double)got / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

/* The transport's ceiling: 1 MiB writes from memory into a Unix socket,
 * read by another process. */
static double socket_ceiling(size_t want)
{
	static char buf[CHUNK];
	int sv[2], status;
	uint64_t t0 = bench_now_ns();
	size_t got;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die_msg("socketpair", NULL);
	pid = fork();
	if (pid == 0) {
		size_t sent = 0;

		close(sv[0]);
		while (sent < want) {
			ssize_t n = write(sv[1], buf, want - sent < CHUNK ? want - sent : CHUNK);

			if (n < 0)
				_exit(1);
			sent += (size_t)n;
		}
		_exit(0);
	}
	close(sv[1]);
	got = drain_fd(sv[0]);
	close(sv[0]);
	waitpid(pid, &status, 0);
	return (double)got / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

/* Baseline: the bench writes into a Unix socket that is the command's
 * stdin. */
static double stdin_plain(const char *bytes, size_t want)
{
	static char buf[CHUNK];
	int sv[2], status;
	uint64_t t0 = bench_now_ns();
	size_t sent = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die_msg("socketpair", NULL);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(sv[1], 0);
		dup2(null, 1);
		execlp("head", "head", "-c", bytes, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	while (sent < want) {
		ssize_t n = write(sv[0], buf, want - sent < CHUNK ? want - sent : CHUNK);

		if (n < 0)
			die_msg("write", NULL);
		sent += (size_t)n;
	}
	close(sv[0]);
	waitpid(pid, &status, 0);
	return (double)sent / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

static double stdin_sbx(const char *addr, const char *bytes, size_t want)
{
	static char buf[256 * 1024];
	const char *argv[] = { "head", "-c", bytes, NULL };
	struct sbx_exec_opts o = { .argv = argv, .stdin_pipe = true, .no_stdout = true };
	struct sbx_conn *c;
	struct sbx_error err;
	struct frame f;
	struct sbx_event ev;
	size_t sent = 0;
	bool want_write;
	uint64_t t0 = bench_now_ns();

	if (sbx_connect(addr, &c, &err) < 0 || sbx_exec_send(c, &o, &err) < 0)
		die_msg("sbx exec", &err);
	while (sent < want) {
		size_t n = want - sent < sizeof(buf) ? want - sent : sizeof(buf);
		struct pollfd p = { .fd = sbx_fd(c), .events = POLLOUT };

		if (sbx_exec_stdin(c, buf, n, &err) < 0 || sbx_pump(c, &want_write, &err) < 0)
			die_msg("sbx stdin", &err);
		sent += n;
		while (want_write) {
			poll(&p, 1, -1);
			if (sbx_pump(c, &want_write, &err) < 0)
				die_msg("sbx stdin", &err);
		}
	}
	if (sbx_exec_stdin_eof(c, &err) < 0)
		die_msg("sbx stdin", &err);
	do {
		if (sbx_recv(c, &f, -1, &err) < 0 || sbx_exec_event(&f, &ev, &err) < 0)
			die_msg("sbx exec", &err);
	} while (ev.kind != SBX_EV_EXIT);
	sbx_close(c);
	return (double)sent / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

static int bench_stream(const char *addr, const char *bytes, size_t runs, bool out)
{
	struct samples a = { 0 }, b = { 0 }, r = { 0 }, c = { 0 }, rc = { 0 };
	char *end, ratio[128], what[128];
	size_t want = strtoull(bytes, &end, 10);

	switch (*end) {
	case 'G':
		want <<= 30;
		break;
	case 'M':
		want <<= 20;
		break;
	}
	for (size_t i = 0; i < runs; i++) {
		double x = out ? stdout_plain(bytes) : stdin_plain(bytes, want);
		double y = out ? stdout_sbx(addr, bytes, want) : stdin_sbx(addr, bytes, want);

		double z = socket_ceiling(want);

		samples_add(&a, x);
		samples_add(&b, y);
		samples_add(&c, z);
		samples_add(&r, y / x);
		samples_add(&rc, y / z);
	}
	snprintf(what, sizeof(what), "%s of %s", out ? "stdout" : "stdin", bytes);
	printf("| %s | transport ceiling: 1 MiB writes into a Unix socket | %zu | %.0f MB/s | "
	       "min %.0f, max %.0f | sbx/ceiling %.2f |\n", what, runs, samples_pct(&c, 50),
	       samples_min(&c), samples_max(&c), samples_pct(&rc, 50));
	snprintf(ratio, sizeof(ratio), "%.2f (min %.2f, max %.2f)", samples_pct(&r, 50),
		 samples_min(&r), samples_max(&r));
	printf("| %s | the same command on a plain Unix socket | %zu | %.0f MB/s | min %.0f, max %.0f | 1 |\n", what,
	       runs, samples_pct(&a, 50), samples_min(&a), samples_max(&a));
	printf("| %s | sbx exec (libsbx) | %zu | %.0f MB/s | min %.0f, max %.0f | %s |\n", what, runs,
	       samples_pct(&b, 50), samples_min(&b), samples_max(&b), ratio);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "exec") == 0)
		return bench_exec(argv[2], strtoull(argv[3], NULL, 10), "/bin/true");
	if (argc == 5 && strcmp(argv[1], "stdout") == 0)
		return bench_stream(argv[2], argv[3], strtoull(argv[4], NULL, 10), true);
	if (argc == 5 && strcmp(argv[1], "stdin") == 0)
		return bench_stream(argv[2], argv[3], strtoull(argv[4], NULL, 10), false);
	fprintf(stderr, "usage: sbx-bench exec ADDR N | stdout ADDR BYTES RUNS | stdin ADDR BYTES RUNS\n");
	return 2;
}
