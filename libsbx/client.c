/* libsbx: connections, frames and commands on the client side. The socket
 * is non-blocking; blocking calls wait with poll(2), so one mechanism
 * serves both the simple calls and event loops. */
#include "libsbx/sbx.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "vsock/addr.h"

#define RX_MAX (PROTO_HDR_LEN + PROTO_FRAME_MAX)
#define RX_CHUNK (256 * 1024)
#define TX_MAX (4 * RX_MAX)
#define CONNECT_TIMEOUT_MS 10000

struct sbx_conn {
	int fd;
	struct buf rx;
	struct buf tx;
	bool hello_done;
	bool eof;
	char addr[160];
};



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

static int lost(struct sbx_conn *c, struct sbx_error *err, int code);
static int tx_some(struct sbx_conn *c, struct sbx_error *err);
static int rx_some(struct sbx_conn *c, struct sbx_error *err);

/* HELLO, wait for HELLO_OK and its challenge, answer with AUTH. */
static int authenticate(struct sbx_conn *c, struct sbx_error *err)
{
	uint64_t deadline = time_mono_ns() + CONNECT_TIMEOUT_MS * NSEC_PER_MSEC;
	struct proto_err pe;
	struct hello_ok h;
	struct frame f;
	long n;
	int r;

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
	c->hello_done = true;
	if (h.flags & HELLO_F_AUTH) {
		uint8_t mac[PROTO_AUTH_LEN];

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
	fd = addr_connect(&a, CONNECT_TIMEOUT_MS);
	if (fd < 0) {
		if (fd == -ECONNREFUSED && a.kind == ADDR_HYBRID)
			return sbx_fail(err, ECONNREFUSED,
				    "cannot connect to %s: nothing listens on port %u in the guest",
				    addr, a.port);
		return sbx_fail(err, fd, "cannot connect to %s: %s", addr, strerror(-fd));
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return sbx_fail(err, ENOMEM, "out of memory");
	}
	c->fd = fd;
	str_copy(c->addr, sizeof(c->addr), addr);
	buf_init(&c->rx, RX_MAX);
	buf_init(&c->tx, TX_MAX);
	if ((r = fd_set_nonblock(fd, true)) < 0 ||
	    (r = proto_hello_put(&c->tx, PROTO_VERSION, PROTO_VERSION)) < 0) {
		sbx_close(c);
		return sbx_fail(err, r, "cannot set up the connection to %s", addr);
	}
	if (have_token && (r = authenticate(c, err)) < 0) {
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

static int lost(struct sbx_conn *c, struct sbx_error *err, int code)
{
	if (code == EPIPE || code == ECONNRESET)
		return sbx_fail(err, EPIPE, "the connection to %s was lost", c->addr);
	return sbx_fail(err, code, "connection to %s: %s", c->addr, strerror(code));
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
			return lost(c, err, errno);
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
		return lost(c, err, EPIPE);
	if (buf_len(&c->rx) >= PROTO_HDR_LEN) {
		size_t total = PROTO_HDR_LEN + get_le32(buf_head(&c->rx));

		if (total > buf_len(&c->rx) && total <= RX_MAX)
			want = MAX(want, total - buf_len(&c->rx));
	}
	if (buf_reserve(&c->rx, want) < 0 && buf_reserve(&c->rx, 1) < 0)
		return sbx_fail(err, EMSGSIZE, "frame from %s too large", c->addr);
	n = read(c->fd, buf_tail(&c->rx), buf_room(&c->rx));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : lost(c, err, errno);
	if (n == 0) {
		c->eof = true;
		return lost(c, err, EPIPE);
	}
	buf_commit(&c->rx, (size_t)n);
	return (int)n;
}

int sbx_next_frame(struct sbx_conn *c, struct frame *f, struct sbx_error *err)
{
	struct proto_err pe;
	long n;

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
			c->hello_done = true;
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

/* ---- commands ---- */

int sbx_exit_status(const struct sbx_exit *x)
{
	return x->how == EXIT_SIGNALED ? 128 + x->signal : x->code;
}

int sbx_exec_send(struct sbx_conn *c, const struct sbx_exec_opts *o, struct sbx_error *err)
{
	struct exec_req req = { 0 };
	size_t n;
	int r;

	for (n = 0; o->argv[n]; n++)
		;
	req.argv = (char **)o->argv;
	req.argc = n;
	for (n = 0; o->env && o->env[n]; n++)
		;
	req.env = (char **)o->env;
	req.envc = n;
	req.cwd = (char *)o->cwd;
	req.user = (char *)o->user;
	req.flags = (o->clear_env ? EXEC_F_CLEAR_ENV : 0) | (o->stdin_pipe ? EXEC_F_STDIN : 0) |
		    (o->no_stdout ? EXEC_F_NO_STDOUT : 0) | (o->no_stderr ? EXEC_F_NO_STDERR : 0) |
		    (o->detach ? EXEC_F_DETACH : 0);
	req.pty = o->tty;
	req.rows = o->rows ? o->rows : 24;
	req.cols = o->cols ? o->cols : 80;
	if (req.argc == 0)
		return sbx_fail(err, EINVAL, "no command given");
	r = proto_exec_put(&c->tx, &req);
	if (r < 0)
		return sbx_fail(err, r, "the command is too large to send (arguments and environment "
			    "must fit in %u bytes)", PROTO_FRAME_MAX);
	return 0;
}

int sbx_exec_event(const struct frame *f, struct sbx_event *ev, struct sbx_error *err)
{
	struct exit_status x;
	struct proto_err pe;
	uint32_t pid;

	memset(ev, 0, sizeof(*ev));
	switch (f->type) {
	case FT_STARTED:
		if (proto_u32_decode(f, &pid, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		ev->kind = SBX_EV_STARTED;
		ev->pid = (pid_t)pid;
		return 0;
	case FT_STDOUT:
	case FT_STDERR:
		ev->kind = f->type == FT_STDOUT ? SBX_EV_STDOUT : SBX_EV_STDERR;
		ev->data = f->payload;
		ev->len = f->len;
		return 0;
	case FT_ATTACHED: {
		struct attached a;

		if (proto_attached_decode(f, &a, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		ev->kind = SBX_EV_STARTED;
		ev->pid = (pid_t)a.pid;
		ev->out_base = a.out_base;
		ev->err_base = a.err_base;
		return 0;
	}
	case FT_EXIT:
		if (proto_exit_decode(f, &x, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		ev->kind = SBX_EV_EXIT;
		ev->exit.how = x.how;
		ev->exit.core = x.flags & EXIT_F_CORE;
		ev->exit.oom = x.flags & EXIT_F_OOM;
		if (x.how == EXIT_SIGNALED)
			ev->exit.signal = x.value;
		else
			ev->exit.code = x.value;
		memcpy(ev->exit.msg, x.msg, sizeof(ev->exit.msg));
		return 0;
	default:
		return sbx_fail(err, EPROTO, "unexpected %s frame from the agent",
			    proto_type_name(f->type));
	}
}

int sbx_exec_stdin(struct sbx_conn *c, const void *data, size_t len, struct sbx_error *err)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };
	ssize_t n;

	if (buf_len(&c->tx) || len > PROTO_FRAME_MAX || !c->hello_done)
		return sbx_send(c, FT_STDIN, data, len, err);
	/* Nothing queued: send header and data from where they are, and
	 * queue only what the socket did not take. */
	proto_hdr_put(hdr, FT_STDIN, (uint32_t)len);
	n = writev(c->fd, iov, 2);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return lost(c, err, errno);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(hdr)) {
		if (buf_append(&c->tx, hdr + n, sizeof(hdr) - (size_t)n) < 0 ||
		    buf_append(&c->tx, data, len) < 0)
			return sbx_fail(err, ENOBUFS, "output queue full");
		return 0;
	}
	n -= (ssize_t)sizeof(hdr);
	if ((size_t)n < len && buf_append(&c->tx, (const uint8_t *)data + n, len - (size_t)n) < 0)
		return sbx_fail(err, ENOBUFS, "output queue full");
	return 0;
}

int sbx_exec_stdin_eof(struct sbx_conn *c, struct sbx_error *err)
{
	return sbx_send(c, FT_STDIN_EOF, NULL, 0, err);
}

int sbx_exec_signal(struct sbx_conn *c, int sig, struct sbx_error *err)
{
	int r = proto_u32_put(&c->tx, FT_SIGNAL, (uint32_t)sig);

	return r < 0 ? sbx_fail(err, r, "cannot queue a signal") : 0;
}

int sbx_exec_resize(struct sbx_conn *c, unsigned short rows, unsigned short cols,
		    struct sbx_error *err)
{
	int r = proto_resize_put(&c->tx, rows, cols);

	return r < 0 ? sbx_fail(err, r, "cannot queue a resize") : 0;
}

static int write_out(int fd, const uint8_t *p, size_t n, struct sbx_error *err)
{
	int r;

	if (fd < 0)
		return 0;
	r = fd_write_all(fd, p, n);
	return r < 0 ? sbx_fail(err, r, "cannot write the command's output: %s", strerror(-r)) : 0;
}

#define STDIN_CHUNK (256 * 1024)

/* The stdio loop of a command whose request was sent. With ack, output is
 * acknowledged as it is written out (detached commands). */
static int stream_io(struct sbx_conn *c, bool stdin_pipe, bool ack, const struct sbx_io *io,
		     struct sbx_exit *exit, struct sbx_error *err)
{
	bool in_open = stdin_pipe && io->in_fd >= 0, want_write = false;
	struct ack a = { 0 };
	int r;

	if (stdin_pipe && io->in_fd < 0 && (r = sbx_exec_stdin_eof(c, err)) < 0)
		return r;
	for (;;) {
		struct pollfd p[3] = { { .fd = c->fd, .events = POLLIN }, { .fd = -1 }, { .fd = -1 } };
		struct frame f;
		struct sbx_event ev;

		while ((r = sbx_next_frame(c, &f, err)) == 1) {
			if ((r = sbx_exec_event(&f, &ev, err)) < 0)
				goto out;
			if (ev.kind == SBX_EV_STDOUT) {
				r = write_out(io->out_fd, ev.data, ev.len, err);
				a.out_off += ev.len;
			} else if (ev.kind == SBX_EV_STDERR) {
				r = write_out(io->err_fd, ev.data, ev.len, err);
				a.err_off += ev.len;
			} else if (ev.kind == SBX_EV_STARTED) {
				a.out_off = ev.out_base;
				a.err_off = ev.err_base;
				if (io->on_started)
					io->on_started(io->arg, ev.pid);
				continue;
			} else if (ev.kind == SBX_EV_EXIT) {
				*exit = ev.exit;
				r = 0;
				if (ack) {
					/* We have the status: the agent may forget it. */
					a.flags = ACK_F_EXIT;
					if ((r = proto_ack_put(&c->tx, &a)) == 0)
						r = sbx_flush(c, err);
				}
				goto out;
			}
			if (r < 0)
				goto out;
			/* Written out: the agent may drop it. */
			if (ack && (r = proto_ack_put(&c->tx, &a)) < 0)
				goto out;
		}
		if (r < 0 || (r = sbx_pump(c, &want_write, err)) < 0)
			goto out;
		if (r > 0)
			continue; /* parse what came in before waiting */
		if (want_write)
			p[0].events |= POLLOUT;
		/* Read more input only when the queue to the agent is short. */
		if (in_open && buf_len(&c->tx) < STDIN_CHUNK)
			p[1] = (struct pollfd){ .fd = io->in_fd, .events = POLLIN };
		if (io->extra_fd >= 0)
			p[2] = (struct pollfd){ .fd = io->extra_fd, .events = POLLIN };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = sbx_fail(err, errno, "poll");
			goto out;
		}
		if (p[1].revents) {
			ssize_t n;

			/* Read straight into the queue behind a frame header:
			 * no copy between. */
			if ((r = buf_reserve(&c->tx, PROTO_HDR_LEN + STDIN_CHUNK)) < 0) {
				r = sbx_fail(err, r, "out of memory");
				goto out;
			}
			n = read(io->in_fd, buf_tail(&c->tx) + PROTO_HDR_LEN, STDIN_CHUNK);
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				r = sbx_fail(err, errno, "cannot read standard input: %s", strerror(errno));
				goto out;
			}
			if (n == 0) {
				in_open = false;
				r = sbx_exec_stdin_eof(c, err);
			} else if (n > 0) {
				proto_hdr_put(buf_tail(&c->tx), FT_STDIN, (uint32_t)n);
				buf_commit(&c->tx, PROTO_HDR_LEN + (size_t)n);
			}
			if (r < 0)
				goto out;
		}
		if (p[2].revents && (r = io->on_extra(io->arg, c, err)) < 0)
			goto out;
	}
out:
	return r;
}

int sbx_exec_io(struct sbx_conn *c, const struct sbx_exec_opts *o, const struct sbx_io *io,
		struct sbx_exit *exit, struct sbx_error *err)
{
	int r = sbx_exec_send(c, o, err);

	return r < 0 ? r : stream_io(c, o->stdin_pipe, o->detach, io, exit, err);
}

int sbx_attach_io(struct sbx_conn *c, pid_t pid, bool stdin_pipe, const struct sbx_io *io,
		  struct sbx_exit *exit, struct sbx_error *err)
{
	size_t mark;
	int r;

	if ((r = proto_begin(&c->tx, FT_ATTACH, &mark)) < 0 ||
	    (r = proto_field_put_u32(&c->tx, ATTACH_PID, (uint32_t)pid)) < 0 ||
	    (r = proto_end(&c->tx, mark)) < 0)
		return sbx_fail(err, r, "cannot queue ATTACH");
	return stream_io(c, stdin_pipe, true, io, exit, err);
}

int sbx_exec_detached(const char *addr, const struct sbx_exec_opts *o, pid_t *pid,
		      struct sbx_error *err)
{
	struct sbx_exec_opts d = *o;
	struct sbx_conn *c;
	struct sbx_event ev;
	struct frame f;
	int r;

	d.detach = true;
	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	if ((r = sbx_exec_send(c, &d, err)) < 0 || (r = sbx_recv(c, &f, -1, err)) < 0 ||
	    (r = sbx_exec_event(&f, &ev, err)) < 0)
		goto out;
	if (ev.kind == SBX_EV_EXIT) {
		r = sbx_fail(err, ev.exit.code == 127 ? ENOENT : EACCES, "%s", ev.exit.msg);
		goto out;
	}
	if (ev.kind != SBX_EV_STARTED) {
		r = sbx_fail(err, EPROTO, "the agent did not answer STARTED");
		goto out;
	}
	*pid = ev.pid;
out:
	sbx_close(c);
	return r;
}

int sbx_run(const char *addr, const struct sbx_exec_opts *o, int in_fd, int out_fd, int err_fd,
	    struct sbx_exit *exit, struct sbx_error *err)
{
	struct sbx_io io = { .in_fd = in_fd, .out_fd = out_fd, .err_fd = err_fd, .extra_fd = -1 };
	struct sbx_conn *c;
	int r;

	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	r = sbx_exec_io(c, o, &io, exit, err);
	sbx_close(c);
	return r;
}

/* ---- the agent ---- */

int sbx_info(const char *addr, struct info *out, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct proto_err pe;
	struct frame f;
	int r;

	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	if ((r = sbx_send(c, FT_INFO, NULL, 0, err)) < 0 || (r = sbx_recv(c, &f, -1, err)) < 0)
		goto out;
	if (f.type != FT_INFO_OK)
		r = sbx_fail(err, EPROTO, "%s answered INFO with %s", addr, proto_type_name(f.type));
	else if (proto_info_ok_decode(&f, out, &pe) < 0)
		r = sbx_fail(err, pe.code, "bad INFO_OK from %s: %s", addr, pe.msg);
out:
	sbx_close(c);
	return r;
}

/* ---- jobs, environment, lifetime ---- */

/* Opens a connection, sends what build queued, and returns the first
 * answer frame in *f (valid until sbx_close). */
static int request(const char *addr, struct sbx_conn **c, struct frame *f,
		   int (*build)(struct buf *b, const void *arg), const void *arg,
		   struct sbx_error *err)
{
	int r;

	if ((r = sbx_connect(addr, c, err)) < 0)
		return r;
	if ((r = build(&(*c)->tx, arg)) < 0) {
		sbx_close(*c);
		return sbx_fail(err, r, "cannot build the request");
	}
	if ((r = sbx_recv(*c, f, -1, err)) < 0) {
		sbx_close(*c);
		return r;
	}
	return 0;
}

static int build_empty(struct buf *b, const void *type)
{
	return proto_put(b, *(const uint16_t *)type, NULL, 0);
}

int sbx_ps(const char *addr, void (*fn)(void *arg, const struct ps_entry *p), void *arg,
	   struct sbx_error *err)
{
	static const uint16_t type = FT_PS;
	struct sbx_conn *c;
	struct proto_err pe;
	struct ps_entry p;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_empty, &type, err)) < 0)
		return r;
	while (f.type == FT_PS_ENTRY) {
		if (proto_ps_entry_decode(&f, &p, &pe) < 0) {
			r = sbx_fail(err, pe.code, "%s", pe.msg);
			goto out;
		}
		fn(arg, &p);
		if ((r = sbx_recv(c, &f, -1, err)) < 0)
			goto out;
	}
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "PS answered with %s", proto_type_name(f.type));
out:
	sbx_close(c);
	return r;
}

struct env_req {
	uint32_t op;
	const char *const *items;
};

static int build_env(struct buf *b, const void *arg)
{
	const struct env_req *e = arg;
	size_t mark;
	int r;

	if ((r = proto_begin(b, FT_ENV, &mark)) < 0 ||
	    (r = proto_field_put_u32(b, ENV_OP, e->op)) < 0)
		return r;
	for (size_t i = 0; e->items && e->items[i]; i++)
		if ((r = proto_field_put_str(b, e->op == ENV_SET ? ENV_ENTRY : ENV_NAME,
					     e->items[i])) < 0)
			return r;
	return proto_end(b, mark);
}

static int env_change(const char *addr, uint32_t op, const char *const *items,
		      struct sbx_error *err)
{
	struct env_req e = { .op = op, .items = items };
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_env, &e, err)) < 0)
		return r;
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "ENV answered with %s", proto_type_name(f.type));
	sbx_close(c);
	return r;
}

