/* fwdbench: the driver of bench/net.sh. A loopback TCP service, and a
 * client that measures it directly and through relays (sbx FORWARD via
 * the agent, in-process with libsbx; socat; ssh -L), the sides
 * alternated so that only ratios from one run are compared (BENCH.md).
 *
 *   fwdbench serve                        listen on 127.0.0.1, print the port
 *   fwdbench freeport                     print a free loopback port
 *   fwdbench tput ADDR SRC BYTES RUNS [NAME=PORT]...   download throughput
 *   fwdbench rr   ADDR SRC N [NAME=PORT]...            64-byte round trips
 *   fwdbench conn ADDR SRC N [NAME=PORT]...            connect + round trip
 *
 * The service: a client sends 'T' and a u64 n to get n bytes and EOF, or
 * 'R' to have every 64 bytes it sends echoed. Output: markdown rows
 * "| measurement | side | N | median | range | ratio |". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/stats.h"
#include "lib/util.h"
#include "libsbx/sbx_net.h"

#define CHUNK (1 << 20)
#define MSG 64
#define SIDES_MAX 8
#define CONNS_MAX 256
#define WARMUP 100

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "fwdbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int tcp_listen(unsigned *port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&in, sizeof(in)) < 0 || listen(fd, 512) < 0)
		die("listen");
	getsockname(fd, (struct sockaddr *)&in, &len);
	*port = ntohs(in.sin_port);
	return fd;
}

/* ---- the service ---- */

struct sconn {
	int fd;
	uint8_t cmd[9];
	size_t cmd_len;
	char mode;            /* 0 until known, 'T' or 'R' */
	uint64_t left;        /* 'T': bytes still to send */
	uint8_t msg[MSG];
	size_t msg_len;
};

static void sconn_close(struct sconn *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Reads the command, and for 'R' echoes whole messages. */
static void sconn_read(struct sconn *c)
{
	ssize_t n;

	if (!c->mode) {
		n = read(c->fd, c->cmd + c->cmd_len, (c->cmd_len ? 9 : 1) - c->cmd_len);
		if (n <= 0)
			return sconn_close(c);
		c->cmd_len += (size_t)n;
		if (c->cmd[0] == 'R') {
			c->mode = 'R';
		} else if (c->cmd[0] == 'T' && c->cmd_len == 9) {
			memcpy(&c->left, c->cmd + 1, 8);
			c->mode = 'T';
		} else if (c->cmd[0] != 'T') {
			return sconn_close(c);
		}
		return;
	}
	n = read(c->fd, c->msg + c->msg_len, MSG - c->msg_len);
	if (n <= 0)
		return sconn_close(c);
	c->msg_len += (size_t)n;
	if (c->msg_len == MSG) {
		if (fd_write_all(c->fd, c->msg, MSG) < 0)
			return sconn_close(c);
		c->msg_len = 0;
	}
}

static void sconn_write(struct sconn *c)
{
	static char zeros[CHUNK];
	ssize_t n = send(c->fd, zeros, c->left < CHUNK ? c->left : CHUNK,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN)
			sconn_close(c);
		return;
	}
	c->left -= (uint64_t)n;
	if (c->left == 0)
		sconn_close(c);
}

static int serve(void)
{
	static struct sconn conns[CONNS_MAX];
	struct pollfd p[CONNS_MAX + 1];
	unsigned port;
	int lfd = tcp_listen(&port), one = 1;

	printf("%u\n", port);
	fflush(stdout);
	for (int i = 0; i < CONNS_MAX; i++)
		conns[i].fd = -1;
	for (;;) {
		p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < CONNS_MAX; i++)
			p[i + 1] = (struct pollfd){ .fd = conns[i].fd,
						    .events = conns[i].mode == 'T' ? POLLOUT : POLLIN };
		if (poll(p, CONNS_MAX + 1, -1) < 0 && errno != EINTR)
			die("poll");
		if (p[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			for (int i = 0; fd >= 0 && i < CONNS_MAX; i++)
				if (conns[i].fd < 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					conns[i] = (struct sconn){ .fd = fd };
					fd = -1;
				}
			if (fd >= 0)
				close(fd);
		}
		for (int i = 0; i < CONNS_MAX; i++) {
			if (conns[i].fd < 0 || !p[i + 1].revents)
				continue;
			if (conns[i].mode == 'T')
				sconn_write(&conns[i]);
			else
				sconn_read(&conns[i]);
		}
	}
}

/* ---- the client ---- */

struct side {
	const char *name;
	unsigned port;        /* 0: sbx FORWARD to the service's port */
};

static const char *addr;
static unsigned src;

