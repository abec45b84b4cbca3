/* Client connections: frame reassembly, output queue, hello, hand-off to
 * operations. See conn.h for the two lifetimes of a connection. */
#include "conn/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/random.h>

#include "conn/agent.h"
#include "lib/log.h"
#include "lib/util.h"

#define RX_CHUNK (64 * 1024)
/* A body read into tx per step when it cannot be spliced; such a
 * connection keeps the tx buffer that takes (up to 2 chunks) between
 * frames rather than reallocate it per frame. */
#define BODY_CHUNK (256 * 1024)
#define TX_MAX (2 * (PROTO_HDR_LEN + PROTO_FRAME_MAX))
#define HANDSHAKE_NS (10 * NSEC_PER_SEC)

static struct conn *conns;
static unsigned nconns;
/* Frames are usually parsed straight from here, so an idle connection
 * holds no receive buffer at all. */
static uint8_t rx_scratch[RX_CHUNK];

static void conn_event(struct watch *w, uint32_t events);
static void sock_close(struct conn *c);

uint16_t conn_version_max = PROTO_VERSION;

unsigned conn_count(void) { return nconns; }

static void conn_maybe_free(struct conn *c)
{
	if (c->freed || !c->sock_closed || c->in_rx || (c->ops && !c->released))
		return;
	c->freed = true;
	if (c->ops && c->ops->destroy)
		c->ops->destroy(c);
	c->ops = NULL;
	timer_cancel(&c->timer);
	buf_free(&c->rx);
	buf_free(&c->tx);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nconns--;
	loop_free_later(c);
}

static void handshake_timeout(struct timer *t)
{
	struct conn *c = container_of(t, struct conn, timer);
	struct proto_err e;

	proto_fail(&e, ETIMEDOUT, "no request within %llu seconds of connecting",
		   (unsigned long long)(HANDSHAKE_NS / NSEC_PER_SEC));
	conn_fail(c, &e);
}

/* Linux 6.1's AF_VSOCK has no sendpage: splice(2) into it falls back to
 * one sendmsg, hence one virtio-vsock packet, per 4 KiB page (measured:
 * 8 K packets of 4 KiB for 32 MiB of output, against 512 of 64 KiB for a
 * plain write), and every packet costs the guest a descriptor, a
 * notification and an interrupt. Bodies to a vsock client are read into
 * the output queue and sent with the frame header in large writes. */
int conn_open(int fd, bool vsock, const struct agent *a)
{
	struct conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	buf_init(&c->rx, PROTO_HDR_LEN + PROTO_FRAME_MAX);
	buf_init(&c->tx, TX_MAX);
	c->body_fd = -1;
	c->rx_sink_fd = -1;
	c->body_copy = vsock;
	c->state = CONN_HELLO;
	c->agent = a;
	r = loop_add(&c->w, fd, EPOLLIN | EPOLLRDHUP, conn_event);
	if (r < 0) {
		free(c);
		return r;
	}
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	nconns++;
	timer_arm(&c->timer, HANDSHAKE_NS, handshake_timeout);
	return 0;
}

static void hangup_op(struct conn *c)
{
	if (c->ops && !c->released && !c->hung_up) {
		c->hung_up = true;
		if (c->ops->hangup)
			c->ops->hangup(c);
		else
			c->released = true;
	}
}

static void sock_close(struct conn *c)
{
	if (c->sock_closed)
		return;
	loop_del(&c->w);
	close(c->w.fd);
	c->sock_closed = true;
	c->body_left = 0;
	buf_free(&c->rx);
	buf_free(&c->tx);
	hangup_op(c);
	conn_maybe_free(c);
}

bool conn_tx_idle(const struct conn *c)
{
	return !c->sock_closed && buf_len(&c->tx) == 0 && c->body_left == 0;
}

static void update_events(struct conn *c)
{
	uint32_t ev = 0;

	if (c->sock_closed)
		return;
	/* Reading, a read sees the client's end of file. Not reading (a
	 * paused command, an answer being flushed), stay in epoll all the
	 * same, edge-triggered, to see a client that goes away entirely
	 * (EPOLLHUP) - a client that only shut its sending side may still
	 * be reading what we send. */
	if (!c->rx_paused && !c->closing)
		ev = EPOLLIN | EPOLLRDHUP;
	else
		ev = EPOLLRDHUP | EPOLLET;
	if (buf_len(&c->tx) || c->body_left)
		ev |= EPOLLOUT;
	if (loop_set(&c->w, ev) < 0)
		sock_close(c);
}

