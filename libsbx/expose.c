/* libsbx: exposing a guest port on the host. One listening socket; every
 * accepted connection gets its own FORWARD connection (dialed without
 * blocking) and a relay (lib/relay.c), all in one event loop. The
 * exposure is recorded in the sandbox's state directory while it runs
 * (`expose-<host port>`, key = value lines) so that `sbx info` can list it
 * and `sbx kill` can stop it; it also stops by itself when the sandbox's
 * QEMU ends (a pidfd in the loop). */
#include "libsbx/sbx_net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/relay.h"
#include "lib/util.h"

#define EXPOSE_MAX 1024                   /* connections at once */
#define DIAL_TIMEOUT_NS (30 * NSEC_PER_SEC)
#define PID_POLL_NS (1 * NSEC_PER_SEC)    /* without pidfd_open */
#define STOP_WAIT_MS 1000
#define RECORD_PREFIX "expose-"

struct sbx_expose {
	char addr[PATH_MAX + 32];
	char state_dir[PATH_MAX];
	char kind[8];
	unsigned guest_port;
	pid_t watch_pid;
	bool detached;
	int lfd, sfd, pidfd;
	struct watch lw, sw, pw;
	struct timer pid_timer;
	char host[64];
	unsigned port;
	char url[128];
	char record[PATH_MAX + 32];
	unsigned active;          /* connections being dialed or relayed */
	bool paused;              /* not accepting: at EXPOSE_MAX */
	bool stopping;
};

/* One accepted connection while its FORWARD is dialed. */
struct pending {
	struct sbx_expose *x;
	struct sbx_dial *d;
	int client;
	struct watch w;
	struct timer t;
};

/* Field 22 of /proc/PID/stat: with the pid, it names one process even
 * after pids wrap around. 0 when there is no such process. */
static unsigned long long proc_start(pid_t pid)
{
	char path[64], text[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	p = strrchr(text, ')');
	if (!p || p[1] == '\0' || p[2] == 'Z')
		return 0;
	/* state is field 3; skip to field 22 */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		start = strtoull(p, NULL, 10);
	return start;
}

/* ---- listening ---- */

int sbx_expose_listen(const struct sbx_expose_opts *o, struct sbx_expose **out,
		      struct sbx_error *err)
{
	const char *bind_to = o->bind && *o->bind ? o->bind : "127.0.0.1";
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct sbx_expose *x;
	char host[64];
	int one = 1, r;

	if (o->guest_port < 1 || o->guest_port > 65535)
		return sbx_fail(err, EINVAL, "invalid port %u: a port is a number from 1 to 65535",
			    o->guest_port);
	if (o->host_port > 65535)
		return sbx_fail(err, EINVAL, "invalid host port %u: a port is a number from 0 to "
			    "65535", o->host_port);
	/* "::1" and "[::1]" both name IPv6 loopback. */
	str_copy(host, sizeof(host), bind_to[0] == '[' ? bind_to + 1 : bind_to);
	if (bind_to[0] == '[' && host[strlen(host) - 1] == ']')
		host[strlen(host) - 1] = '\0';
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)o->host_port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)o->host_port);
		len = sizeof(struct sockaddr_in6);
	} else {
		return sbx_fail(err, EINVAL, "--bind %s: not an IPv4 or IPv6 address", bind_to);
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return sbx_fail(err, ENOMEM, "out of memory");
	x->sfd = x->pidfd = -1;
	str_copy(x->addr, sizeof(x->addr), o->addr);
	str_copy(x->state_dir, sizeof(x->state_dir), o->state_dir ? o->state_dir : "");
	str_copy(x->kind, sizeof(x->kind), o->kind ? o->kind : "http");
	str_copy(x->host, sizeof(x->host), host);
	x->guest_port = o->guest_port;
	x->watch_pid = o->watch_pid;
	x->detached = o->detached;
	x->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->lfd < 0) {
		r = sbx_fail(err, errno, "cannot create a socket: %s", strerror(errno));
		goto out_free;
	}
	setsockopt(x->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(x->lfd, (struct sockaddr *)&ss, len) < 0 || listen(x->lfd, 512) < 0) {
		r = sbx_fail(err, errno, "cannot listen on %s port %u: %s", host, o->host_port,
			 strerror(errno));
		goto out_close;
	}
	len = sizeof(ss);
	getsockname(x->lfd, (struct sockaddr *)&ss, &len);
	x->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
			((struct sockaddr_in6 *)&ss)->sin6_port);
	if (strcmp(x->kind, "ssh") == 0)
		snprintf(x->url, sizeof(x->url), "ssh://%s%s%s:%u", ss.ss_family == AF_INET6 ? "[" : "",
			 host, ss.ss_family == AF_INET6 ? "]" : "", x->port);
	else
		snprintf(x->url, sizeof(x->url), "http://%s%s%s:%u/",
			 ss.ss_family == AF_INET6 ? "[" : "", host,
			 ss.ss_family == AF_INET6 ? "]" : "", x->port);
	*out = x;
	return 0;
