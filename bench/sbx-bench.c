/* sbx-bench: the in-process benchmark driver of bench/run.sh. Every
 * measurement runs sbx and its baseline (and the peers) alternately in
 * one run, and reports each side and its ratio to the baseline pair by
 * pair, as markdown table rows
 *   | measurement | side | N | median | p99 or range | ratio |
 * (../shared/BENCH.md: only ratios from one run count here).
 *
 *   sbx-bench exec ADDR N [SIDE]...      /bin/true round trip: fork+exec+wait,
 *                                        sbx (libsbx), then each SIDE:
 *       qga|SOCK|POLL_US                 qemu-ga: guest-exec, then
 *                                        guest-exec-status every POLL_US
 *       cmd|COUNT|LABEL|ARGV...          a program run per round (ssh);
 *                                        COUNT runs spread over the N rounds
 *       sbx|ADDR|LABEL                   another agent (another configuration)
 *     (fields separated by the byte 0x1f)
 *   sbx-bench rtt ADDR N [floor]         raw round trips in µs, one per line
 *                                        ("sbx floor" with floor)
 *   sbx-bench floor N                    raw fork+exec+wait times (for profiles)
 *   sbx-bench vsock-rtt UDS PORT N       raw round trips through sbx-vsockd: connect
 *                                        (CONNECT PORT), 64 bytes to an echo
 *                                        server and back, close; µs per line
 *   sbx-bench stdout ADDR BYTES RUNS     a command's stdout vs a plain Unix socket
 *   sbx-bench stdin ADDR BYTES RUNS      a command's stdin vs a plain Unix socket
 *   sbx-bench hold ADDR N ARGV...        N exec connections running ARGV at once;
 *                                        prints "ready" once all started, ends
 *                                        them when stdin closes
 *   sbx-bench qga-hold SOCK N ARGV...    the same as N guest-exec on qemu-ga
 *   sbx-bench qga-fs SOCK SRC DIR RUNS CHUNK   qemu-ga file calls vs a plain copy
 *   sbx-bench fs ... | fs-plain ...      bench/fs.c (bench/fs.sh)
 *
 * SBX_TOKEN in the environment: the sandbox token to prove (sbx create's).
 * BENCH_KV: a file to append "key value" lines to, for bench/summary.md. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench/qga.h"
#include "bench/stats.h"
#include "libsbx/sbx.h"

#define WARMUP 50
#define SIDES_MAX 16
#define SEP "\x1f"

int bench_fs(int argc, char **argv);

static _Noreturn void die_msg(const char *what, const struct sbx_error *err)
{
	fprintf(stderr, "sbx-bench: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

/* "key value" lines for bench/summary.md. */
static void kv(const char *key, const char *fmt, ...)
{
	const char *path = getenv("BENCH_KV");
	va_list ap;
	FILE *f;

	if (!path || !(f = fopen(path, "a")))
		return;
	fprintf(f, "%s ", key);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

/* µs below 10 ms, ms above. */
static const char *fmt_us(char *buf, size_t len, double us)
{
	if (us >= 10000)
		snprintf(buf, len, "%.1f ms", us / 1000);
	else if (us >= 100)
		snprintf(buf, len, "%.0f µs", us);
	else
		snprintf(buf, len, "%.1f µs", us);
	return buf;
}

/* ---- exec round trip ---- */

enum side_kind { SIDE_FLOOR, SIDE_SBX, SIDE_QGA, SIDE_CMD };

struct side {
	enum side_kind kind;
	char label[256];
	char key[32];            /* for BENCH_KV */
	size_t count;            /* runs over the N rounds */
	const char *addr;        /* SIDE_SBX */
	struct qga qga;          /* SIDE_QGA */
	char **argv;             /* SIDE_CMD */
	struct samples t, vs_floor, vs_sbx;
};

static const char *const true_argv[] = { "/bin/true", NULL };

static double floor_once(void)
{
	uint64_t t0 = bench_now_ns();
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execv(true_argv[0], (char *const *)true_argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
		die_msg("fork+exec+wait", NULL);
	return (double)(bench_now_ns() - t0) / 1000.0;
}

static double sbx_once(const char *addr)
{
	struct sbx_exec_opts o = { .argv = true_argv };
	struct sbx_exit x;
	struct sbx_error err;
	uint64_t t0 = bench_now_ns();

	if (sbx_run(addr, &o, -1, -1, -1, &x, &err) < 0)
		die_msg("sbx exec", &err);
	if (sbx_exit_status(&x) != 0) {
		fprintf(stderr, "sbx-bench: /bin/true exited %d: %s\n", sbx_exit_status(&x), x.msg);
		exit(1);
	}
	return (double)(bench_now_ns() - t0) / 1000.0;
}

static double qga_once(struct qga *q)
{
	uint64_t t0 = bench_now_ns();
	int code = qga_exec_wait(q, true_argv);

	if (code != 0) {
		fprintf(stderr, "sbx-bench: qemu-ga: /bin/true exited %d\n", code);
		exit(1);
	}
	return (double)(bench_now_ns() - t0) / 1000.0;
}

/* A program per round (the ssh client): its whole life is the sample. */
static double cmd_once(char **argv)
{
	uint64_t t0 = bench_now_ns();
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/* stderr too: `ssh -V` prints there; a failure is reported
		 * below with the command line. */
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		die_msg(argv[0], NULL);
	if (status != 0) {
		fprintf(stderr, "sbx-bench: %s failed (status 0x%x):", argv[0], status);
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n");
		exit(1);
	}
	return (double)(bench_now_ns() - t0) / 1000.0;
}

static double side_once(struct side *s)
{
	switch (s->kind) {
	case SIDE_FLOOR:
		return floor_once();
	case SIDE_SBX:
		return sbx_once(s->addr);
	case SIDE_QGA:
		return qga_once(&s->qga);
	case SIDE_CMD:
		return cmd_once(s->argv);
	}
	return 0;
}

/* Splits a 0x1f-separated spec in place. */
static size_t split(char *spec, char **out, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(spec, SEP); tok && n + 1 < max; tok = strtok(NULL, SEP))
		out[n++] = tok;
	out[n] = NULL;
	return n;
}

static void side_parse(struct side *s, char *spec, size_t rounds, unsigned idx)
{
	char **f = calloc(256, sizeof(char *));
	size_t n = split(spec, f, 256);

	if (n >= 3 && !strcmp(f[0], "qga")) {
		s->kind = SIDE_QGA;
		s->count = rounds;
		qga_open(&s->qga, f[1]);
		s->qga.poll_us = (unsigned)strtoul(f[2], NULL, 10);
		snprintf(s->label, sizeof(s->label),
			 "QEMU guest agent over its Unix socket (guest-exec, then guest-exec-status "
			 "%s%s%s; one connection)", s->qga.poll_us ? "every " : "back to back",
			 s->qga.poll_us ? f[2] : "", s->qga.poll_us ? " µs" : "");
		snprintf(s->key, sizeof(s->key), "qga");
	} else if (n >= 3 && !strcmp(f[0], "sbx")) {
		s->kind = SIDE_SBX;
		s->count = rounds;
		s->addr = f[1];
		snprintf(s->label, sizeof(s->label), "%s", f[2]);
		snprintf(s->key, sizeof(s->key), "sbx%u", idx);
		return; /* f stays: addr points into it */
	} else if (n >= 4 && !strcmp(f[0], "cmd")) {
		s->kind = SIDE_CMD;
		s->count = strtoul(f[1], NULL, 10);
		if (s->count == 0 || s->count > rounds)
			s->count = rounds;
		snprintf(s->label, sizeof(s->label), "%s", f[2]);
		snprintf(s->key, sizeof(s->key), "cmd%u", idx);
		s->argv = f + 3;
		return; /* f stays: argv points into it */
	} else {
		fprintf(stderr, "sbx-bench: bad side '%s'\n", spec);
		exit(2);
	}
	free(f);
}

/* Does side s run in round i of rounds? COUNT runs spread evenly. */
static bool side_due(const struct side *s, size_t i, size_t rounds)
{
	return (i * s->count) / rounds != ((i + 1) * s->count) / rounds;
}

static void exec_row(const struct side *s, const struct side *sbx)
{
	char med[32], p99[32], ratio[160] = "1";

	if (s->kind != SIDE_FLOOR)
		snprintf(ratio, sizeof(ratio), "%.2f (p99 of pairs %.2f)",
			 samples_pct(&s->vs_floor, 50), samples_pct(&s->vs_floor, 99));
	if (s != sbx && s->kind != SIDE_FLOOR)
		snprintf(ratio + strlen(ratio), sizeof(ratio) - strlen(ratio), "; %.*f× sbx",
			 s->kind == SIDE_SBX ? 2 : 1, samples_pct(&s->vs_sbx, 50));
	printf("| exec `/bin/true`, round trip | %s | %zu | %s | %s | %s |\n", s->label, s->t.n,
	       fmt_us(med, sizeof(med), samples_pct(&s->t, 50)),
	       fmt_us(p99, sizeof(p99), samples_pct(&s->t, 99)), ratio);
	kv(s->key, "%zu %.1f %.1f %.3f %.3f %.3f", s->t.n, samples_pct(&s->t, 50),
	   samples_pct(&s->t, 99), s->kind == SIDE_FLOOR ? 1.0 : samples_pct(&s->vs_floor, 50),
	   s->kind == SIDE_FLOOR ? 1.0 : samples_pct(&s->vs_floor, 99),
	   s->kind == SIDE_FLOOR || s == sbx ? 1.0 : samples_pct(&s->vs_sbx, 50));
}

static int bench_exec(const char *addr, size_t rounds, int nspec, char **spec)
{
	struct side *sides = calloc(SIDES_MAX, sizeof(*sides));
	size_t nsides = 2;

	if (!sides || nspec + 2 > SIDES_MAX)
		die_msg("sides", NULL);
	sides[0] = (struct side){ .kind = SIDE_FLOOR, .count = rounds,
				  .label = "floor: fork+exec+wait", .key = "floor" };
	sides[1] = (struct side){ .kind = SIDE_SBX, .count = rounds, .addr = addr,
				  .label = "sbx over its Unix socket (libsbx, a connection per command)",
				  .key = "sbx" };
	for (int i = 0; i < nspec; i++)
		side_parse(&sides[nsides++], spec[i], rounds, (unsigned)i);

	/* Warm-up, not counted: caches, allocators, the peers' first fork. */
	for (size_t k = 0; k < nsides; k++) {
		size_t w = sides[k].count / 20 < WARMUP ? sides[k].count / 20 : WARMUP;

		if (sides[k].kind == SIDE_CMD && w > 5)
			w = 5;

		for (size_t j = 0; j < (w ? w : 1); j++)
			side_once(&sides[k]);
	}
	for (size_t i = 0; i < rounds; i++) {
		double t[SIDES_MAX];

		/* Forward on even rounds, backward on odd: no side always
		 * follows the same one. */
		for (size_t j = 0; j < nsides; j++) {
			size_t k = i % 2 ? nsides - 1 - j : j;

			if (side_due(&sides[k], i, rounds))
				t[k] = side_once(&sides[k]);
		}
		for (size_t k = 0; k < nsides; k++) {
			if (!side_due(&sides[k], i, rounds))
				continue;
			samples_add(&sides[k].t, t[k]);
			samples_add(&sides[k].vs_floor, t[k] / t[0]);
			samples_add(&sides[k].vs_sbx, t[k] / t[1]);
		}
	}
	for (size_t k = 0; k < nsides; k++)
		exec_row(&sides[k], &sides[1]);
	return 0;
}

/* Raw samples, for runs that cannot share a process with their baseline
 * (the in-guest client against the host client over vsock). */
static int bench_rtt(const char *addr, size_t n, bool with_floor)
{
	for (int i = 0; i < 20; i++)
		sbx_once(addr);
	for (size_t i = 0; i < n; i++) {
		double y = sbx_once(addr);

		if (with_floor)
			printf("%.1f %.1f\n", y, floor_once());
		else
			printf("%.1f\n", y);
	}
	return 0;
}

/* The transport alone: a hybrid vsock connection through sbx-vsockd to
 * an echo server in the guest (vsock-tool listen), 64 bytes there and
 * back. */
static double vsock_echo_once(const char *uds, unsigned port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[64], msg[64] = "ping", back[64];
	size_t n = 0, got = 0;
	uint64_t t0 = bench_now_ns();
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die_msg(uds, NULL);
	dprintf(fd, "CONNECT %u\n", port);
	while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	if (n < 3 || strncmp(line, "OK ", 3))
		die_msg("vsock-rtt: no OK from sbx-vsockd", NULL);
	if (write(fd, msg, sizeof(msg)) != sizeof(msg))
		die_msg("vsock-rtt: write", NULL);
	while (got < sizeof(back)) {
		ssize_t r = read(fd, back + got, sizeof(back) - got);

		if (r <= 0)
			die_msg("vsock-rtt: read", NULL);
		got += (size_t)r;
	}
	close(fd);
	return (double)(bench_now_ns() - t0) / 1000.0;
}

static int bench_vsock_rtt(const char *uds, unsigned port, size_t n)
{
	for (int i = 0; i < 10; i++)
		vsock_echo_once(uds, port);
	for (size_t i = 0; i < n; i++)
		printf("%.1f\n", vsock_echo_once(uds, port));
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

static size_t parse_size(const char *s)
{
	char *end;
	size_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'G':
		return v << 30;
	case 'M':
		return v << 20;
	case 'K':
		return v << 10;
	}
	return v;
}

static int bench_stream(const char *addr, const char *bytes, size_t runs, bool out)
{
	struct samples a = { 0 }, b = { 0 }, r = { 0 }, c = { 0 }, rc = { 0 };
	char ratio[128], what[128];
	size_t want = parse_size(bytes);
	const char *dir = out ? "stdout" : "stdin";

	/* One of each first, not counted. */
	out ? stdout_plain(bytes) : stdin_plain(bytes, want);
	out ? stdout_sbx(addr, bytes, want) : stdin_sbx(addr, bytes, want);
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
	snprintf(what, sizeof(what), "%s of %s", dir, bytes);
	printf("| %s | transport ceiling: 1 MiB writes from memory into a Unix socket | %zu | "
	       "%.0f MB/s | min %.0f, max %.0f | sbx/ceiling %.2f |\n", what, runs,
	       samples_pct(&c, 50), samples_min(&c), samples_max(&c), samples_pct(&rc, 50));
	snprintf(ratio, sizeof(ratio), "%.2f (min %.2f, max %.2f)", samples_pct(&r, 50),
		 samples_min(&r), samples_max(&r));
	printf("| %s | baseline: the same command on a plain Unix socket | %zu | %.0f MB/s | "
	       "min %.0f, max %.0f | 1 |\n", what, runs, samples_pct(&a, 50), samples_min(&a),
	       samples_max(&a));
	printf("| %s | sbx exec (libsbx) | %zu | %.0f MB/s | min %.0f, max %.0f | %s |\n", what,
	       runs, samples_pct(&b, 50), samples_min(&b), samples_max(&b), ratio);
	kv(dir, "%zu %.0f %.0f %.3f %.3f %.3f", runs, samples_pct(&b, 50), samples_pct(&a, 50),
	   samples_pct(&r, 50), samples_min(&r), samples_max(&r));
	return 0;
}

/* ---- many idle commands at once (footprint) ---- */

static void raise_nofile(size_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
		rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Waits until stdin closes (the script measured what it wanted). */
static void ready_and_wait(size_t n)
{
	char buf[64];

	printf("ready %zu\n", n);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static int bench_hold(const char *addr, size_t n, const char *const *argv)
{
	struct sbx_exec_opts o = { .argv = argv };
	struct sbx_conn **c = calloc(n, sizeof(*c));
	struct sbx_error err;

	raise_nofile(n);
	for (size_t i = 0; i < n; i++)
		if (sbx_connect(addr, &c[i], &err) < 0 || sbx_exec_send(c[i], &o, &err) < 0)
			die_msg("hold: sbx exec", &err);
	for (size_t i = 0; i < n; i++) {
		struct frame f;
		struct sbx_event ev;

		if (sbx_recv(c[i], &f, 30000, &err) < 0 || sbx_exec_event(&f, &ev, &err) < 0)
			die_msg("hold: waiting for STARTED", &err);
		if (ev.kind != SBX_EV_STARTED) {
			fprintf(stderr, "sbx-bench: hold: command %zu did not start\n", i);
			exit(1);
		}
	}
	ready_and_wait(n);
	for (size_t i = 0; i < n; i++)
		sbx_close(c[i]);
	return 0;
}

static int bench_qga_hold(const char *sock, size_t n, const char *const *argv)
{
	pid_t *pids = calloc(n, sizeof(*pids));
	struct qga q;

	qga_open(&q, sock);
	for (size_t i = 0; i < n; i++)
		pids[i] = qga_exec_start(&q, argv);
	ready_and_wait(n);
	/* qemu-ga has no call to stop a command: they run on this host. */
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	qga_close(&q);
	return 0;
}

/* ---- qemu-ga file calls ---- */

static uint64_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		die_msg(path, NULL);
	return (uint64_t)st.st_size;
}

/* The same baseline as bench/fs.c: file -> plain Unix socket -> new file,
 * two processes, 1 MiB reads and writes, fsync at the end. */
static double plain_file_copy(const char *src, const char *dst)
{
	static char buf[CHUNK];
	uint64_t t0, got = 0;
	int sv[2], status, out;
	ssize_t n;
	pid_t pid;

	unlink(dst);
	t0 = bench_now_ns();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die_msg("socketpair", NULL);
	pid = fork();
	if (pid == 0) {
		int in = open(src, O_RDONLY);

		close(sv[0]);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(sv[1], buf, (size_t)n) != n)
				_exit(1);
		_exit(n < 0);
	}
	close(sv[1]);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		die_msg(dst, NULL);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n)
			die_msg(dst, NULL);
		got += (uint64_t)n;
	}
	fsync(out);
	close(out);
	close(sv[0]);
	waitpid(pid, &status, 0);
	if (got != file_size(src) || status != 0)
		die_msg("baseline copy incomplete", NULL);
	return (double)got / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

