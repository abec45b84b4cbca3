/* FORWARD: connects to 127.0.0.1:PORT (then [::1]:PORT) inside the guest
 * without blocking the loop, answers OK, takes the connection's socket
 * and relays bytes both ways (lib/relay.c) until both directions end.
 * Nothing listening is an ERROR that says so, never a silent close. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/relay.h"
#include "lib/util.h"
#include "net/net.h"
#include "vsock/proto_net.h"

/* Each forward holds two sockets and, while bytes flow, two pipes. */
#define FORWARD_MAX 1024
#define CONNECT_TIMEOUT_NS (10 * NSEC_PER_SEC)

struct forward {
	struct conn *conn;
	struct watch w;       /* the socket being connected */
	struct timer timer;
	uint16_t port;
	int family;           /* index into targets[] being tried */
	bool hup;
};

/* Forwards being connected, and relaying (the agent has other relays). */
static unsigned nconnecting, nrelaying;

static int fwd_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void fwd_hangup(struct conn *c);
static void fwd_destroy(struct conn *c);

static const struct conn_ops forward_ops = {
	.name = "forward",
	.frame = fwd_frame,
	.hangup = fwd_hangup,
	.destroy = fwd_destroy,
};

static void fwd_close_socket(struct forward *fw)
{
	if (fw->w.fd < 0)
		return;
	loop_del(&fw->w);
	close(fw->w.fd);
	fw->w.fd = -1;
	timer_cancel(&fw->timer);
	nconnecting--;
}

static void relay_done(void *arg, const struct relay_stats *st)
{
	uintptr_t port = (uintptr_t)arg;

	nrelaying--;
	log_debug(st->err, "forward to port %u ended: %llu bytes in, %llu bytes out",
		  (unsigned)port, (unsigned long long)st->a_to_b, (unsigned long long)st->b_to_a);
}

/* The guest side is connected: reply, then become a byte stream. */
static void fwd_connected(struct forward *fw)
{
	struct proto_err e;
	struct conn *c = fw->conn;
	int tcp = fw->w.fd, one = 1, s, r;
	uint16_t port = fw->port;

	loop_del(&fw->w);
	timer_cancel(&fw->timer);
	fw->w.fd = -1;
	nconnecting--;
	/* A relay should not add Nagle's delay to what the client already
	 * segmented. */
	setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((r = proto_put(conn_txbuf(c), FT_OK, NULL, 0)) < 0) {
		close(tcp);
		proto_fail(&e, -r, "out of memory");
		conn_fail(c, &e);
		return;
	}
	s = conn_take_socket(c); /* c and fw are gone after this */
	if (s < 0) {
		close(tcp);
		if (s == -EPROTO) {
			proto_fail(&e, EPROTO, "FORWARD: the client sent bytes before the reply "
				   "(it must wait for OK)");
			conn_fail(c, &e);
		}
		return;
	}
	nrelaying++;
	r = relay_start(&(struct relay_end){ s, s }, &(struct relay_end){ tcp, tcp }, relay_done,
			(void *)(uintptr_t)port);
	if (r < 0) {
		/* relay_done was not called: the relay never started. */
		nrelaying--;
		log_warn(r, "unable to relay a connection to port %u", port);
	}
}

static const struct target {
	int family;
	const char *name;
} targets[] = { { AF_INET, "127.0.0.1" }, { AF_INET6, "::1" } };

static void fwd_try_next(struct forward *fw);

static bool refused(int err)
{
	/* ::1 does not exist when IPv6 is off: as good as refused. */
	return err == ECONNREFUSED || err == EAFNOSUPPORT || err == EADDRNOTAVAIL ||
	       err == ENETUNREACH;
}

static void fwd_failed(struct forward *fw, int err)
{
	struct proto_err e;

	if (refused(err)) {
		fw->family++;
		fwd_try_next(fw);
		return;
	}
	proto_fail(&e, err, "cannot connect to port %u in the sandbox (%s): %s", fw->port,
		   targets[fw->family].name, strerror(err));
	conn_fail(fw->conn, &e);
}

static void on_connect(struct watch *w, uint32_t events)
{
	struct forward *fw = container_of(w, struct forward, w);
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0) {
		fwd_connected(fw);
		return;
	}
	fwd_close_socket(fw);
	fwd_failed(fw, err);
}

static void on_timeout(struct timer *t)
{
	struct proto_err e;
	struct forward *fw = container_of(t, struct forward, timer);

	fwd_close_socket(fw);
	proto_fail(&e, ETIMEDOUT, "connecting to port %u in the sandbox timed out", fw->port);
	conn_fail(fw->conn, &e);
}

static void fwd_try_next(struct forward *fw)
{
	struct proto_err e;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, r;

	if (fw->family >= (int)ARRAY_SIZE(targets)) {
		proto_fail(&e, ECONNREFUSED, "nothing listens on port %u in the sandbox",
			   fw->port);
		conn_fail(fw->conn, &e);
		return;
	}
	if (targets[fw->family].family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(fw->port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(fw->port);
		in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	}
	fd = socket(targets[fw->family].family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fwd_failed(fw, errno);
		return;
	}
	nconnecting++;
	fw->w.fd = fd;
	r = connect(fd, (struct sockaddr *)&ss, len);
	if (r == 0) {
		fwd_connected(fw);
		return;
	}
	if (errno != EINPROGRESS) {
		int err = errno;

		fwd_close_socket(fw);
		fwd_failed(fw, err);
		return;
	}
	if ((r = loop_add(&fw->w, fd, EPOLLOUT, on_connect)) < 0) {
		fwd_close_socket(fw);
		proto_fail(&e, -r, "cannot wait for a connection to port %u", fw->port);
		conn_fail(fw->conn, &e);
		return;
	}
	timer_arm(&fw->timer, CONNECT_TIMEOUT_NS, on_timeout);
}

int forward_start(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct forward *fw;
	uint16_t port;

	if (proto_forward_decode(f, &port, e) < 0)
		return -e->code;
	if (c->rx_after > 0)
		return proto_fail(e, EPROTO, "FORWARD: the client sent bytes before the reply (it must "
				  "wait for OK)");
	if (nrelaying + nconnecting >= FORWARD_MAX)
		return proto_fail(e, EAGAIN, "too many forwarded connections (the agent relays at most %d "
				  "at once)", FORWARD_MAX);
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return proto_fail(e, ENOMEM, "out of memory");
	fw->conn = c;
	fw->port = port;
	fw->w.fd = -1;
	c->ops = &forward_ops;
	c->op = fw;
	/* Bytes from the client stay in the socket until the reply is
	 * out: they belong to the stream, not to the frame parser. */
	conn_pause_rx(c, true);
	fwd_try_next(fw);
	return 0;
}

static int fwd_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	return proto_fail(e, EPROTO, "unexpected %s frame during FORWARD", proto_type_name(f->type));
}

static void fwd_hangup(struct conn *c)
{
	struct forward *fw = c->op;

	fw->hup = true;
	fwd_close_socket(fw);
	conn_release(c);
}

static void fwd_destroy(struct conn *c)
{
	struct forward *fw = c->op;

	fwd_close_socket(fw);
	loop_free_later(fw);
	c->op = NULL;
}