out_close:
	close(x->lfd);
out_free:
	free(x);
	return r;
}

const char *sbx_expose_url(const struct sbx_expose *x) { return x->url; }
unsigned sbx_expose_port(const struct sbx_expose *x) { return x->port; }
const char *sbx_expose_host(const struct sbx_expose *x) { return x->host; }

void sbx_expose_free(struct sbx_expose *x)
{
	if (!x)
		return;
	if (x->lfd >= 0)
		close(x->lfd);
	free(x);
}

/* ---- the record ---- */

static int record_write(struct sbx_expose *x)
{
	char tmp[PATH_MAX + 48], num[32];
	FILE *f;

	if (!x->state_dir[0])
		return 0;
	snprintf(x->record, sizeof(x->record), "%s/" RECORD_PREFIX "%u", x->state_dir, x->port);
	snprintf(tmp, sizeof(tmp), "%s.new", x->record);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	snprintf(num, sizeof(num), "%d", (int)getpid());
	kv_write(f, "pid", num);
	snprintf(num, sizeof(num), "%llu", proc_start(getpid()));
	kv_write(f, "start", num);
	snprintf(num, sizeof(num), "%u", x->guest_port);
	kv_write(f, "guest_port", num);
	kv_write(f, "host", x->host);
	snprintf(num, sizeof(num), "%u", x->port);
	kv_write(f, "host_port", num);
	kv_write(f, "url", x->url);
	kv_write(f, "kind", x->kind);
	kv_write(f, "detached", x->detached ? "yes" : "no");
	if (fclose(f) != 0 || rename(tmp, x->record) < 0) {
		unlink(tmp);
		x->record[0] = '\0';
		return -errno;
	}
	return 0;
}

struct record {
	struct sbx_exposure e;
	unsigned long long start;
};

static int record_set(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	struct record *r = ctx;
	uint64_t v;

	if (strcmp(key, "pid") == 0 && str_to_u64(value, INT32_MAX, &v) == 0)
		r->e.pid = (pid_t)v;
	else if (strcmp(key, "start") == 0 && str_to_u64(value, UINT64_MAX, &v) == 0)
		r->start = v;
	else if (strcmp(key, "guest_port") == 0 && str_to_u64(value, 65535, &v) == 0)
		r->e.guest_port = (unsigned)v;
	else if (strcmp(key, "host_port") == 0 && str_to_u64(value, 65535, &v) == 0)
		r->e.host_port = (unsigned)v;
	else if (strcmp(key, "host") == 0)
		str_copy(r->e.host, sizeof(r->e.host), value);
	else if (strcmp(key, "url") == 0)
		str_copy(r->e.url, sizeof(r->e.url), value);
	else if (strcmp(key, "detached") == 0)
		r->e.detached = strcmp(value, "yes") == 0;
	return 0; /* unknown keys: newer sbx */
}