/* The next piece of a body that is copied rather than spliced: its
 * bytes are in the pipe already (the caller of conn_send_spliced saw
 * them), so a short or failed read is a broken source. */
static int body_read(struct conn *c)
{
	size_t want = MIN(c->body_left, (size_t)BODY_CHUNK);
	ssize_t n;
	int r;

	if ((r = buf_reserve(&c->tx, want)) < 0)
		return r;
	do
		n = read(c->body_fd, buf_tail(&c->tx), want);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		log_warn(n < 0 ? errno : 0, "body source ended %zu bytes early", c->body_left);
		return n < 0 ? -errno : -EIO;
	}
	buf_commit(&c->tx, (size_t)n);
	c->body_left -= (size_t)n;
	return 0;
}

/* What a failed send or splice into the socket means to tx_write: try
 * it again (EINTR), 0 when the socket is full (EAGAIN), -1 when the
 * connection is gone. */
#define TX_RETRY 2

static int tx_error(void)
{
	return errno == EINTR ? TX_RETRY : errno == EAGAIN ? 0 : -1;
}

/* Returns 1 when everything queued was sent, 0 when the socket is full,
 * -1 when the connection is gone. */
static int tx_write(struct conn *c)
{
	ssize_t n;
	int r;

	for (;;) {
		/* Read on only once tx is down to at most the header, so
		 * what a short send left is never moved (buf_reserve). */
		if (c->body_left && c->body_copy && buf_len(&c->tx) <= PROTO_HDR_LEN &&
		    body_read(c) < 0)
			return -1;
		while (buf_len(&c->tx)) {
			n = send(c->w.fd, buf_head(&c->tx), buf_len(&c->tx),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n >= 0)
				buf_consume(&c->tx, (size_t)n);
			else if ((r = tx_error()) != TX_RETRY)
				return r;
		}
		if (!c->body_left)
			break;
		if (c->body_copy)
			continue;
		n = splice(c->body_fd, NULL, c->w.fd, NULL, c->body_left,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0) {
			if ((r = tx_error()) != TX_RETRY)
				return r;
			continue;
		}
		if (n == 0) {
			log_warn(0, "spliced body source ended %zu bytes early", c->body_left);
			return -1;
		}
		c->body_left -= (size_t)n;
	}
	if (c->tx.cap > (c->body_copy ? 2 * BODY_CHUNK : RX_CHUNK))
		buf_shrink(&c->tx, 0);
	return 1;
}

static void flush(struct conn *c, bool from_event)
{
	int r;

	if (c->sock_closed)
		return;
	r = tx_write(c);
	if (r < 0) {
		sock_close(c);
		return;
	}
	if (r == 1 && c->closing) {
		sock_close(c);
		return;
	}
	update_events(c);
	if (r == 1 && from_event && c->ops && !c->released && c->ops->writable)
		c->ops->writable(c);
}

void conn_flush(struct conn *c)
{
	flush(c, false);
}

int conn_send(struct conn *c, uint16_t type, const void *payload, size_t len)
{
	int r;

	if (conn_dead(c))
		return -EPIPE;
	if (c->body_left)
		return -EBUSY;
	r = proto_put(&c->tx, type, payload, len);
	if (r < 0)
		return r;
	conn_flush(c);
	return 0;
}

int conn_send_spliced(struct conn *c, uint16_t type, int fd, size_t len)
{
	int r;

	if (conn_dead(c))
		return -EPIPE;
	if (c->body_left || len > PROTO_FRAME_MAX)
		return -EBUSY;
	r = buf_reserve(&c->tx, PROTO_HDR_LEN);
	if (r < 0)
		return r;
	proto_hdr_put(buf_tail(&c->tx), type, (uint32_t)len);
	buf_commit(&c->tx, PROTO_HDR_LEN);
	c->body_fd = fd;
	c->body_left = len;
	conn_flush(c);
	return 0;
}

void conn_fail(struct conn *c, const struct proto_err *e)
{
	if (c->sock_closed)
		return;
	log_debug(0, "connection failed: %s", e->msg);
	timer_cancel(&c->timer);
	if (c->closing) {
		hangup_op(c);
		return;
	}
	if (c->body_left || proto_error_put(&c->tx, e->code, "%s", e->msg) < 0) {
		/* Mid-body there is no frame boundary to put ERROR at. */
		sock_close(c);
		return;
	}
	c->closing = true;
	hangup_op(c);
	conn_flush(c);
}

void conn_finish(struct conn *c)
{
	c->released = true;
	if (c->sock_closed) {
		conn_maybe_free(c);
		return;
	}
	c->closing = true;
	conn_flush(c);
}

