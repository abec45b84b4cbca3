/* vsock-tool: a small vsock peer for tests and debugging, shipped in the image
 * as /usr/bin/vsock-tool. Guest modes serve or connect AF_VSOCK streams; the
 * host modes speak Firecracker's hybrid vsock (CONNECT <port>) to sbx-vsockd. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define BUF_SIZE (256 * 1024)

static const char usage[] =
	"usage: vsock-tool MODE ARGS\n"
	"guest (AF_VSOCK):\n"
	"  listen PORT          echo every connection back (many at once)\n"
	"  exec PORT            per connection: read one line, run it with sh -c,\n"
	"                       stdio on the connection\n"
	"  accept PORT          accept one connection, relay it to stdin/stdout\n"
	"  sink PORT            accept one connection, discard it, report bytes/rate\n"
	"  source PORT BYTES    accept one connection, send BYTES bytes, close\n"
	"  connect CID PORT     connect, relay to stdin/stdout\n"
	"host (hybrid vsock: a Unix socket speaking CONNECT <port>):\n"
	"  hybrid PATH PORT     connect through PATH, relay to stdin/stdout\n"
	"  stress PATH PORT N BYTES  N concurrent connections to an echo server,\n"
	"                       BYTES each, check every byte comes back\n";

static void die(const char *what)
{
	fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int vsock_listen(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port,
				  .svm_cid = VMADDR_CID_ANY };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(fd, 1024) < 0)
		die("listen");
	return fd;
}

static int vsock_accept_one(unsigned port)
{
	int lfd = vsock_listen(port);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		die("accept");
	close(lfd);
	return fd;
}

/* Copies in both directions between (in, out) and sock until both sides
 * ended; stdin EOF half-closes the socket, socket EOF closes stdout. */
static int relay(int sock, int in, int out)
{
	static char buf[BUF_SIZE];
	int up = 1, down = 1;

	while (up || down) {
		struct pollfd p[2] = { { up ? in : -1, POLLIN, 0 },
				       { down ? sock : -1, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (up && p[0].revents) {
			n = read(in, buf, sizeof(buf));
			if (n <= 0 || write_all(sock, buf, (size_t)n) < 0) {
				shutdown(sock, SHUT_WR);
				up = 0;
			}
		}
		if (down && p[1].revents) {
			n = read(sock, buf, sizeof(buf));
			if (n <= 0 || write_all(out, buf, (size_t)n) < 0) {
				if (n < 0)
					perror("vsock-tool: read");
				close(out);
				down = 0;
				/* the peer is gone: nothing more to send */
				if (n < 0)
					up = 0;
			}
		}
	}
	return 0;
}

struct echo_conn {
	int fd;
	size_t len, off;
	int eof;
	char buf[65536];
};

/* An epoll echo server: one process, so a thousand connections cost a
 * thousand small buffers and not a thousand processes under TCG. */
static int mode_listen(unsigned port)
{
	int lfd = vsock_listen(port), ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[64];

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll");
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct echo_conn *c = evs[i].data.ptr;
			ssize_t r;

			if (!c) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

				if (fd < 0)
					continue;
				c = calloc(1, sizeof(*c));
				if (!c) {
					close(fd);
					continue;
				}
				c->fd = fd;
				ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			}
			/* edge-triggered: loop until the socket would block */
			for (;;) {
				if (c->off < c->len) {
					r = write(c->fd, c->buf + c->off, c->len - c->off);
					if (r < 0 && errno == EAGAIN)
						break;
					if (r < 0)
						goto close_conn;
					c->off += (size_t)r;
					continue;
				}
				c->off = c->len = 0;
				if (c->eof) {
					shutdown(c->fd, SHUT_WR);
					goto close_conn;
				}
				r = read(c->fd, c->buf, sizeof(c->buf));
				if (r < 0 && errno == EAGAIN)
					break;
				if (r < 0)
					goto close_conn;
				if (r == 0)
					c->eof = 1;
				c->len = (size_t)r;
			}
			continue;
close_conn:
			close(c->fd);
			free(c);
		}
	}
	return 0;
}

static int mode_exec(unsigned port)
{
	int lfd = vsock_listen(port);

	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		char line[4096];
		size_t n = 0;

		if (fd < 0)
			continue;
		if (fork() != 0) {
			close(fd);
			continue;
		}
		/* byte by byte: what follows the line is the command's stdin */
		while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
			n++;
		line[n] = '\0';
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		signal(SIGCHLD, SIG_DFL);
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
		_exit(127);
	}
	return 0;
}

static int mode_sink(unsigned port)
{
	static char buf[BUF_SIZE];
	int fd = vsock_accept_one(port);
	uint64_t total = 0;
	double t0 = now(), dt;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		total += n > 0 ? (uint64_t)n : 0;
	if (n < 0)
		die("read");
	dt = now() - t0;
	fprintf(stderr, "sink: %llu bytes in %.3f s: %.1f MB/s\n",
		(unsigned long long)total, dt, dt > 0 ? (double)total / dt / 1e6 : 0);
	return 0;
}

