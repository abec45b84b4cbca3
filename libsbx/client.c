/* libsbx: connections and frames on the client side: the token and its
 * proof, connecting (HELLO, AUTH), queueing and receiving frames. The
 * socket is non-blocking; blocking calls wait with poll(2), so one
 * mechanism serves both the simple calls and event loops. Commands are
 * exec.c's, the agent's other requests control.c's. */
#include "libsbx/sbx.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "libsbx/conn.h"
#include "vsock/addr.h"

#define RX_MAX (PROTO_HDR_LEN + PROTO_FRAME_MAX)
#define RX_CHUNK (256 * 1024)
#define TX_MAX (4 * RX_MAX)
#define CONNECT_TIMEOUT_MS 10000




/* Per thread: `sbx serve` talks to many sandboxes at once, one worker
 * thread per call, each proving its own sandbox's token. */
static _Thread_local uint8_t token_key[32];
static _Thread_local bool have_token;

void sbx_set_token(const char *token)
{
	have_token = token && *token;
	if (have_token)
		proto_auth_key(token, token_key);
}

bool sbx_has_token(void)
{
	return have_token;
}

int sbx_auth_answer(const uint8_t nonce[PROTO_NONCE_LEN], uint8_t mac[PROTO_AUTH_LEN])
{
	if (!have_token)
		return -ENOKEY;
	proto_auth_mac(token_key, nonce, mac);
	return 0;
}

int sbx_fail(struct sbx_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

static int tx_some(struct sbx_conn *c, struct sbx_error *err);
static int rx_some(struct sbx_conn *c, struct sbx_error *err);

/* A HELLO_OK came: the version must be one this side offered. */
static int hello_agreed(struct sbx_conn *c, const struct hello_ok *h, struct sbx_error *err)
{
	if (h->version < PROTO_VERSION_MIN || h->version > PROTO_VERSION)
		return sbx_fail(err, EPROTO, "%s chose protocol version %u, not one of %u-%u",
				c->addr, h->version, PROTO_VERSION_MIN, PROTO_VERSION);
	c->version = h->version;
	c->hello_done = true;
	return 0;
}

/* Sends what is queued (HELLO first) and waits for HELLO_OK; answers its
 * challenge with AUTH when there is a token. */
int sbx_hello_wait(struct sbx_conn *c, struct sbx_error *err)
{
	uint64_t deadline = time_mono_ns() + CONNECT_TIMEOUT_MS * NSEC_PER_MSEC;
	struct proto_err pe;
	struct hello_ok h;
	struct frame f;
	long n;
	int r;

	if (c->hello_done)
		return 0;
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if ((r = tx_some(c, err)) < 0)
			return r;
		n = proto_frame_parse(buf_head(&c->rx), buf_len(&c->rx), &f, &pe);
		if (n < 0)
			return sbx_fail(err, pe.code, "bad frame from %s: %s", c->addr, pe.msg);
		if (n > 0)
			break;
		if (time_mono_ns() > deadline)
			return sbx_fail(err, ETIMEDOUT, "no answer from %s", c->addr);
		poll(&p, 1, 100);
		if ((r = rx_some(c, err)) < 0)
			return r;
	}
	if (f.type == FT_ERROR) {
		char msg[PROTO_MSG_MAX + 1];
		int code;

		if (proto_error_decode(&f, &code, msg, sizeof(msg), &pe) < 0)
			return sbx_fail(err, pe.code, "bad ERROR frame from %s", c->addr);
		return sbx_fail(err, code, "%s", msg);
	}
	if (f.type != FT_HELLO_OK || proto_hello_ok_decode(&f, &h, &pe) < 0)
		return sbx_fail(err, EPROTO, "%s did not answer HELLO", c->addr);
	buf_consume(&c->rx, (size_t)n);
	if ((r = hello_agreed(c, &h, err)) < 0)
		return r;
	if (h.flags & HELLO_F_AUTH) {
		uint8_t mac[PROTO_AUTH_LEN];

		if (!have_token)
			return sbx_fail(err, EACCES, "%s requires a token", c->addr);
		proto_auth_mac(token_key, h.nonce, mac);
		if ((r = proto_put(&c->tx, FT_AUTH, mac, sizeof(mac))) < 0)
			return sbx_fail(err, r, "cannot queue AUTH");
	}
	return 0;
}