static void file_hash(const char *path, unsigned char out[32])
{
	static unsigned char buf[CHUNK];
	crypto_generichash_state h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		die_msg(path, NULL);
	crypto_generichash_init(&h, NULL, 0, 32);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crypto_generichash_update(&h, buf, (size_t)n);
	crypto_generichash_final(&h, out, 32);
	close(fd);
}

static int bench_qga_fs(const char *sock, const char *src, const char *dir, size_t runs,
			size_t chunk)
{
	char plain[4096], remote[4096], back[4096], what_up[128], what_down[128], label[160];
	struct samples bu = { 0 }, up = { 0 }, ru = { 0 }, bd = { 0 }, down = { 0 }, rd = { 0 };
	uint64_t size = file_size(src);
	unsigned char h1[32], h2[32];
	struct qga q;

	qga_open(&q, sock);
	snprintf(plain, sizeof(plain), "%s/qga-plain.out", dir);
	snprintf(remote, sizeof(remote), "%s/qga.out", dir);
	snprintf(back, sizeof(back), "%s/qga.back", dir);
	for (size_t i = 0; i < runs; i++) {
		double b = plain_file_copy(src, plain), v;
		uint64_t t0;

		unlink(remote);
		t0 = bench_now_ns();
		qga_upload(&q, src, remote, chunk);
		v = (double)size / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
		samples_add(&bu, b);
		samples_add(&up, v);
		samples_add(&ru, v / b);

		b = plain_file_copy(remote, plain);
		unlink(back);
		t0 = bench_now_ns();
		if (qga_download(&q, remote, back, chunk) != size)
			die_msg("qemu-ga download: wrong size", NULL);
		v = (double)size / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
		samples_add(&bd, b);
		samples_add(&down, v);
		samples_add(&rd, v / b);
	}
	file_hash(src, h1);
	file_hash(back, h2);
	if (memcmp(h1, h2, sizeof(h1)))
		die_msg("qemu-ga round trip: the bytes differ", NULL);
	unlink(plain);
	unlink(remote);
	unlink(back);
	qga_close(&q);

	snprintf(what_up, sizeof(what_up), "upload %llu MiB to tmpfs",
		 (unsigned long long)(size >> 20));
	snprintf(what_down, sizeof(what_down), "download %llu MiB from tmpfs",
		 (unsigned long long)(size >> 20));
	printf("| %s | baseline: file → plain Unix socket → new file, 1 MiB I/O | %zu | %.0f MB/s | "
	       "min %.0f, max %.0f | 1 |\n", what_up, runs, samples_pct(&bu, 50), samples_min(&bu),
	       samples_max(&bu));
	snprintf(label, sizeof(label), "QEMU guest agent: guest-file-open/write/close, %zu KiB "
		 "base64 per call", chunk >> 10);
	printf("| %s | %s | %zu | %.1f MB/s | min %.1f, max %.1f | %.3f (min %.3f, max %.3f) |\n",
	       what_up, label, runs, samples_pct(&up, 50), samples_min(&up), samples_max(&up),
	       samples_pct(&ru, 50), samples_min(&ru), samples_max(&ru));
	printf("| %s | baseline: file → plain Unix socket → new file, 1 MiB I/O | %zu | %.0f MB/s | "
	       "min %.0f, max %.0f | 1 |\n", what_down, runs, samples_pct(&bd, 50),
	       samples_min(&bd), samples_max(&bd));
	snprintf(label, sizeof(label), "QEMU guest agent: guest-file-open/read/close, %zu KiB "
		 "per call", chunk >> 10);
	printf("| %s | %s | %zu | %.1f MB/s | min %.1f, max %.1f | %.3f (min %.3f, max %.3f) |\n",
	       what_down, label, runs, samples_pct(&down, 50), samples_min(&down),
	       samples_max(&down), samples_pct(&rd, 50), samples_min(&rd), samples_max(&rd));
	kv("qga_up", "%zu %.1f %.3f", runs, samples_pct(&up, 50), samples_pct(&ru, 50));
	kv("qga_down", "%zu %.1f %.3f", runs, samples_pct(&down, 50), samples_pct(&rd, 50));
	return 0;
}