void conn_release(struct conn *c)
{
	c->released = true;
	conn_maybe_free(c);
}

static int hello(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct hello_ok ok = { 0 };
	uint16_t vmin, vmax, top = conn_version_max;
	int r;

	if ((r = proto_hello_decode(f, &vmin, &vmax, e)) < 0)
		return r;
	if (vmin > top || vmax < PROTO_VERSION_MIN)
		return proto_fail(e, EPROTONOSUPPORT, "no common protocol version: client %u-%u, "
				  "agent %u-%u", vmin, vmax, PROTO_VERSION_MIN, top);
	ok.version = c->version = MIN(vmax, top);
	if (c->agent->auth_key()) {
		/* A fresh challenge per connection: a recorded answer is
		 * worth nothing. */
		if (getrandom(c->nonce, sizeof(c->nonce), 0) != sizeof(c->nonce))
			return proto_fail(e, EAGAIN, "no randomness for the authentication challenge");
		ok.flags = HELLO_F_AUTH;
		memcpy(ok.nonce, c->nonce, sizeof(ok.nonce));
	}
	if (proto_hello_ok_put(&c->tx, &ok) < 0)
		return proto_fail(e, ENOMEM, "out of memory");
	c->state = c->agent->auth_key() ? CONN_AUTH : CONN_OP;
	conn_flush(c);
	return 0;
}

static int auth(struct conn *c, const struct frame *f, struct proto_err *e)
{
	if (f->type != FT_AUTH)
		return proto_fail(e, EACCES, "authentication required: this agent has a token");
	if (f->len != PROTO_AUTH_LEN ||
	    !proto_auth_check(c->agent->auth_key(), c->nonce, f->payload)) {
		log_warn(0, "refused a client that could not prove the token");
		return proto_fail(e, EACCES, "authentication failed: wrong token");
	}
	c->state = CONN_OP;
	return 0;
}

/* Hands f to what the connection's state says; the error any of them
 * returns fails the connection here. */
static void dispatch(struct conn *c, const struct frame *f)
{
	struct proto_err e;
	int r = 0;

	switch (c->state) {
	case CONN_HELLO:
		r = hello(c, f, &e);
		break;
	case CONN_AUTH:
		r = auth(c, f, &e);
		break;
	case CONN_OP:
		timer_cancel(&c->timer);
		c->state = CONN_RUNNING;
		r = c->agent->dispatch(c, f, &e);
		break;
	case CONN_RUNNING:
		if (c->ops && !c->released && c->ops->frame)
			r = c->ops->frame(c, f, &e);
		else
			r = proto_fail(&e, EPROTO, "unexpected %s frame: the operation has ended",
				       proto_type_name(f->type));
		break;
	}
	if (r < 0)
		conn_fail(c, &e);
}

/* Before HELLO and AUTH a client is nobody: refuse on the header alone a
 * frame that is not the expected one, rather than buffer up to 1 MiB of
 * it. 0, or -errno with e filled. */
static int admit(struct conn *c, const uint8_t *p, size_t len, struct proto_err *e)
{
	uint32_t flen;
	uint16_t type;

	if (len < PROTO_HDR_LEN || (c->state != CONN_HELLO && c->state != CONN_AUTH))
		return 0;
	flen = get_le32(p);
	type = get_le16(p + 4);
	if (flen > PROTO_FRAME_MAX)
		return 0; /* the frame parser says EMSGSIZE */
	if (c->state == CONN_HELLO && type != FT_HELLO)
		return proto_fail(e, EPROTO, "expected HELLO, got frame type 0x%04x (%s)", type,
				  proto_type_name(type));
	if (c->state == CONN_HELLO && flen != 8)
		return proto_fail(e, EBADMSG, "HELLO payload is %u bytes, expected 8", flen);
	if (c->state == CONN_AUTH && type == FT_AUTH && flen != PROTO_AUTH_LEN)
		return proto_fail(e, EBADMSG, "AUTH payload is %u bytes, expected %d", flen, PROTO_AUTH_LEN);
	if (c->state == CONN_AUTH && type != FT_AUTH)
		return proto_fail(e, EACCES, "authentication required: this agent has a token");
	return 0;
}