static bool record_name(const char *name)
{
	size_t n = strlen(RECORD_PREFIX);

	if (strncmp(name, RECORD_PREFIX, n) != 0 || !name[n])
		return false;
	for (const char *p = name + n; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static bool record_read(const char *path, struct record *r)
{
	char text[4096], err[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	log_set_level(LOG_ERROR);
	kv_parse_text(text, (size_t)n, path, record_set, r, err, sizeof(err));
	log_set_level(LOG_INFO);
	return r->e.pid > 0;
}

static bool record_alive(const struct record *r)
{
	return r->e.pid > 0 && proc_start(r->e.pid) == r->start;
}

/* Calls fn for each live record of dir; removes dead ones. */
static int records_each(const char *dir, void (*fn)(void *arg, const char *path,
						    const struct record *r), void *arg)
{
	struct dirent *d;
	DIR *dp = opendir(dir);
	int n = 0;

	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while ((d = readdir(dp))) {
		char path[PATH_MAX + 300];
		struct record r;

		if (!record_name(d->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (!record_read(path, &r) || !record_alive(&r)) {
			unlink(path);
			continue;
		}
		fn(arg, path, &r);
		n++;
	}
	closedir(dp);
	return n;
}

struct list_ctx {
	void (*fn)(void *arg, const struct sbx_exposure *e);
	void *arg;
};

static void list_one(void *arg, const char *path, const struct record *r)
{
	struct list_ctx *lc = arg;

	lc->fn(lc->arg, &r->e);
}

int sbx_expose_list(const char *state_dir, void (*fn)(void *arg, const struct sbx_exposure *e),
		    void *arg)
{
	struct list_ctx lc = { fn, arg };

	return records_each(state_dir, list_one, &lc);
}

static void stop_one(void *arg, const char *path, const struct record *r)
{
	int waited;

	kill(r->e.pid, SIGTERM);
	for (waited = 0; waited < STOP_WAIT_MS && record_alive(r); waited += 10) {
		waitpid(r->e.pid, NULL, WNOHANG); /* ours, when sbx itself started it */
		usleep(10000);
	}
	if (record_alive(r))
		kill(r->e.pid, SIGKILL);
	unlink(path);
}

int sbx_expose_stop_all(const char *state_dir)
{
	return records_each(state_dir, stop_one, NULL);
}

/* ---- serving ---- */

static void stop(struct sbx_expose *x)
{
	x->stopping = true;
}

static void accept_resume(struct sbx_expose *x)
{
	if (x->paused && x->active < EXPOSE_MAX && !x->stopping) {
		x->paused = false;
		loop_set(&x->lw, EPOLLIN);
	}
}

static void relay_done(void *arg, const struct relay_stats *st)
{
	struct sbx_expose *x = arg;

	x->active--;
	accept_resume(x);
}

static void pending_free(struct pending *p)
{
	loop_del(&p->w);
	timer_cancel(&p->t);
	sbx_dial_free(p->d);
	if (p->client >= 0)
		close(p->client);
	p->x->active--;
	accept_resume(p->x);
	loop_free_later(p);
}

/* Nothing listens on the port in the sandbox: an HTTP client (its
 * request, already here, starts with a method) gets a 502 that says so;
 * any other client is closed, as before (issue 18, item 15). */
static void answer_refused(int client, unsigned port)
{
	static const char *const methods[] = { "GET ", "HEAD ", "POST ", "PUT ", "DELETE ",
					       "OPTIONS ", "PATCH ", "TRACE " };
	char head[8], body[128], reply[512];
	ssize_t n = recv(client, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
	int blen, rlen;

	for (size_t i = 0; n > 0 && i < ARRAY_SIZE(methods); i++) {
		size_t len = strlen(methods[i]);

		if ((size_t)n < len || memcmp(head, methods[i], len) != 0)
			continue;
		blen = snprintf(body, sizeof(body), "nothing listens on port %u in the sandbox\n",
				port);
		rlen = snprintf(reply, sizeof(reply), "HTTP/1.1 502 Bad Gateway\r\n"
				"Content-Type: text/plain\r\nContent-Length: %d\r\n"
				"Connection: close\r\n\r\n%s", blen, body);
		(void)!send(client, reply, (size_t)rlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		shutdown(client, SHUT_WR);
		return;
	}
}

static void on_dial(struct watch *w, uint32_t events)
{
	struct pending *p = container_of(w, struct pending, w);
	struct sbx_expose *x = p->x;
	struct sbx_error err;
	int r = sbx_dial_step(p->d, &err), fd;

	if (r == 0) {
		loop_set(&p->w, sbx_dial_events(p->d));
		return;
	}
	if (r < 0) {
		log_warn(0, "port %u: %s", x->guest_port, err.msg);
		if (err.code == ECONNREFUSED)
			answer_refused(p->client, x->guest_port);
		pending_free(p);
		return;
	}
	loop_del(&p->w);
	timer_cancel(&p->t);
	fd = sbx_dial_take(p->d);
	p->d = NULL;
	/* The relay takes over this connection's slot in `active`. */
	x->active++;
	r = relay_start(&(struct relay_end){ p->client, p->client }, &(struct relay_end){ fd, fd },
			relay_done, x);
	p->client = -1;
	if (r < 0) {
		log_warn(r, "port %u: cannot relay a connection", x->guest_port);
		x->active--;
	}
	pending_free(p);
}

static void on_dial_timeout(struct timer *t)
{
	struct pending *p = container_of(t, struct pending, t);

	log_warn(0, "port %u: no answer from the sandbox within %llu s", p->x->guest_port,
		 (unsigned long long)(DIAL_TIMEOUT_NS / NSEC_PER_SEC));
	pending_free(p);
}

static void start_one(struct sbx_expose *x, int client)
{
	struct sbx_error err;
	struct pending *p = calloc(1, sizeof(*p));
	int one = 1, r;

	setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!p) {
		close(client);
		return;
	}
	p->x = x;
	p->client = client;
	x->active++;
	if (sbx_dial_start(x->addr, x->guest_port, &p->d, &err) < 0) {
		log_warn(0, "port %u: %s", x->guest_port, err.msg);
		pending_free(p);
		return;
	}
	if ((r = loop_add(&p->w, sbx_dial_fd(p->d), sbx_dial_events(p->d), on_dial)) < 0) {
		log_warn(r, "port %u: cannot wait for the sandbox", x->guest_port);
		pending_free(p);
		return;
	}
	timer_arm(&p->t, DIAL_TIMEOUT_NS, on_dial_timeout);
}

static void on_accept(struct watch *w, uint32_t events)
{
	struct sbx_expose *x = container_of(w, struct sbx_expose, lw);

	for (int i = 0; i < 64 && x->active < EXPOSE_MAX; i++) {
		int fd = accept4(x->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn(errno, "cannot accept a connection");
			break;
		}
		start_one(x, fd);
	}
	if (x->active >= EXPOSE_MAX && !x->paused) {
		/* Back-pressure: connections wait in the listen backlog. */
		x->paused = true;
		loop_set(&x->lw, 0);
	}
}

static void on_signal(struct watch *w, uint32_t events)
{
	struct sbx_expose *x = container_of(w, struct sbx_expose, sw);
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof(si)) == sizeof(si))
		stop(x);
}

static void on_pid_exit(struct watch *w, uint32_t events)
{
	struct sbx_expose *x = container_of(w, struct sbx_expose, pw);

	log_info(0, "the sandbox has ended; no longer exposing port %u", x->guest_port);
	stop(x);
}

static void on_pid_timer(struct timer *t)
{
	struct sbx_expose *x = container_of(t, struct sbx_expose, pid_timer);

	if (kill(x->watch_pid, 0) < 0 && errno == ESRCH) {
		log_info(0, "the sandbox has ended; no longer exposing port %u", x->guest_port);
		stop(x);
		return;
	}
	timer_arm(t, PID_POLL_NS, on_pid_timer);
}

int sbx_expose_serve(struct sbx_expose *x, int ready_fd, struct sbx_error *err)
{
	sigset_t mask;
	int r;

	signal(SIGPIPE, SIG_IGN);
	if ((r = loop_init()) < 0)
		return sbx_fail(err, r, "cannot create an event loop");
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	x->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (x->sfd < 0 || (r = loop_add(&x->sw, x->sfd, EPOLLIN, on_signal)) < 0)
		return sbx_fail(err, errno, "cannot watch signals");
	if (x->watch_pid > 0) {
		x->pidfd = (int)syscall(SYS_pidfd_open, x->watch_pid, 0);
		if (x->pidfd < 0 && errno == ESRCH)
			return sbx_fail(err, ESRCH, "the sandbox is no longer running");
		if (x->pidfd >= 0) {
			fd_set_cloexec(x->pidfd, true);
			loop_add(&x->pw, x->pidfd, EPOLLIN, on_pid_exit);
		} else {
			timer_arm(&x->pid_timer, PID_POLL_NS, on_pid_timer);
		}
	}
	if ((r = loop_add(&x->lw, x->lfd, EPOLLIN, on_accept)) < 0)
		return sbx_fail(err, r, "cannot watch the listening socket");
	if ((r = record_write(x)) < 0)
		log_warn(r, "cannot record the exposure in %s", x->state_dir);
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "1", 1);
		close(ready_fd);
	}
	while (!x->stopping)
		if ((r = loop_run_once(-1)) < 0) {
			sbx_fail(err, r, "event loop");
			break;
		}
	loop_del(&x->lw);
	close(x->lfd);
	x->lfd = -1;
	if (x->record[0])
		unlink(x->record);
	if (x->pidfd >= 0)
		close(x->pidfd);
	close(x->sfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	return r < 0 ? r : 0;
}