int sbx_connect(const char *addr, struct sbx_conn **out, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct addr a;
	char why[256];
	int fd, r;

	if (addr_parse(addr, &a, why, sizeof(why)) < 0)
		return sbx_fail(err, EINVAL, "%s", why);
	c = calloc(1, sizeof(*c));
	if (!c)
		return sbx_fail(err, ENOMEM, "out of memory");
	c->fd = -1;
	str_copy(c->addr, sizeof(c->addr), addr);
	buf_init(&c->rx, RX_MAX);
	buf_init(&c->tx, TX_MAX);
	/* HELLO goes with the connection request: through sbx-vsockd it
	 * reaches the guest as soon as the agent accepts. */
	if ((r = proto_hello_put(&c->tx, PROTO_VERSION_MIN, PROTO_VERSION)) < 0) {
		sbx_close(c);
		return sbx_fail(err, r, "cannot set up the connection to %s", addr);
	}
	fd = addr_connect_with(&a, CONNECT_TIMEOUT_MS, buf_head(&c->tx), buf_len(&c->tx));
	if (fd < 0) {
		sbx_close(c);
		if (fd == -ECONNREFUSED && a.kind == ADDR_HYBRID)
			return sbx_fail(err, ECONNREFUSED,
				    "cannot connect to %s: nothing listens on port %u in the guest",
				    addr, a.port);
		return sbx_fail(err, fd, "cannot connect to %s: %s", addr, strerror(-fd));
	}
	c->fd = fd;
	buf_consume(&c->tx, buf_len(&c->tx));
	if ((r = fd_set_nonblock(fd, true)) < 0) {
		sbx_close(c);
		return sbx_fail(err, r, "cannot set up the connection to %s", addr);
	}
	if (have_token && (r = sbx_hello_wait(c, err)) < 0) {
		sbx_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void sbx_close(struct sbx_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->rx);
	buf_free(&c->tx);
	free(c);
}

int sbx_fd(const struct sbx_conn *c) { return c->fd; }
struct buf *sbx_txbuf(struct sbx_conn *c) { return &c->tx; }

int sbx_send(struct sbx_conn *c, uint16_t type, const void *payload, size_t len,
	     struct sbx_error *err)
{
	int r = proto_put(&c->tx, type, payload, len);

	return r < 0 ? sbx_fail(err, r, "cannot queue a %s frame", proto_type_name(type)) : 0;
}

int sbx_conn_lost(struct sbx_conn *c, struct sbx_error *err, int code)
{
	if (code == EPIPE || code == ECONNRESET)
		return sbx_fail(err, EPIPE, "the connection to %s was lost", c->addr);
	return sbx_fail(err, code, "connection to %s: %s", c->addr, strerror(code));
}

/* A send found the connection gone. The agent may have closed it after
 * saying why (an ERROR frame: "the sandbox is shutting down: …"), which a
 * client that had something to send (stdin, a credit) would otherwise
 * never read: that reason, if it is there, rather than the broken pipe.
 * The frames before it are only looked at, not consumed. */
static int tx_lost(struct sbx_conn *c, struct sbx_error *err, int code)
{
	struct sbx_error ignored = { 0 };
	size_t at = 0;

	while (!c->eof && rx_some(c, &ignored) > 0)
		;
	while (at < buf_len(&c->rx)) {
		char msg[PROTO_MSG_MAX + 1];
		struct proto_err pe;
		struct frame f;
		int ecode;
		long n = proto_frame_parse(buf_head(&c->rx) + at, buf_len(&c->rx) - at, &f, &pe);

		if (n <= 0)
			break;
		at += (size_t)n;
		if (f.type == FT_ERROR && proto_error_decode(&f, &ecode, msg, sizeof(msg), &pe) == 0)
			return sbx_fail(err, ecode, "%s", msg);
	}
	return sbx_conn_lost(c, err, code);
}

/* Non-blocking send of what is queued: 1 when all sent, 0 when not. */
static int tx_some(struct sbx_conn *c, struct sbx_error *err)
{
	while (buf_len(&c->tx)) {
		ssize_t n = send(c->fd, buf_head(&c->tx), buf_len(&c->tx), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return tx_lost(c, err, errno);
		}
		buf_consume(&c->tx, (size_t)n);
	}
	if (c->tx.cap > RX_CHUNK)
		buf_shrink(&c->tx, 0);
	return 1;
}

/* Non-blocking read of what is there: bytes read, 0 if none. */
static int rx_some(struct sbx_conn *c, struct sbx_error *err)
{
	ssize_t n;
	size_t want = RX_CHUNK;

	if (c->eof)
		return sbx_conn_lost(c, err, EPIPE);
	if (buf_len(&c->rx) >= PROTO_HDR_LEN) {
		size_t total = PROTO_HDR_LEN + get_le32(buf_head(&c->rx));

		if (total > buf_len(&c->rx) && total <= RX_MAX)
			want = MAX(want, total - buf_len(&c->rx));
	}
	if (buf_reserve(&c->rx, want) < 0 && buf_reserve(&c->rx, 1) < 0)
		return sbx_fail(err, EMSGSIZE, "frame from %s too large", c->addr);
	n = read(c->fd, buf_tail(&c->rx), buf_room(&c->rx));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : sbx_conn_lost(c, err, errno);
	if (n == 0) {
		c->eof = true;
		return sbx_conn_lost(c, err, EPIPE);
	}
	buf_commit(&c->rx, (size_t)n);
	return (int)n;
}

int sbx_next_frame(struct sbx_conn *c, struct frame *f, struct sbx_error *err)
{
	struct proto_err pe;
	long n;
	int r;

	for (;;) {
		n = proto_frame_parse(buf_head(&c->rx), buf_len(&c->rx), f, &pe);
		if (n == 0)
			return 0;
		if (n < 0)
			return sbx_fail(err, pe.code, "bad frame from %s: %s", c->addr, pe.msg);
		/* Consuming only moves offsets: the payload stays in place
		 * until the next read into the buffer, i.e. the next call. */
		buf_consume(&c->rx, (size_t)n);
		if (!c->hello_done) {
			struct hello_ok h;

			if (f->type == FT_ERROR)
				goto error;
			if (f->type != FT_HELLO_OK)
				return sbx_fail(err, EPROTO, "%s answered %s instead of HELLO_OK", c->addr,
					    proto_type_name(f->type));
			if (proto_hello_ok_decode(f, &h, &pe) < 0)
				return sbx_fail(err, pe.code, "bad HELLO_OK from %s: %s", c->addr, pe.msg);
			if (h.flags & HELLO_F_AUTH)
				return sbx_fail(err, EACCES, "%s requires a token", c->addr);
			if ((r = hello_agreed(c, &h, err)) < 0)
				return r;
			continue;
		}
		if (f->type == FT_ERROR)
			goto error;
		return 1;
	}
error: {
	char msg[PROTO_MSG_MAX + 1];
	int code;

	if (proto_error_decode(f, &code, msg, sizeof(msg), &pe) < 0)
		return sbx_fail(err, pe.code, "bad ERROR frame from %s: %s", c->addr, pe.msg);
	return sbx_fail(err, code, "%s", msg);
}
}

int sbx_pump(struct sbx_conn *c, bool *want_write, struct sbx_error *err)
{
	int r = tx_some(c, err);

	if (r < 0)
		return r;
	*want_write = r == 0;
	return rx_some(c, err);
}

int sbx_flush(struct sbx_conn *c, struct sbx_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		int r = tx_some(c, err);

		if (r != 0)
			return r < 0 ? r : 0;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return sbx_fail(err, errno, "poll");
	}
}

int sbx_recv(struct sbx_conn *c, struct frame *f, int timeout_ms, struct sbx_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = sbx_next_frame(c, f, err);

		if (r != 0)
			return r < 0 ? r : 0;
		if ((r = tx_some(c, err)) < 0)
			return r;
		if (r == 0)
			p.events |= POLLOUT;
		r = rx_some(c, err);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno != EINTR)
			return sbx_fail(err, errno, "poll");
		if (r == 0)
			return sbx_fail(err, EAGAIN, "no answer from %s within %d ms", c->addr, timeout_ms);
	}
}