/* Dispatches whole frames from p[0..len); returns bytes consumed. */
static size_t process(struct conn *c, const uint8_t *p, size_t len)
{
	size_t used = 0;

	while (!c->rx_paused && !c->closing && !c->sock_closed && !c->taken) {
		struct proto_err e;
		struct frame f;
		long n;

		if (admit(c, p + used, len - used, &e) < 0) {
			conn_fail(c, &e);
			break;
		}
		n = proto_frame_parse(p + used, len - used, &f, &e);
		if (n == 0)
			break;
		if (n < 0) {
			conn_fail(c, &e);
			break;
		}
		c->rx_after = len - used - (size_t)n;
		dispatch(c, &f);
		used += (size_t)n;
	}
	return used;
}

/* Processes what is buffered in rx; drops the buffer once it is empty. */
static void process_rx(struct conn *c)
{
	size_t used;

	if (c->sock_closed || buf_len(&c->rx) == 0)
		return;
	c->in_rx = true;
	used = process(c, buf_head(&c->rx), buf_len(&c->rx));
	c->in_rx = false;
	if (c->sock_closed) {
		conn_maybe_free(c);
		return;
	}
	buf_consume(&c->rx, used);
	if (buf_len(&c->rx) == 0)
		buf_shrink(&c->rx, 0);
}