int sbx_env_set(const char *addr, const char *const *entries, struct sbx_error *err)
{
	return env_change(addr, ENV_SET, entries, err);
}

int sbx_env_unset(const char *addr, const char *const *names, struct sbx_error *err)
{
	return env_change(addr, ENV_UNSET, names, err);
}

int sbx_env_list(const char *addr, void (*fn)(void *arg, const char *entry), void *arg,
		 struct sbx_error *err)
{
	struct env_req e = { .op = ENV_LIST };
	struct field_iter it;
	struct proto_err pe;
	struct sbx_conn *c;
	const uint8_t *v;
	struct frame f;
	uint16_t tag;
	uint32_t len;
	int r;

	if ((r = request(addr, &c, &f, build_env, &e, err)) < 0)
		return r;
	/* ENV_LIST frames, then OK. */
	while (f.type == FT_ENV_LIST) {
		proto_fields(&it, &f);
		while ((r = proto_field_next(&it, &tag, &v, &len, &pe)) > 0) {
			char *entry;

			if (tag != ENV_ENTRY)
				continue;
			entry = strndup((const char *)v, len);
			if (!entry) {
				r = sbx_fail(err, ENOMEM, "out of memory");
				goto out;
			}
			fn(arg, entry);
			free(entry);
		}
		if (r < 0) {
			r = sbx_fail(err, pe.code, "%s", pe.msg);
			goto out;
		}
		if ((r = sbx_recv(c, &f, -1, err)) < 0)
			goto out;
	}
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "ENV answered with %s", proto_type_name(f.type));
out:
	sbx_close(c);
	return r;
}