static int mode_source(unsigned port, uint64_t bytes)
{
	static char buf[BUF_SIZE];
	int fd = vsock_accept_one(port);
	uint64_t left = bytes;
	double t0 = now(), dt;

	memset(buf, 'x', sizeof(buf));
	while (left) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		if (write_all(fd, buf, n) < 0)
			die("write");
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	/* wait for the peer to finish reading, so the rate is end to end */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	dt = now() - t0;
	fprintf(stderr, "source: %llu bytes in %.3f s: %.1f MB/s\n",
		(unsigned long long)bytes, dt, dt > 0 ? (double)bytes / dt / 1e6 : 0);
	return 0;
}

static int mode_connect(unsigned cid, unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return relay(fd, 0, 1);
}

/* Connects to PATH and does the hybrid handshake: returns the stream, or -1
 * with a message when sbx-vsockd closes before "OK" (nothing listens). */
static int hybrid_connect(const char *path, unsigned port, int quiet)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[64];
	size_t n = 0;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(path);
	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (write_all(fd, line, strlen(line)) < 0)
		die("write");
	while (n < sizeof(line) - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r <= 0)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		if (!quiet)
			fprintf(stderr, "vsock-tool: connection to port %u refused\n", port);
		close(fd);
		return -1;
	}
	return fd;
}

struct stress_conn {
	int fd;
	uint64_t sent, got;
	unsigned id;
	int wdone;
};

/* Pattern byte i of connection id: every connection's stream differs, so a
 * mixed-up or reordered byte shows. */
static unsigned char stress_byte(unsigned id, uint64_t i)
{
	return (unsigned char)((i * 131 + id * 7 + (i >> 12)) & 0xff);
}

static int mode_stress(const char *path, unsigned port, unsigned nconn, uint64_t bytes)
{
	struct stress_conn *c = calloc(nconn, sizeof(*c));
	struct pollfd *p = calloc(nconn, sizeof(*p));
	static unsigned char buf[65536];
	unsigned done = 0, bad = 0;
	double t0 = now();

	if (!c || !p)
		die("calloc");
	for (unsigned i = 0; i < nconn; i++) {
		c[i].id = i;
		c[i].fd = hybrid_connect(path, port, 0);
		if (c[i].fd < 0)
			return 1;
		fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
	}
	while (done < nconn) {
		for (unsigned i = 0; i < nconn; i++) {
			p[i].fd = c[i].fd;
			p[i].events = (c[i].fd >= 0 ? POLLIN : 0) |
				      (c[i].fd >= 0 && !c[i].wdone ? POLLOUT : 0);
		}
		if (poll(p, nconn, 30000) <= 0) {
			fprintf(stderr, "vsock-tool: stress: stalled, %u of %u done\n", done, nconn);
			return 1;
		}
		for (unsigned i = 0; i < nconn; i++) {
			struct stress_conn *s = &c[i];
			ssize_t n;

			if (s->fd < 0 || !p[i].revents)
				continue;
			if (!s->wdone && (p[i].revents & POLLOUT)) {
				size_t len = bytes - s->sent < sizeof(buf) ? (size_t)(bytes - s->sent)
									   : sizeof(buf);
				for (size_t k = 0; k < len; k++)
					buf[k] = stress_byte(s->id, s->sent + k);
				n = len ? write(s->fd, buf, len) : 0;
				if (n > 0)
					s->sent += (uint64_t)n;
				if (s->sent == bytes) {
					shutdown(s->fd, SHUT_WR);
					s->wdone = 1;
				}
			}
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				n = read(s->fd, buf, sizeof(buf));
				if (n < 0 && errno == EAGAIN)
					continue;
				for (ssize_t k = 0; k < n; k++)
					if (buf[k] != stress_byte(s->id, s->got + (uint64_t)k)) {
						bad++;
						break;
					}
				if (n > 0) {
					s->got += (uint64_t)n;
					continue;
				}
				if (s->got != bytes)
					bad++;
				close(s->fd);
				s->fd = -1;
				done++;
			}
		}
	}
	fprintf(stderr, "stress: %u connections x %llu bytes in %.2f s, %u bad\n", nconn,
		(unsigned long long)bytes, now() - t0, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(m, "listen") && argc == 3)
		return mode_listen((unsigned)atoi(argv[2]));
	if (!strcmp(m, "exec") && argc == 3)
		return mode_exec((unsigned)atoi(argv[2]));
	if (!strcmp(m, "accept") && argc == 3)
		return relay(vsock_accept_one((unsigned)atoi(argv[2])), 0, 1) ? 1 : 0;
	if (!strcmp(m, "sink") && argc == 3)
		return mode_sink((unsigned)atoi(argv[2]));
	if (!strcmp(m, "source") && argc == 4)
		return mode_source((unsigned)atoi(argv[2]), strtoull(argv[3], NULL, 10));
	if (!strcmp(m, "connect") && argc == 4)
		return mode_connect((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3])) ? 1 : 0;
	if (!strcmp(m, "hybrid") && argc == 4) {
		int fd = hybrid_connect(argv[2], (unsigned)atoi(argv[3]), 0);

		return fd < 0 || relay(fd, 0, 1) ? 1 : 0;
	}
	if (!strcmp(m, "stress") && argc == 6)
		return mode_stress(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
				   strtoull(argv[5], NULL, 10));
	fputs(usage, stderr);
	return 2;
}
