/* The egress gateway of gateway/gateway.h: one epoll loop that reads each
 * guest request, checks it against the allow list, resolves names in a
 * helper process (getaddrinfo blocks; the loop must not), refuses special
 * and host-local addresses, connects without blocking and relays with
 * splice (lib/relay.c). Every decision is one line of the audit log. */
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gateway/tls.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/relay.h"
#include "lib/util.h"
#include "vsock/addr.h"

#define REQUEST_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define RESOLVE_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define CONNECT_TIMEOUT_MS 10000
#define RESOLVE_QUEUE 256
#define IFADDRS_REFRESH_NS (5 * NSEC_PER_SEC)
#define IFADDRS_MAX 256
#define CONN_FDS 6               /* guest, upstream, two splice pipes */
#define FD_RESERVE 32            /* listener, epoll, signalfd, pidfd, audit, resolver... */
#define ACCEPT_PAUSE_NS (100 * NSEC_PER_MSEC)
#define ACCEPT_WARN_NS (10 * NSEC_PER_SEC)

/* With secrets, a connection that is not intercepted waits up to
 * PEEK_WAIT for its first bytes, which are looked at (not taken) for
 * stand-ins sent where they are worthless, to audit them. */
#define PEEK_WAIT_NS (200 * NSEC_PER_MSEC)
#define PEEK_MAX 16384

enum gstate { G_REQUEST, G_RESOLVE, G_CONNECT, G_PEEK, G_RELAY };

struct gconn {
	struct watch gw, uw;          /* the guest's socket, the upstream socket */
	struct timer timer;
	enum gstate state;
	uint64_t id, t0, t_connected;
	struct allow_dest dest;
	const struct allow_rule *rule;
	char dest_text[ALLOW_NAME_MAX + 16];
	struct allow_addr addrs[GATEWAY_ADDRS_MAX];
	unsigned naddrs, next;
	int last_err;
	const char *last_why;         /* why the last address was skipped */
	int qslot;                    /* resolver queue slot, -1: none */
};

/* The resolver helper: requests and replies over a SOCK_SEQPACKET pair,
 * answered in order. */
struct rreq {
	uint32_t id;
	char name[ALLOW_NAME_MAX + 1];
};
struct rrep {
	uint32_t id;
	int32_t err;                  /* 0, or an EAI_* code */
	uint32_t n;
	struct { int32_t family; uint8_t a[16]; } addrs[GATEWAY_ADDRS_MAX];
};

static const struct gateway_opts *opt;
static struct watch w_listen, w_signal, w_pid, w_resolver;
static bool stopping;
static unsigned nconns, conn_max = GATEWAY_CONN_MAX;
static struct timer accept_timer;
static uint64_t accept_warned_at;
static unsigned accept_failed;
static uint64_t next_id;
static int audit_fd = -1;
static uint64_t audit_size;
static struct { uint32_t id; struct gconn *c; } rqueue[RESOLVE_QUEUE];
static unsigned rq_head, rq_len;
static uint32_t rq_next_id;
static pid_t resolver_pid;
static struct allow_addr ifaddrs_list[IFADDRS_MAX];
static unsigned nifaddrs;
static uint64_t ifaddrs_at;

/* ---- the audit log ---- */