/* Errors that only a socket gives: the peer or the transport is gone. */
static bool sock_errno(int err)
{
	switch (err) {
	case ECONNRESET:
	case ECONNABORTED:
	case ENOTCONN:
	case ETIMEDOUT:
	case ESHUTDOWN:
	case EHOSTUNREACH:
	case ENETDOWN:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

/* A payload on its way into the operation's pipe: spliced from the
 * socket (one copy in the kernel, none through us), or read and dropped
 * once the sink is gone. */
static void rx_body(struct conn *c)
{
	ssize_t n;
	int err;

	if (c->rx_sink_fd < 0)
		n = read(c->w.fd, rx_scratch, MIN(c->rx_body_left, sizeof(rx_scratch)));
	else
		n = splice(c->w.fd, NULL, c->rx_sink_fd, NULL, c->rx_body_left,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	if (n > 0) {
		c->rx_body_left -= (size_t)n;
		if (!c->rx_body_left)
			c->rx_sink_fd = -1;
		return;
	}
	if (n == 0) {
		sock_close(c);
		return;
	}
	err = errno;
	if (err == EINTR)
		return;
	if (err == EAGAIN && c->rx_sink_fd >= 0) {
		/* Both ends say EAGAIN: an empty socket waits for EPOLLIN,
		 * a full pipe for its reader. */
		struct pollfd p = { .fd = c->rx_sink_fd, .events = POLLOUT };

		if (poll(&p, 1, 0) == 0 && c->ops)
			c->ops->rx_sink_error(c, -EAGAIN);
		return;
	}
	if (err == EAGAIN)
		return;
	if (c->rx_sink_fd >= 0 && !sock_errno(err)) {
		/* splice does not say which end failed. The socket's own
		 * errors close the connection below, as a read's would (a
		 * detached command keeps its stdin for the next client); the
		 * rest (EPIPE: the command stopped reading) are the pipe's:
		 * the command's stdin ends and the rest of the payload is
		 * read and dropped. */
		c->rx_sink_fd = -1;
		if (c->ops)
			c->ops->rx_sink_error(c, -err);
		return;
	}
	sock_close(c);
}

/* Reading header first, for an operation that splices payloads: exactly
 * a header, then either the payload into its sink or exactly the rest of
 * the frame, which is dispatched as usual. */
static void sink_read(struct conn *c)
{
	size_t have = buf_len(&c->rx), want;
	ssize_t n;

	if (have >= PROTO_HDR_LEN) {
		const uint8_t *h = buf_head(&c->rx);
		uint32_t len = get_le32(h);
		uint16_t type = get_le16(h + 4);
		int fd;

		if (len > PROTO_FRAME_MAX || get_le16(h + 6) != 0 || have >= PROTO_HDR_LEN + len) {
			process_rx(c); /* refused, or whole */
			return;
		}
		if (have == PROTO_HDR_LEN && len > 0 && (fd = c->ops->rx_sink(c, type, len)) >= 0) {
			buf_consume(&c->rx, PROTO_HDR_LEN);
			buf_shrink(&c->rx, 0);
			c->rx_sink_fd = fd;
			c->rx_body_left = len;
			rx_body(c);
			return;
		}
		want = PROTO_HDR_LEN + len - have;
	} else {
		want = PROTO_HDR_LEN - have;
	}
	if (buf_reserve(&c->rx, want) < 0) {
		struct proto_err e;

		proto_fail(&e, ENOMEM, "out of memory buffering a frame");
		conn_fail(c, &e);
		return;
	}
	n = read(c->w.fd, buf_tail(&c->rx), want);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			sock_close(c);
		return;
	}
	buf_commit(&c->rx, (size_t)n);
	if (have < PROTO_HDR_LEN && buf_len(&c->rx) == PROTO_HDR_LEN)
		sink_read(c); /* the header: its payload may be waiting too */
	else if (buf_len(&c->rx) >= PROTO_HDR_LEN)
		process_rx(c);
}

static void conn_read(struct conn *c)
{
	struct proto_err e;
	ssize_t n;

	if (c->rx_body_left) {
		rx_body(c);
		return;
	}
	if (c->rx_sink_on && c->state == CONN_RUNNING && c->ops && c->ops->rx_sink && !c->released) {
		sink_read(c);
		return;
	}
	if (buf_len(&c->rx) == 0) {
		size_t used;

		n = read(c->w.fd, rx_scratch, sizeof(rx_scratch));
		if (n <= 0)
			goto check;
		c->in_rx = true;
		used = process(c, rx_scratch, (size_t)n);
		c->in_rx = false;
		if (c->sock_closed) {
			conn_maybe_free(c);
			return;
		}
		if (used < (size_t)n && !c->closing &&
		    buf_append(&c->rx, rx_scratch + used, (size_t)n - used) < 0) {
			proto_fail(&e, ENOMEM, "out of memory buffering a frame");
			conn_fail(c, &e);
		}
		return;
	}
	/* A partial frame is buffered: read the rest of it into rx. */
	{
		size_t want = RX_CHUNK;

		if (buf_len(&c->rx) >= PROTO_HDR_LEN) {
			size_t total = PROTO_HDR_LEN + get_le32(buf_head(&c->rx));

			if (total > buf_len(&c->rx))
				want = MAX(want, total - buf_len(&c->rx));
		}
		if (buf_reserve(&c->rx, want) < 0 && buf_reserve(&c->rx, 1) < 0) {
			proto_fail(&e, EMSGSIZE, "frame too large");
			conn_fail(c, &e);
			return;
		}
		n = read(c->w.fd, buf_tail(&c->rx), buf_room(&c->rx));
		if (n <= 0)
			goto check;
		buf_commit(&c->rx, (size_t)n);
		process_rx(c);
		return;
	}
check:
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		sock_close(c);
}

void conn_pause_rx(struct conn *c, bool pause)
{
	if (c->rx_paused == pause)
		return;
	c->rx_paused = pause;
	if (!pause && !c->in_rx)
		process_rx(c);
	update_events(c);
}

void conn_rx_sink(struct conn *c, bool on)
{
	c->rx_sink_on = on && c->ops && c->ops->rx_sink && c->ops->rx_sink_error;
	if (!on)
		c->rx_sink_fd = -1; /* the rest of a payload is dropped */
}

static void conn_event(struct watch *w, uint32_t events)
{
	struct conn *c = container_of(w, struct conn, w);

	if (events & EPOLLOUT)
		flush(c, true);
	if (!c->sock_closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) {
		if (c->rx_paused || c->closing) {
			/* Not reading: only notice a client that is gone. */
			if (events & (EPOLLHUP | EPOLLERR))
				sock_close(c);
		} else {
			conn_read(c);
		}
	}
}

int conn_take_socket(struct conn *c)
{
	int fd = c->w.fd;

	if (c->sock_closed || c->closing)
		return -EIO;
	if (c->rx_after > 0 || buf_len(&c->rx) != 0)
		return -EPROTO;
	/* The reply is small and the socket's buffer empty: it goes out at
	 * once, or within a bounded wait. */
	fd_set_nonblock(fd, false);
	if (buf_len(&c->tx) && fd_write_all(fd, buf_head(&c->tx), buf_len(&c->tx)) < 0) {
		fd_set_nonblock(fd, true);
		sock_close(c);
		return -EIO;
	}
	fd_set_nonblock(fd, true);
	loop_del(&c->w);
	c->taken = true;
	c->sock_closed = true; /* closed as far as the connection is concerned */
	c->released = true;
	buf_free(&c->tx);
	conn_maybe_free(c);
	return fd;
}

const struct conn_route *conn_route_find(const struct conn_route *table, size_t n, uint16_t type)
{
	for (size_t i = 0; i < n; i++)
		if (table[i].type == type)
			return &table[i];
	return NULL;
}

void conn_shutdown_all(int code, const char *why)
{
	struct conn *c, *next;
	struct proto_err e;

	proto_fail(&e, code, "%s", why);
	for (c = conns; c; c = next) {
		next = c->next;
		conn_fail(c, &e);
	}
}