static const char usage[] =
	"usage: sbx-bench exec ADDR N [SIDE]...\n"
	"       sbx-bench rtt ADDR N [floor]\n"
	"       sbx-bench floor N\n"
	"       sbx-bench vsock-rtt UDS PORT N\n"
	"       sbx-bench stdout|stdin ADDR BYTES RUNS\n"
	"       sbx-bench hold ADDR N ARGV...\n"
	"       sbx-bench qga-hold SOCK N ARGV...\n"
	"       sbx-bench qga-fs SOCK SRC DIR RUNS CHUNK\n"
	"       sbx-bench fs ADDR SRC DIR RUNS | fs-plain SRC DST | fs --probe\n"
	"(see bench/sbx-bench.c)\n";

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	if (getenv("SBX_TOKEN") && *getenv("SBX_TOKEN"))
		sbx_set_token(getenv("SBX_TOKEN"));
	if (!strcmp(cmd, "fs") || !strcmp(cmd, "fs-plain") || !strcmp(cmd, "fs-ends"))
		return bench_fs(argc - 1, argv + 1);
	if (argc >= 4 && !strcmp(cmd, "exec"))
		return bench_exec(argv[2], strtoull(argv[3], NULL, 10), argc - 4, argv + 4);
	if (argc == 3 && !strcmp(cmd, "floor")) {
		for (size_t i = 0, n = strtoull(argv[2], NULL, 10); i < n; i++)
			printf("%.1f\n", floor_once());
		return 0;
	}
	if ((argc == 4 || argc == 5) && !strcmp(cmd, "rtt"))
		return bench_rtt(argv[2], strtoull(argv[3], NULL, 10), argc == 5);
	if (argc == 5 && !strcmp(cmd, "vsock-rtt"))
		return bench_vsock_rtt(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
				       strtoull(argv[4], NULL, 10));
	if (argc == 5 && !strcmp(cmd, "stdout"))
		return bench_stream(argv[2], argv[3], strtoull(argv[4], NULL, 10), true);
	if (argc == 5 && !strcmp(cmd, "stdin"))
		return bench_stream(argv[2], argv[3], strtoull(argv[4], NULL, 10), false);
	if (argc >= 5 && !strcmp(cmd, "hold"))
		return bench_hold(argv[2], strtoull(argv[3], NULL, 10), (const char *const *)argv + 4);
	if (argc >= 5 && !strcmp(cmd, "qga-hold"))
		return bench_qga_hold(argv[2], strtoull(argv[3], NULL, 10),
				      (const char *const *)argv + 4);
	if (argc == 7 && !strcmp(cmd, "qga-fs"))
		return bench_qga_fs(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10),
				    parse_size(argv[6]));
	fputs(usage, stderr);
	return 2;
}