static void audit_open(void)
{
	struct stat st;

	audit_fd = open(opt->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (audit_fd < 0) {
		log_warn(errno, "cannot open the audit log %s", opt->audit);
		return;
	}
	audit_size = fstat(audit_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The guest decides how many lines there are: keep two files at most. */
static void audit_rotate(void)
{
	char old[4096];

	snprintf(old, sizeof(old), "%s.1", opt->audit);
	fd_close(&audit_fd);
	if (rename(opt->audit, old) < 0)
		log_warn(errno, "cannot rotate the audit log %s", opt->audit);
	audit_open();
}

/* Appends s to b as a quoted logfmt value. */
static size_t put_quoted(char *b, size_t n, size_t at, const char *s)
{
	if (at < n)
		b[at] = '"';
	at++;
	for (; *s && at + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			at += (size_t)snprintf(b + at, n - at, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			at += (size_t)snprintf(b + at, n - at, "\\x%02x", c);
		else
			b[at++] = (char)c;
	}
	if (at < n)
		b[at] = '"';
	return at + 1;
}

/* One line per decision: time, connection, verdict, destination,
 * address, rule, bytes and duration (on "close"), reason. One write(2),
 * so that a reader never sees half a line. */
static void audit(struct gconn *c, const char *verdict, const struct allow_addr *addr,
		  const struct relay_stats *st, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void audit(struct gconn *c, const char *verdict, const struct allow_addr *addr,
		  const struct relay_stats *st, const char *fmt, ...)
{
	char line[2048], why[768], a[INET6_ADDRSTRLEN + 2] = "-", ts[40];
	struct timespec now;
	struct tm tm;
	size_t at;
	va_list ap;

	if (audit_fd < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (addr && addr->family)
		allow_addr_format(addr, a, sizeof(a));
	at = (size_t)snprintf(line, sizeof(line), "time=%s.%03ldZ conn=%llu verdict=%s dest=", ts,
			      now.tv_nsec / 1000000, (unsigned long long)c->id, verdict);
	at = put_quoted(line, sizeof(line), at, c->dest_text[0] ? c->dest_text : "-");
	at += (size_t)snprintf(line + at, sizeof(line) - MIN(at, sizeof(line)), " addr=%s rule=", a);
	at = put_quoted(line, sizeof(line), at, c->rule ? c->rule->text : "-");
	if (st && at < sizeof(line))
		at += (size_t)snprintf(line + at, sizeof(line) - at, " up=%llu down=%llu",
				       (unsigned long long)st->a_to_b, (unsigned long long)st->b_to_a);
	if (at < sizeof(line))
		at += (size_t)snprintf(line + at, sizeof(line) - at, " ms=%llu reason=",
				       (unsigned long long)((time_mono_ns() - c->t0) / NSEC_PER_MSEC));
	at = put_quoted(line, sizeof(line) - 1, at, why);
	at = MIN(at, sizeof(line) - 1);
	line[at++] = '\n';
	if (fd_write_all(audit_fd, line, at) < 0)
		log_warn(errno, "cannot write the audit log %s", opt->audit);
	audit_size += at;
	if (audit_size >= GATEWAY_AUDIT_ROTATE)
		audit_rotate();
}

/* ---- connections ---- */

static const char *errno_name(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
	case EPROTO: return "EPROTO";
	case ECONNRESET: return "ECONNRESET";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	default: return "EIO";
	}
}

static void conn_free(struct gconn *c)
{
	if (c->qslot >= 0)
		rqueue[c->qslot].c = NULL;
	timer_cancel(&c->timer);
	if (c->gw.fd >= 0) {
		loop_del(&c->gw);
		close(c->gw.fd);
	}
	if (c->uw.fd >= 0) {
		loop_del(&c->uw);
		close(c->uw.fd);
	}
	nconns--;
	loop_free_later(c);
}

/* Tells the guest why and closes. The message is one line. */
static void conn_refuse(struct gconn *c, int err, const char *verdict,
			const struct allow_addr *addr, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void conn_refuse(struct gconn *c, int err, const char *verdict,
			const struct allow_addr *addr, const char *fmt, ...)
{
	char why[600], line[700];
	va_list ap;
	int len;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	audit(c, verdict, addr, NULL, "%s", why);
	len = snprintf(line, sizeof(line), "ERR %s %s\n", errno_name(err), why);
	if (c->gw.fd >= 0)
		(void)!send(c->gw.fd, line, (size_t)MIN(len, (int)sizeof(line) - 1),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_free(c);
}

static void on_relay_done(void *arg, const struct relay_stats *st)
{
	struct gconn *c = arg;
	struct allow_addr a = c->addrs[c->next - 1];

	audit(c, "close", &a, st, "%s", st->err ? strerror(-st->err) : "ended");
	nconns--;
	loop_free_later(c);
}

static void try_next_address(struct gconn *c);
static void on_timeout(struct timer *t);

static void conn_relay(struct gconn *c, int gfd, int ufd)
{
	int r;

	c->state = G_RELAY;
	r = relay_start(&(struct relay_end){ gfd, gfd }, &(struct relay_end){ ufd, ufd },
			on_relay_done, c);
	if (r < 0) {
		audit(c, "close", &c->addrs[c->next - 1], NULL, "cannot relay: %s", strerror(-r));
		nconns--;
		loop_free_later(c);
	}
}

/* The first bytes of a connection that is not intercepted, as they are
 * in the socket: a stand-in there goes out unchanged (plain text, or a
 * host it does not belong to), which the audit says. */
static void conn_peeked(struct gconn *c)
{
	static char buf[PEEK_MAX];
	const struct allow_addr *addr = &c->addrs[c->next - 1];
	int gfd = c->gw.fd, ufd = c->uw.fd;
	ssize_t n = recv(gfd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

	timer_cancel(&c->timer);
	loop_del(&c->gw);
	c->gw.fd = c->uw.fd = -1;
	for (size_t i = 0; n > 0 && i < secrets_gateway->n; i++) {
		const struct secret *sec = &secrets_gateway->s[i];

		if (memmem(buf, (size_t)n, sec->standin, SECRET_STANDIN_LEN))
			audit(c, "secret", addr, NULL, "%s sent unchanged to %s: in plain text, or "
			      "to a host that is not one of its own, its stand-in stays a stand-in",
			      sec->name, c->dest_text);
	}
	conn_relay(c, gfd, ufd);
}

static void on_guest_peek(struct watch *w, uint32_t events)
{
	conn_peeked(container_of(w, struct gconn, gw));
}

static void conn_connected(struct gconn *c)
{
	char line[128], a[INET6_ADDRSTRLEN];
	struct allow_addr *addr = &c->addrs[c->next - 1];
	int one = 1, gfd = c->gw.fd, ufd = c->uw.fd, len, r;

	timer_cancel(&c->timer);
	loop_del(&c->uw);
	loop_del(&c->gw);
	c->gw.fd = c->uw.fd = -1;
	setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	allow_addr_format(addr, a, sizeof(a));
	len = snprintf(line, sizeof(line), addr->family == AF_INET6 ? "OK [%s]:%u\n" : "OK %s:%u\n",
		       a, c->dest.port);
	/* A new socket's send buffer takes 100 bytes at once. */
	if (send(gfd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len) {
		audit(c, "fail", addr, NULL, "the guest went away before the reply");
		close(gfd);
		close(ufd);
		nconns--;
		loop_free_later(c);
		return;
	}
	audit(c, "allow", addr, NULL, "connected in %llu ms",
	      (unsigned long long)((time_mono_ns() - c->t0) / NSEC_PER_MSEC));
	if (!c->dest.is_addr && c->dest.port == SECRETS_PORT &&
	    secrets_for_host(secrets_gateway, c->dest.name)) {
		r = tls_intercept(gfd, ufd, &(struct tls_conn){ c->id, c->t0, c->dest_text,
				  c->dest.name, a, audit_fd });
		close(gfd);
		close(ufd);
		if (r < 0)
			audit(c, "close", addr, NULL, "cannot intercept TLS for secrets: %s",
			      strerror(-r));
		nconns--;
		loop_free_later(c);
		return;
	}
	if (secrets_gateway && secrets_gateway->n) {
		c->state = G_PEEK;
		c->uw.fd = ufd;
		if (loop_add(&c->gw, gfd, EPOLLIN | EPOLLRDHUP, on_guest_peek) == 0) {
			timer_arm(&c->timer, PEEK_WAIT_NS, on_timeout);
			return;
		}
		c->gw.fd = c->uw.fd = -1;
	}
	conn_relay(c, gfd, ufd);
}

static void on_upstream(struct watch *w, uint32_t events)
{
	struct gconn *c = container_of(w, struct gconn, uw);
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0 && !(events & (EPOLLERR | EPOLLHUP))) {
		conn_connected(c);
		return;
	}
	c->last_err = err ? err : ECONNREFUSED;
	c->last_why = NULL;
	loop_del(&c->uw);
	fd_close(&c->uw.fd);
	try_next_address(c);
}

static void on_timeout(struct timer *t)
{
	struct gconn *c = container_of(t, struct gconn, timer);

	switch (c->state) {
	case G_REQUEST:
		conn_refuse(c, EPROTO, "deny", NULL, "no complete request within 10 s");
		return;
	case G_RESOLVE:
		conn_refuse(c, ETIMEDOUT, "fail", NULL, "resolving %s took more than 10 s",
			    c->dest.name);
		return;
	case G_CONNECT:
		c->last_err = ETIMEDOUT;
		c->last_why = NULL;
		loop_del(&c->uw);
		fd_close(&c->uw.fd);
		try_next_address(c);
		return;
	case G_PEEK:
		conn_peeked(c);
		return;
	case G_RELAY:
		return;
	}
}

static void refresh_ifaddrs(void)
{
	struct ifaddrs *ifa, *i;

	if (nifaddrs && time_mono_ns() - ifaddrs_at < IFADDRS_REFRESH_NS)
		return;
	if (getifaddrs(&ifa) < 0)
		return;
	nifaddrs = 0;
	for (i = ifa; i && nifaddrs < IFADDRS_MAX; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			allow_addr_set(&ifaddrs_list[nifaddrs++], AF_INET,
				       &((struct sockaddr_in *)i->ifa_addr)->sin_addr);
		else if (i->ifa_addr->sa_family == AF_INET6)
			allow_addr_set(&ifaddrs_list[nifaddrs++], AF_INET6,
				       &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr);
	}
	freeifaddrs(ifa);
	ifaddrs_at = time_mono_ns();
}

/* Why an address may not be used for this destination, or NULL. An
 * address rule naming it (and the port) is the only exception. */
static const char *address_forbidden(struct gconn *c, const struct allow_addr *a)
{
	const char *why = NULL;

	if (allow_match_addr(opt->rules, opt->nrules, a, c->dest.port))
		return NULL;
	if (allow_addr_special(a, &why))
		return why;
	refresh_ifaddrs();
	for (unsigned i = 0; i < nifaddrs; i++)
		if (allow_addr_eq(&ifaddrs_list[i], a))
			return "an address of this host";
	return NULL;
}

static void try_next_address(struct gconn *c)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd;

	c->state = G_CONNECT;
	while (c->next < c->naddrs) {
		struct allow_addr *a = &c->addrs[c->next++];
		const char *why = address_forbidden(c, a);

		if (why) {
			c->last_err = EACCES;
			c->last_why = why;
			continue;
		}
		if (a->family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			in->sin_family = AF_INET;
			in->sin_port = htons(c->dest.port);
			memcpy(&in->sin_addr, a->a, 4);
			len = sizeof(*in);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(c->dest.port);
			memcpy(&in6->sin6_addr, a->a, 16);
			len = sizeof(*in6);
		}
		fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->last_err = errno;
			c->last_why = NULL;
			continue;
		}
		c->uw.fd = fd;
		if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
			conn_connected(c);
			return;
		}
		if (errno != EINPROGRESS || loop_add(&c->uw, fd, EPOLLOUT, on_upstream) < 0) {
			c->last_err = errno == EINPROGRESS ? ENOMEM : errno;
			c->last_why = NULL;
			fd_close(&c->uw.fd);
			continue;
		}
		timer_arm(&c->timer, (uint64_t)(opt->connect_timeout_ms ? opt->connect_timeout_ms :
						CONNECT_TIMEOUT_MS) * NSEC_PER_MSEC, on_timeout);
		return;
	}
	/* Nothing left to try: say why the last one failed. */
	if (c->last_why) {
		char a[INET6_ADDRSTRLEN];

		allow_addr_format(&c->addrs[c->next - 1], a, sizeof(a));
		conn_refuse(c, EACCES, "deny", &c->addrs[c->next - 1], "%s resolves to %s, %s%s",
			    c->dest_text, a, c->last_why,
			    c->naddrs > 1 ? " (and no other address of it may be used)" : "");
		return;
	}
	conn_refuse(c, c->last_err, "fail", c->naddrs ? &c->addrs[c->next - 1] : NULL,
		    "cannot connect to %s: %s", c->dest_text,
		    c->last_err == ETIMEDOUT ? "timed out" : strerror(c->last_err));
}

/* ---- resolving ---- */

static void add_addr(struct gconn *c, const struct allow_addr *a)
{
	for (unsigned i = 0; i < c->naddrs; i++)
		if (allow_addr_eq(&c->addrs[i], a))
			return;
	if (c->naddrs < GATEWAY_ADDRS_MAX)
		c->addrs[c->naddrs++] = *a;
}

static void resolved(struct gconn *c, const struct rrep *rep)
{
	timer_cancel(&c->timer);
	if (rep->err) {
		conn_refuse(c, ENOENT, "fail", NULL, "cannot resolve %s: %s", c->dest.name,
			    gai_strerror(rep->err));
		return;
	}
	for (uint32_t i = 0; i < rep->n && i < GATEWAY_ADDRS_MAX; i++) {
		struct allow_addr a;

		if (rep->addrs[i].family != AF_INET && rep->addrs[i].family != AF_INET6)
			continue;
		allow_addr_set(&a, rep->addrs[i].family, rep->addrs[i].a);
		add_addr(c, &a);
	}
	if (c->naddrs == 0) {
		conn_refuse(c, ENOENT, "fail", NULL, "%s has no address", c->dest.name);
		return;
	}
	try_next_address(c);
}

static void on_resolver(struct watch *w, uint32_t events)
{
	struct rrep rep;
	ssize_t n;

	while ((n = recv(w->fd, &rep, sizeof(rep), MSG_DONTWAIT)) == (ssize_t)sizeof(rep)) {
		/* Replies come in order; a request whose connection gave up
		 * still holds its slot until its reply. */
		while (rq_len && rqueue[rq_head].id != rep.id) {
			rq_head = (rq_head + 1) % RESOLVE_QUEUE;
			rq_len--;
		}
		if (!rq_len)
			continue;
		struct gconn *c = rqueue[rq_head].c;

		rq_head = (rq_head + 1) % RESOLVE_QUEUE;
		rq_len--;
		if (c) {
			c->qslot = -1;
			resolved(c, &rep);
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (events & EPOLLHUP)) {
		log_error(n < 0 ? errno : 0, "the resolver process ended");
		loop_del(w);
		fd_close(&w->fd);
	}
}

static void start_resolve(struct gconn *c)
{
	struct rreq req = { 0 };
	int slot;

	c->state = G_RESOLVE;
	for (size_t i = 0; i < opt->nresolves; i++)
		if (strcmp(opt->resolves[i].name, c->dest.name) == 0)
			add_addr(c, &opt->resolves[i].addr);
	if (c->naddrs) {
		try_next_address(c);
		return;
	}
	if (w_resolver.fd < 0 || rq_len == RESOLVE_QUEUE) {
		conn_refuse(c, EAGAIN, "fail", NULL, "cannot resolve %s now: %s", c->dest.name,
			    w_resolver.fd < 0 ? "the resolver is gone" : "too many lookups waiting");
		return;
	}
	req.id = ++rq_next_id;
	str_copy(req.name, sizeof(req.name), c->dest.name);
	if (send(w_resolver.fd, &req, sizeof(req), MSG_DONTWAIT) != (ssize_t)sizeof(req)) {
		conn_refuse(c, EAGAIN, "fail", NULL, "cannot resolve %s now: %s", c->dest.name,
			    strerror(errno));
		return;
	}
	slot = (int)((rq_head + rq_len) % RESOLVE_QUEUE);
	rqueue[slot].id = req.id;
	rqueue[slot].c = c;
	rq_len++;
	c->qslot = slot;
	timer_arm(&c->timer, RESOLVE_TIMEOUT_NS, on_timeout);
}

/* The helper: getaddrinfo, one name at a time, until its socket closes. */
static _Noreturn void resolver_main(int fd)
{
	struct rreq req;
	struct rrep rep;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
		struct addrinfo *res = NULL, *ai;
		ssize_t n = recv(fd, &req, sizeof(req), 0);

		if (n <= 0)
			_exit(0);
		if (n != sizeof(req))
			continue;
		req.name[sizeof(req.name) - 1] = '\0';
		memset(&rep, 0, sizeof(rep));
		rep.id = req.id;
		rep.err = getaddrinfo(req.name, NULL, &hints, &res);
		for (ai = res; ai && rep.n < GATEWAY_ADDRS_MAX; ai = ai->ai_next) {
			rep.addrs[rep.n].family = ai->ai_family;
			if (ai->ai_family == AF_INET)
				memcpy(rep.addrs[rep.n++].a,
				       &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
			else if (ai->ai_family == AF_INET6)
				memcpy(rep.addrs[rep.n++].a,
				       &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		}
		if (res)
			freeaddrinfo(res);
		if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) < 0)
			_exit(0);
	}
}

static int resolver_start(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	resolver_pid = fork();
	if (resolver_pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (resolver_pid == 0) {
		close(sv[0]);
		resolver_main(sv[1]);
	}
	close(sv[1]);
	fd_set_nonblock(sv[0], true);
	return loop_add(&w_resolver, sv[0], EPOLLIN, on_resolver);
}

/* ---- requests ---- */

int gateway_parse_connect(char *line, struct allow_dest *d, char **host, char **port,
			  char *err, size_t n)
{
	char *end, *save = NULL;
	unsigned long p;

	*host = *port = NULL;
	if (strncmp(line, "CONNECT ", 8) != 0) {
		snprintf(err, n, "not a CONNECT request");
		return -EPROTO;
	}
	*host = strtok_r(line + 8, " ", &save);
	*port = strtok_r(NULL, " ", &save);
	if (!*host || !*port || strtok_r(NULL, " ", &save)) {
		snprintf(err, n, "expected CONNECT HOST PORT");
		return -EPROTO;
	}
	errno = 0;
	p = strtoul(*port, &end, 10);
	if (errno || *end || end == *port || p > 65535 || !isdigit((unsigned char)(*port)[0]))
		p = 0;
	return allow_parse_dest(*host, (uint32_t)p, d, err, n) < 0 ? -EINVAL : 0;
}

/* c->dest as the audit log shows it. */
static void format_dest(struct gconn *c)
{
	if (c->dest.is_addr) {
		char a[INET6_ADDRSTRLEN];

		allow_addr_format(&c->dest.addr, a, sizeof(a));
		snprintf(c->dest_text, sizeof(c->dest_text),
			 c->dest.addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, c->dest.port);
	} else {
		snprintf(c->dest_text, sizeof(c->dest_text), "%s:%u", c->dest.name, c->dest.port);
	}
}

/* The first rule that lets d through on some port (d's own is ignored). */
static const struct allow_rule *match_any_port(struct allow_dest d)
{
	for (size_t i = 0; i < opt->nrules; i++) {
		d.port = opt->rules[i].port ? opt->rules[i].port : 1;
		if (allow_match(&opt->rules[i], 1, &d))
			return &opt->rules[i];
	}
	return NULL;
}

/* Root in the guest can delete its refuse chain: a connection to an
 * address the list does not name then comes here as a CONNECT and is
 * refused with its audit line, and the proxy's reset to the workload
 * looks to the agent like its chain's, so it reports REFUSED as well.
 * One attempt must make one line: the gateway keeps its own refusals of
 * IPv4 addresses for REFUSED_WINDOW_NS (the proxy waits up to 2 s for a
 * client's first bytes before its reset, net/egress.c; the agent reports
 * at once), and a report that matches one is that attempt again: it
 * takes the refusal and writes nothing. A report without one is an
 * attempt of its own and has its line. */
#define REFUSED_RECENT 64
#define REFUSED_WINDOW_NS (10 * NSEC_PER_SEC)

static struct {
	struct allow_addr addr;
	uint16_t port;
	uint64_t at;                  /* 0: free or taken */
} refused_recent[REFUSED_RECENT];
static unsigned refused_next;

static void refusal_note(const struct allow_dest *d)
{
	refused_recent[refused_next].addr = d->addr;
	refused_recent[refused_next].port = d->port;
	refused_recent[refused_next].at = time_mono_ns();
	refused_next = (refused_next + 1) % REFUSED_RECENT;
}

/* Takes the gateway's own recent refusal of d, if there is one. */
static bool refusal_take(const struct allow_dest *d)
{
	uint64_t now = time_mono_ns();

	for (size_t i = 0; i < REFUSED_RECENT; i++)
		if (refused_recent[i].at && now - refused_recent[i].at < REFUSED_WINDOW_NS &&
		    refused_recent[i].port == d->port &&
		    memcmp(refused_recent[i].addr.a, d->addr.a, 4) == 0) {
			refused_recent[i].at = 0;
			return true;
		}
	return false;
}

/* "NXDOMAIN <name>": the guest's DNS stub refused a name itself (no
 * pattern can match it) and reports it for the audit log. Nothing is
 * connected; the guest reads no reply. A name the list can match is
 * logged as such: the report is the guest's word, never trusted. */
static void handle_nxdomain(struct gconn *c, char *name)
{
	const struct allow_rule *rule;
	struct allow_dest d;
	char err[512];

	if (allow_parse_dest(name, 1, &d, err, sizeof(err)) < 0 || d.is_addr) {
		conn_refuse(c, EPROTO, "deny", NULL, "expected NXDOMAIN NAME");
		return;
	}
	snprintf(c->dest_text, sizeof(c->dest_text), "%s", d.name);
	rule = match_any_port(d);
	if (rule)
		conn_refuse(c, EACCES, "deny", NULL, "the guest's DNS stub refused %s, which "
			    "the allow list can match (%s)", d.name, rule->text);
	else
		conn_refuse(c, EACCES, "deny", NULL, "%s does not resolve in the guest: no "
			    "allow pattern can match it (NXDOMAIN)", d.name);
}

/* "REFUSED <address> <port>": the guest refused a connection to an
 * address itself (a TCP reset to its SYN) and reports it, as
 * handle_nxdomain. */
static void handle_refused(struct gconn *c, char *line)
{
	char err[512], *host, *port;
	struct allow_dest d;

	memcpy(line, "CONNECT ", 8); /* "REFUSED " has the same length */
	if (gateway_parse_connect(line, &d, &host, &port, err, sizeof(err)) < 0 || !d.is_addr ||
	    d.addr.family != AF_INET) {
		conn_refuse(c, EPROTO, "deny", NULL, "expected REFUSED IPV4 PORT");
		return;
	}
	c->dest = d;
	format_dest(c);
	if (refusal_take(&d)) {
		conn_free(c); /* the guest reads no reply */
		return;
	}
	if (match_any_port(d))
		conn_refuse(c, EACCES, "deny", &d.addr, "the guest refused %s itself, though the "
			    "allow list names the address", c->dest_text);
	else
		conn_refuse(c, EACCES, "deny", &d.addr, "%s is not in the allow list: refused in "
			    "the guest before connecting (connection refused)",
			    c->dest_text);
}

/* "CONNECT <host> <port>"; the reports above. */
static void handle_request(struct gconn *c, char *line)
{
	char err[512], *host, *port;
	int r;

	if (strncmp(line, "NXDOMAIN ", 9) == 0) {
		handle_nxdomain(c, line + 9);
		return;
	}
	if (strncmp(line, "REFUSED ", 8) == 0) {
		handle_refused(c, line);
		return;
	}
	if ((r = gateway_parse_connect(line, &c->dest, &host, &port, err, sizeof(err))) == -EPROTO) {
		conn_refuse(c, EPROTO, "deny", NULL, "%s", err);
		return;
	}
	if (r < 0) {
		snprintf(c->dest_text, sizeof(c->dest_text), "%.*s:%.8s", 253, host, port);
		conn_refuse(c, EINVAL, "deny", NULL, "bad destination: %s", err);
		return;
	}
	format_dest(c);
	c->rule = allow_match(opt->rules, opt->nrules, &c->dest);
	if (!c->rule) {
		if (c->dest.is_addr && c->dest.addr.family == AF_INET)
			refusal_note(&c->dest);
		conn_refuse(c, EACCES, "deny", c->dest.is_addr ? &c->dest.addr : NULL,
			    "%s is not in the allow list", c->dest_text);
		return;
	}
	if (c->dest.is_addr) {
		add_addr(c, &c->dest.addr);
		try_next_address(c);
		return;
	}
	start_resolve(c);
}

static void on_guest(struct watch *w, uint32_t events)
{
	struct gconn *c = container_of(w, struct gconn, gw);
	char buf[GATEWAY_REQUEST_MAX + 1], *nl;
	ssize_t n;

	/* Peek, then take exactly the request line: what follows it is the
	 * stream's first bytes and stays in the socket for the relay. */
	n = recv(w->fd, buf, GATEWAY_REQUEST_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_refuse(c, EPROTO, "deny", NULL, "the guest closed before a complete request");
		return;
	}
	buf[n] = '\0';
	nl = memchr(buf, '\n', (size_t)n);
	if (memchr(buf, '\0', nl ? (size_t)(nl - buf) : (size_t)n)) {
		conn_refuse(c, EPROTO, "deny", NULL, "a NUL byte in the request");
		return;
	}
	if (!nl) {
		if (n == GATEWAY_REQUEST_MAX)
			conn_refuse(c, EPROTO, "deny", NULL, "a request is one line of at most %d "
				    "bytes", GATEWAY_REQUEST_MAX);
		else if (events & (EPOLLHUP | EPOLLRDHUP))
			conn_refuse(c, EPROTO, "deny", NULL, "the guest closed before a complete "
				    "request");
		return;
	}
	if (recv(w->fd, buf, (size_t)(nl - buf) + 1, MSG_DONTWAIT) != nl - buf + 1) {
		conn_refuse(c, EPROTO, "deny", NULL, "cannot read the request");
		return;
	}
	*nl = '\0';
	if (nl > buf && nl[-1] == '\r')
		nl[-1] = '\0';
	loop_set(w, 0);
	timer_cancel(&c->timer);
	handle_request(c, buf);
}

/* Out of descriptors (or memory): the listener stays readable, so stop
 * watching it for a moment instead of spinning, and say so at most once
 * every ACCEPT_WARN_NS with how many attempts failed meanwhile. */
static void on_accept_resume(struct timer *t)
{
	loop_set(&w_listen, EPOLLIN);
}

static void accept_pause(int err)
{
	uint64_t now = time_mono_ns();

	accept_failed++;
	if (!accept_warned_at || now - accept_warned_at >= ACCEPT_WARN_NS) {
		log_warn(err, "cannot accept a connection (%u failed attempts since the last "
			 "warning, %u connections open); pausing for 100 ms", accept_failed, nconns);
		accept_warned_at = now;
		accept_failed = 0;
	}
	loop_set(&w_listen, 0);
	timer_arm(&accept_timer, ACCEPT_PAUSE_NS, on_accept_resume);
}

static void on_accept(struct watch *w, uint32_t events)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct gconn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				accept_pause(errno);
			return;
		}
		c = nconns < conn_max ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			char msg[128];
			int len = snprintf(msg, sizeof(msg), "ERR EAGAIN too many connections through "
					   "the gateway (at most %u at once)\n", conn_max);

			(void)!send(fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		nconns++;
		c->id = ++next_id;
		c->t0 = time_mono_ns();
		c->qslot = -1;
		c->uw.fd = -1;
		c->state = G_REQUEST;
		if (loop_add(&c->gw, fd, EPOLLIN | EPOLLRDHUP, on_guest) < 0) {
			close(fd);
			c->gw.fd = -1;
			conn_free(c);
			continue;
		}
		timer_arm(&c->timer, REQUEST_TIMEOUT_NS, on_timeout);
	}
}

/* Each connection holds up to CONN_FDS descriptors: raise the limit to
 * what GATEWAY_CONN_MAX needs, and keep the connection cap below whatever
 * limit we end up with. */
static void conn_max_set(void)
{
	unsigned long want = (unsigned long)GATEWAY_CONN_MAX * CONN_FDS + FD_RESERVE;
	unsigned long have = fd_limit_raise(want);

	if (have >= want)
		return;
	conn_max = have > FD_RESERVE + CONN_FDS ? (unsigned)((have - FD_RESERVE) / CONN_FDS) : 1;
	log_warn(0, "%lu descriptors allowed (RLIMIT_NOFILE), %lu wanted: at most %u "
		 "connections at once", have, want, conn_max);
}

/* ---- the process ---- */

static void on_signal(struct watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			stopping = true;
		else
			for (pid_t pid; (pid = waitpid(-1, NULL, WNOHANG)) > 0;)
				tls_reaped(pid);
}

static void on_pid(struct watch *w, uint32_t events)
{
	stopping = true;
}

int gateway_parse_resolve(const char *s, struct gateway_resolve *r, char *err, size_t n)
{
	const char *eq = strchr(s, '=');
	struct allow_dest d;
	char name[ALLOW_NAME_MAX + 8];

	memset(r, 0, sizeof(*r));
	if (!eq || eq == s || (size_t)(eq - s) >= sizeof(name)) {
		snprintf(err, n, "--resolve %s: expected NAME=ADDRESS", s);
		return -EINVAL;
	}
	memcpy(name, s, (size_t)(eq - s));
	name[eq - s] = '\0';
	if (allow_parse_dest(name, 1, &d, err, n) < 0 || d.is_addr) {
		snprintf(err, n, "--resolve %s: '%s' is not a host name", s, name);
		return -EINVAL;
	}
	str_copy(r->name, sizeof(r->name), d.name);
	if (allow_parse_dest(eq + 1, 1, &d, err, n) < 0 || !d.is_addr) {
		snprintf(err, n, "--resolve %s: '%s' is not an IPv4 or IPv6 address", s, eq + 1);
		return -EINVAL;
	}
	r->addr = d.addr;
	return 0;
}

int gateway_run(const struct gateway_opts *o)
{
	struct addr a = { .kind = ADDR_UNIX };
	sigset_t mask;
	int fd, r;

	opt = o;
	signal(SIGPIPE, SIG_IGN);
	conn_max_set();
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = loop_init()) < 0) {
		log_error(r, "cannot create the event loop");
		return r;
	}
	audit_open();
	if (audit_fd < 0)
		return -EIO;
	w_resolver.fd = -1;
	if ((r = resolver_start()) < 0) {
		log_error(r, "cannot start the resolver process");
		return r;
	}
	if (str_copy(a.path, sizeof(a.path), o->listen) < 0) {
		log_error(ENAMETOOLONG, "socket path too long: %s", o->listen);
		return -ENAMETOOLONG;
	}
	fd = addr_listen(&a, 1024);
	if (fd < 0) {
		log_error(fd, "cannot listen on %s", o->listen);
		return fd;
	}
	fd_set_nonblock(fd, true);
	if ((r = loop_add(&w_listen, fd, EPOLLIN, on_accept)) < 0)
		return r;
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0 || loop_add(&w_signal, fd, EPOLLIN, on_signal) < 0) {
		log_error(errno, "cannot watch signals");
		return -errno;
	}
	if (o->watch_pid > 0) {
		fd = (int)syscall(SYS_pidfd_open, o->watch_pid, 0);
		if (fd < 0 || loop_add(&w_pid, fd, EPOLLIN, on_pid) < 0) {
			log_error(errno, "cannot watch process %d", (int)o->watch_pid);
			return -errno;
		}
	}
	log_info(0, "gateway: listening on %s, %zu allow rules, audit log %s", o->listen,
		 o->nrules, o->audit);
	if (o->ready_fd >= 0) {
		(void)!write(o->ready_fd, "", 1);
		close(o->ready_fd);
	}
	while (!stopping)
		loop_run_once(-1);
	unlink(o->listen);
	if (resolver_pid > 0)
		kill(resolver_pid, SIGKILL);
	return 0;
}

/* ---- starting one for a sandbox ---- */

int gateway_check(const char *const *allow, const char *const *resolve, char *canon, size_t n,
		  char *err, size_t errn)
{
	struct allow_rule r;
	struct gateway_resolve gr;
	size_t at = 0, count = 0;

	canon[0] = '\0';
	for (; allow && *allow; allow++) {
		if (++count > ALLOW_RULES_MAX) {
			snprintf(err, errn, "too many --allow-net patterns (at most %d)", ALLOW_RULES_MAX);
			return -E2BIG;
		}
		if (allow_parse(*allow, &r, err, errn) < 0)
			return -EINVAL;
		if (at + strlen(r.text) + 2 > n) {
			snprintf(err, errn, "--allow-net: the patterns add up to more than %zu bytes",
				 n - 1);
			return -E2BIG;
		}
		at += (size_t)snprintf(canon + at, n - at, "%s\n", r.text);
	}
	count = 0;
	for (; resolve && *resolve; resolve++) {
		if (++count > GATEWAY_RESOLVE_MAX) {
			snprintf(err, errn, "too many --resolve entries (at most %d)",
				 GATEWAY_RESOLVE_MAX);
			return -E2BIG;
		}
		if (gateway_parse_resolve(*resolve, &gr, err, errn) < 0)
			return -EINVAL;
	}
	return 0;
}

pid_t gateway_spawn(const char *dir, pid_t watch_pid, const char *const *allow,
		    const char *const *resolve, int secrets_fd, char *err, size_t errn)
{
	char self[4096], sbx[4096], sock[4096], audit_path[4096], logp[4096], pidarg[16];
	const char **argv;
	size_t n = 0, na = 0, nr = 0;
	ssize_t len;
	int p[2];
	pid_t pid;
	char byte;

	while (allow && allow[na])
		na++;
	while (resolve && resolve[nr])
		nr++;
	/* The sbx binary next to whatever links libsbx (build/ in a checkout). */
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[len > 0 ? len : 0] = '\0';
	if (strrchr(self, '/'))
		*strrchr(self, '/') = '\0';
	snprintf(sbx, sizeof(sbx), "%s/sbx", self);
	if (access(sbx, X_OK) < 0)
		snprintf(sbx, sizeof(sbx), "sbx");
	snprintf(sock, sizeof(sock), "%s/vsock.sock_%u", dir, GATEWAY_PORT);
	snprintf(audit_path, sizeof(audit_path), "%s/egress.log", dir);
	snprintf(logp, sizeof(logp), "%s/gateway.log", dir);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)watch_pid);
	argv = calloc(14 + 2 * (na + nr), sizeof(*argv));
	if (!argv || pipe2(p, O_CLOEXEC) < 0) {
		free(argv);
		snprintf(err, errn, "cannot start the egress gateway: %s", strerror(errno));
		return -ENOMEM;
	}
	argv[n++] = sbx;
	argv[n++] = "gateway";
	argv[n++] = "--listen";
	argv[n++] = sock;
	argv[n++] = "--audit";
	argv[n++] = audit_path;
	argv[n++] = "--watch-pid";
	argv[n++] = pidarg;
	argv[n++] = "--ready-fd";
	argv[n++] = "3";
	for (size_t i = 0; i < na; i++) {
		argv[n++] = "--allow";
		argv[n++] = allow[i];
	}
	for (size_t i = 0; i < nr; i++) {
		argv[n++] = "--resolve";
		argv[n++] = resolve[i];
	}
	if (secrets_fd >= 0) {
		argv[n++] = "--secrets-fd";
		argv[n++] = "4";
	}
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		setsid();
		/* Out of the way of the dup2s below (it may be 3 or 4). */
		if (secrets_fd >= 0 && secrets_fd < 5)
			secrets_fd = fcntl(secrets_fd, F_DUPFD, 5);
		if (null < 0 || out < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
		    dup2(p[1], 3) < 0 || (secrets_fd >= 0 && dup2(secrets_fd, 4) < 0))
			_exit(127);
		syscall(SYS_close_range, secrets_fd >= 0 ? 5 : 4, ~0U, 0);
		signals_reset_for_exec();
		execv(sbx, (char *const *)argv);
		execvp("sbx", (char *const *)argv);
		dprintf(2, "sbx: cannot execute %s: %s\n", sbx, strerror(errno));
		_exit(127);
	}
	free(argv);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(err, errn, "cannot start the egress gateway: %s", strerror(errno));
		return -errno;
	}
	{
		struct pollfd pf = { .fd = p[0], .events = POLLIN };

		if (poll(&pf, 1, 5000) <= 0 || read(p[0], &byte, 1) != 1) {
			close(p[0]);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			snprintf(err, errn, "the egress gateway did not start (see %s)", logp);
			return -EIO;
		}
	}
	close(p[0]);
	return pid;
}