static int lifetime_answer(struct sbx_conn *c, const struct frame *f, struct lifetime *l,
			   struct sbx_error *err)
{
	struct proto_err pe;

	if (f->type != FT_LIFETIME)
		return sbx_fail(err, EPROTO, "%s answered with %s", c->addr, proto_type_name(f->type));
	if (proto_lifetime_decode(f, l, &pe) < 0)
		return sbx_fail(err, pe.code, "%s", pe.msg);
	return 0;
}

int sbx_session(const char *addr, struct sbx_conn **out, struct lifetime *l,
		struct sbx_error *err)
{
	static const uint16_t type = FT_SESSION;
	struct frame f;
	int r;

	if ((r = request(addr, out, &f, build_empty, &type, err)) < 0)
		return r;
	if ((r = lifetime_answer(*out, &f, l, err)) < 0) {
		sbx_close(*out);
		*out = NULL;
	}
	return r;
}

static int build_extend(struct buf *b, const void *arg)
{
	uint8_t p[8];

	put_le64(p, *(const uint64_t *)arg);
	return proto_put(b, FT_EXTEND, p, sizeof(p));
}

int sbx_extend(const char *addr, uint64_t seconds, struct lifetime *l, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_extend, &seconds, err)) < 0)
		return r;
	r = lifetime_answer(c, &f, l, err);
	sbx_close(c);
	return r;
}

static int build_set_time(struct buf *b, const void *arg)
{
	uint64_t left = *(const uint64_t *)arg;
	struct timespec ts;
	size_t mark;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	if ((r = proto_begin(b, FT_SET_TIME, &mark)) < 0 ||
	    (r = proto_field_put_u64(b, LIFE_REALTIME_NS, (uint64_t)ts.tv_sec * 1000000000ULL +
								 (uint64_t)ts.tv_nsec)) < 0 ||
	    (left && (r = proto_field_put_u64(b, LIFE_LEFT_NS, left)) < 0))
		return r;
	return proto_end(b, mark);
}

int sbx_set_time(const char *addr, uint64_t left_ns, struct lifetime *l, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_set_time, &left_ns, err)) < 0)
		return r;
	r = lifetime_answer(c, &f, l, err);
	sbx_close(c);
	return r;
}

static int build_shutdown(struct buf *b, const void *reason)
{
	return proto_shutdown_put(b, reason);
}

int sbx_shutdown(const char *addr, const char *reason, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_shutdown, reason, err)) < 0)
		return r;
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "SHUTDOWN answered with %s", proto_type_name(f.type));
	sbx_close(c);
	return r;
}