static int side_open(const struct side *s)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sbx_error err;
	int fd, one = 1;

	if (s->port == 0) {
		fd = sbx_forward_open(addr, src, 10000, &err);
		if (fd < 0) {
			fprintf(stderr, "fwdbench: %s\n", err.msg);
			exit(1);
		}
		return fd;
	}
	in.sin_port = htons((uint16_t)s->port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	for (int tries = 0; connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0; tries++) {
		if (tries == 100)
			die(s->name);
		usleep(10000);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static double tput_once(const struct side *s, uint64_t bytes)
{
	static char buf[CHUNK];
	uint8_t cmd[9] = { 'T' };
	uint64_t got = 0, t0 = bench_now_ns();
	int fd = side_open(s);
	ssize_t n;

	memcpy(cmd + 1, &bytes, 8);
	if (fd_write_all(fd, cmd, sizeof(cmd)) < 0)
		die("write");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (uint64_t)n;
	close(fd);
	if (got != bytes) {
		fprintf(stderr, "fwdbench: %s: got %llu of %llu bytes\n", s->name,
			(unsigned long long)got, (unsigned long long)bytes);
		exit(1);
	}
	return (double)bytes / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

static double rr_once(int fd)
{
	uint8_t msg[MSG] = { 1 };
	uint64_t t0 = bench_now_ns();

	if (fd_write_all(fd, msg, MSG) < 0 || fd_read_full(fd, msg, MSG) < 0)
		die("round trip");
	return (double)(bench_now_ns() - t0) / 1e3;
}

static double conn_once(const struct side *s)
{
	uint8_t msg[1 + MSG] = { 'R' };
	uint64_t t0 = bench_now_ns();
	int fd = side_open(s);

	if (fd_write_all(fd, msg, sizeof(msg)) < 0 || fd_read_full(fd, msg, MSG) < 0)
		die("round trip");
	close(fd);
	return (double)(bench_now_ns() - t0) / 1e3;
}

static void rows(const char *what, struct side *sides, int nsides, struct samples *v,
		 struct samples *ratio, const char *unit, bool rate)
{
	for (int i = 0; i < nsides; i++) {
		char range[96], r[96];

		if (rate)
			snprintf(range, sizeof(range), "%.0f–%.0f %s", samples_min(&v[i]),
				 samples_max(&v[i]), unit);
		else
			snprintf(range, sizeof(range), "p99 %.1f %s", samples_pct(&v[i], 99), unit);
		if (i == 0)
			snprintf(r, sizeof(r), "1");
		else
			snprintf(r, sizeof(r), "%.2f (%.2f–%.2f)", samples_pct(&ratio[i], 50),
				 samples_min(&ratio[i]), samples_max(&ratio[i]));
		printf("| %s | %s | %zu | %.*f %s | %s | %s |\n", what, sides[i].name, v[i].n,
		       rate ? 0 : 1, samples_pct(&v[i], 50), unit, range, r);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct side sides[SIDES_MAX] = { { "direct loopback TCP", 1 },
					 { "sbx FORWARD through the agent", 0 } };
	struct samples v[SIDES_MAX] = { 0 }, ratio[SIDES_MAX] = { 0 };
	int nsides = 2, first;
	char what[128];

	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "serve") == 0)
		return serve();
	if (argc == 2 && strcmp(argv[1], "freeport") == 0) {
		unsigned port;

		close(tcp_listen(&port));
		printf("%u\n", port);
		return 0;
	}
	if (argc < 5) {
		fprintf(stderr, "usage: see the comment at the top of bench/net/fwdbench.c\n");
		return 2;
	}
	addr = argv[2];
	src = (unsigned)atoi(argv[3]);
	sides[0].port = src;
	first = strcmp(argv[1], "tput") == 0 ? 6 : 5;
	for (int i = first; i < argc && nsides < SIDES_MAX; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq)
			return 2;
		*eq = '\0';
		sides[nsides++] = (struct side){ argv[i], (unsigned)atoi(eq + 1) };
	}

	if (strcmp(argv[1], "tput") == 0) {
		uint64_t bytes = strtoull(argv[4], NULL, 10);
		int runs = atoi(argv[5]);

		for (int k = 0; k < nsides; k++)
			tput_once(&sides[k], bytes / 8); /* warm up */
		for (int r = 0; r < runs; r++) {
			double x[SIDES_MAX];

			/* Alternate, starting each round with a different side. */
			for (int k = 0; k < nsides; k++) {
				int i = (k + r) % nsides;

				x[i] = tput_once(&sides[i], bytes);
				samples_add(&v[i], x[i]);
			}
			for (int i = 1; i < nsides; i++)
				samples_add(&ratio[i], x[i] / x[0]);
		}
		snprintf(what, sizeof(what), "download of %llu MiB, one connection",
			 (unsigned long long)(bytes >> 20));
		rows(what, sides, nsides, v, ratio, "MB/s", true);
	} else if (strcmp(argv[1], "rr") == 0) {
		int n = atoi(argv[4]), fds[SIDES_MAX];

		for (int i = 0; i < nsides; i++) {
			fds[i] = side_open(&sides[i]);
			if (fd_write_all(fds[i], "R", 1) < 0)
				die("write");
			for (int w = 0; w < WARMUP; w++)
				rr_once(fds[i]);
		}
		for (int r = 0; r < n; r++) {
			double x[SIDES_MAX];

			for (int k = 0; k < nsides; k++) {
				int i = (k + r) % nsides;

				x[i] = rr_once(fds[i]);
				samples_add(&v[i], x[i]);
			}
			for (int i = 1; i < nsides; i++)
				samples_add(&ratio[i], x[i] / x[0]);
		}
		rows("64-byte request/response, open connection", sides, nsides, v, ratio, "µs",
		     false);
	} else if (strcmp(argv[1], "conn") == 0) {
		int n = atoi(argv[4]);

		for (int w = 0; w < WARMUP / 4; w++)
			for (int i = 0; i < nsides; i++)
				conn_once(&sides[i]);
		for (int r = 0; r < n; r++) {
			double x[SIDES_MAX];

			for (int k = 0; k < nsides; k++) {
				int i = (k + r) % nsides;

				x[i] = conn_once(&sides[i]);
				samples_add(&v[i], x[i]);
			}
			for (int i = 1; i < nsides; i++)
				samples_add(&ratio[i], x[i] / x[0]);
		}
		rows("new connection, then one 64-byte request/response", sides, nsides, v, ratio,
		     "µs", false);
	} else {
		return 2;
	}
	return 0;
}
