/* libsbx: FORWARD connections (set up without blocking, so one event loop
 * can open many), stdin/stdout through a forward, and the SSH requests
 * (keys, server start). A forward's handshake reads exactly the bytes of
 * each reply frame and nothing more: whatever follows the OK belongs to
 * the guest's service and stays in the socket for the caller. */
#include "libsbx/sbx_net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/relay.h"
#include "lib/util.h"
#include "vsock/addr.h"

#include <linux/vm_sockets.h>

/* The replies a FORWARD handshake reads: HELLO_OK, then OK or ERROR. */
#define REPLY_MAX (4 + PROTO_MSG_MAX)
#define HYBRID_LINE_MAX 64
#define DEFAULT_TIMEOUT_MS 30000

/* ---- dialing ---- */

enum dial_state { DIAL_CONNECT, DIAL_HYBRID, DIAL_REPLY, DIAL_DONE };

struct sbx_dial {
	int fd;
	enum dial_state state;
	struct addr a;
	char addr[160];
	unsigned port;
	uint8_t out[128];       /* CONNECT line; HELLO [+ FORWARD]; [AUTH +] FORWARD */
	size_t out_len, out_off;
	uint8_t in[PROTO_HDR_LEN + REPLY_MAX];
	size_t in_len;
	bool got_hello;
	bool forward_sent;
};


/* Queues HELLO, and FORWARD with it unless a challenge must be answered
 * first: with a token, FORWARD follows AUTH once HELLO_OK came. */
static int queue_request(struct sbx_dial *d)
{
	struct buf b;
	int r;

	buf_init(&b, sizeof(d->out));
	r = proto_hello_put(&b, PROTO_VERSION_MIN, PROTO_VERSION);
	if (r == 0 && !sbx_has_token()) {
		r = proto_forward_put(&b, d->port);
		d->forward_sent = true;
	}
	if (r == 0) {
		memcpy(d->out, buf_head(&b), buf_len(&b));
		d->out_len = buf_len(&b);
		d->out_off = 0;
	}
	buf_free(&b);
	return r;
}

/* After HELLO_OK: [AUTH and] FORWARD. */
static int queue_forward(struct sbx_dial *d, const struct hello_ok *h, struct sbx_error *err)
{
	struct buf b;
	int r = 0;

	buf_init(&b, sizeof(d->out));
	if (h->flags & HELLO_F_AUTH) {
		uint8_t mac[PROTO_AUTH_LEN];

		r = sbx_auth_answer(h->nonce, mac);
		if (r == 0)
			r = proto_put(&b, FT_AUTH, mac, sizeof(mac));
	}
	if (r == 0)
		r = proto_forward_put(&b, d->port);
	if (r == 0) {
		memcpy(d->out, buf_head(&b), buf_len(&b));
		d->out_len = buf_len(&b);
		d->out_off = 0;
		d->forward_sent = true;
	}
	buf_free(&b);
	return r < 0 ? sbx_fail(err, r, "out of memory") : 0;
}

int sbx_dial_start(const char *addr, unsigned port, struct sbx_dial **out, struct sbx_error *err)
{
	struct sbx_dial *d;
	char why[256];
	int r;

	if (port < 1 || port > 65535)
		return sbx_fail(err, EINVAL, "invalid port %u: a port is a number from 1 to 65535", port);
	d = calloc(1, sizeof(*d));
	if (!d)
		return sbx_fail(err, ENOMEM, "out of memory");
	d->fd = -1;
	d->port = port;
	str_copy(d->addr, sizeof(d->addr), addr);
	if (addr_parse(addr, &d->a, why, sizeof(why)) < 0) {
		free(d);
		return sbx_fail(err, EINVAL, "%s", why);
	}
	if (d->a.kind == ADDR_VSOCK) {
		struct sockaddr_vm vm = { .svm_family = AF_VSOCK, .svm_cid = d->a.cid,
					  .svm_port = d->a.port };

		d->fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (d->fd < 0 || (connect(d->fd, (struct sockaddr *)&vm, sizeof(vm)) < 0 &&
				  errno != EINPROGRESS)) {
			r = -errno;
			goto out_fail;
		}
		d->state = DIAL_CONNECT;
	} else {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		/* A Unix connect only waits when the listener's backlog is
		 * full, and sbx's listeners drain theirs in batches. */
		str_copy(un.sun_path, sizeof(un.sun_path), d->a.path);
		d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (d->fd < 0 || connect(d->fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
			r = -errno;
			goto out_fail;
		}
		fd_set_nonblock(d->fd, true);
		if (d->a.kind == ADDR_HYBRID) {
			d->out_len = (size_t)snprintf((char *)d->out, sizeof(d->out), "CONNECT %u\n",
						      d->a.port);
			d->state = DIAL_HYBRID;
		} else {
			if ((r = queue_request(d)) < 0)
				goto out_fail;
			d->state = DIAL_REPLY;
		}
	}
	*out = d;
	return 0;
out_fail:
	sbx_dial_free(d);
	return sbx_fail(err, r, "cannot connect to %s: %s", addr, strerror(-r));
}

int sbx_dial_fd(const struct sbx_dial *d) { return d->fd; }

uint32_t sbx_dial_events(const struct sbx_dial *d)
{
	if (d->state == DIAL_CONNECT || d->out_off < d->out_len)
		return EPOLLOUT;
	return EPOLLIN;
}

void sbx_dial_free(struct sbx_dial *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	free(d);
}

int sbx_dial_take(struct sbx_dial *d)
{
	int fd = d->fd;

	d->fd = -1;
	sbx_dial_free(d);
	return fd;
}

/* Sends what is queued: 1 when done, 0 when the socket is full. */
static int dial_send(struct sbx_dial *d, struct sbx_error *err)
{
	while (d->out_off < d->out_len) {
		ssize_t n = send(d->fd, d->out + d->out_off, d->out_len - d->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return sbx_fail(err, errno, "the connection to %s was lost: %s", d->addr,
				    strerror(errno));
		}
		d->out_off += (size_t)n;
	}
	return 1;
}

/* Reads up to `want` bytes in total into d->in: 1 when there, 0 when
 * more must come. */
static int dial_fill(struct sbx_dial *d, size_t want, struct sbx_error *err)
{
	while (d->in_len < want) {
		ssize_t n = read(d->fd, d->in + d->in_len, want - d->in_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return sbx_fail(err, errno, "the connection to %s was lost: %s", d->addr,
				    strerror(errno));
		}
		if (n == 0)
			return sbx_fail(err, EPIPE, "%s closed the connection before answering", d->addr);
		d->in_len += (size_t)n;
	}
	return 1;
}

/* The hybrid handshake's "OK <port>\n": read with a peek so that not one
 * byte past the newline is consumed. */
static int dial_hybrid(struct sbx_dial *d, struct sbx_error *err)
{
	char line[HYBRID_LINE_MAX + 1];
	ssize_t n = recv(d->fd, line, HYBRID_LINE_MAX, MSG_PEEK);
	char *nl;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 :
			sbx_fail(err, errno, "cannot connect to %s: %s", d->addr, strerror(errno));
	if (n == 0)
		return sbx_fail(err, ECONNREFUSED,
			    "cannot connect to %s: nothing listens on port %u in the guest", d->addr,
			    d->a.port);
	line[n] = '\0';
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if (n == HYBRID_LINE_MAX)
			return sbx_fail(err, EPROTO, "cannot connect to %s: bad handshake reply", d->addr);
		return 0;
	}
	if (read(d->fd, line, (size_t)(nl - line + 1)) != nl - line + 1)
		return sbx_fail(err, EIO, "cannot connect to %s: short read", d->addr);
	if (strncmp(line, "OK ", 3) != 0)
		return sbx_fail(err, ECONNREFUSED, "cannot connect to %s: the guest refused port %u",
			    d->addr, d->a.port);
	if (queue_request(d) < 0)
		return sbx_fail(err, ENOMEM, "out of memory");
	d->state = DIAL_REPLY;
	return 1;
}

/* Reply frames: HELLO_OK first, then OK (done) or ERROR. 2 when more was
 * queued to send. */
static int dial_reply(struct sbx_dial *d, struct sbx_error *err)
{
	struct proto_err pe;
	struct frame f;
	int r;

	for (;;) {
		uint32_t len;

		if ((r = dial_fill(d, PROTO_HDR_LEN, err)) <= 0)
			return r;
		len = get_le32(d->in);
		if (len > REPLY_MAX)
			return sbx_fail(err, EMSGSIZE, "%s sent a %u-byte reply to FORWARD", d->addr, len);
		if ((r = dial_fill(d, PROTO_HDR_LEN + len, err)) <= 0)
			return r;
		if (proto_frame_parse(d->in, d->in_len, &f, &pe) <= 0)
			return sbx_fail(err, pe.code, "bad frame from %s: %s", d->addr, pe.msg);
		d->in_len = 0;
		if (f.type == FT_ERROR) {
			char msg[PROTO_MSG_MAX + 1];
			int code;

			if (proto_error_decode(&f, &code, msg, sizeof(msg), &pe) < 0)
				return sbx_fail(err, pe.code, "bad ERROR frame from %s: %s", d->addr,
					    pe.msg);
			return sbx_fail(err, code, "%s", msg);
		}
		if (!d->got_hello) {
			struct hello_ok h;

			if (f.type != FT_HELLO_OK || proto_hello_ok_decode(&f, &h, &pe) < 0)
				return sbx_fail(err, EPROTO, "%s did not answer HELLO", d->addr);
			if ((h.flags & HELLO_F_AUTH) && !sbx_has_token())
				return sbx_fail(err, EACCES, "%s requires a token", d->addr);
			d->got_hello = true;
			if (!d->forward_sent)
				return (r = queue_forward(d, &h, err)) < 0 ? r : 2;
			continue;
		}
		if (f.type != FT_OK || f.len != 0)
			return sbx_fail(err, EPROTO, "%s answered FORWARD with %s", d->addr,
				    proto_type_name(f.type));
		d->state = DIAL_DONE;
		return 1;
	}
}

int sbx_dial_step(struct sbx_dial *d, struct sbx_error *err)
{
	int r;

	for (;;) {
		switch (d->state) {
		case DIAL_CONNECT: {
			socklen_t len = sizeof(int);
			int e = 0;

			if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
				e = errno;
			if (e == EINPROGRESS || e == EALREADY)
				return 0;
			if (e)
				return sbx_fail(err, e, "cannot connect to %s: %s", d->addr, strerror(e));
			{
				struct pollfd p = { .fd = d->fd, .events = POLLOUT };

				if (poll(&p, 1, 0) == 0)
					return 0; /* not connected yet */
			}
			if ((r = queue_request(d)) < 0)
				return sbx_fail(err, r, "out of memory");
			d->state = DIAL_REPLY;
			break;
		}
		case DIAL_HYBRID:
			if ((r = dial_send(d, err)) <= 0)
				return r;
			if ((r = dial_hybrid(d, err)) <= 0)
				return r;
			break;
		case DIAL_REPLY:
			if ((r = dial_send(d, err)) <= 0)
				return r;
			if ((r = dial_reply(d, err)) != 2)
				return r;
			break;
		case DIAL_DONE:
			return 1;
		}
	}
}

int sbx_forward_open(const char *addr, unsigned port, int timeout_ms, struct sbx_error *err)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : time_mono_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC;
	struct sbx_dial *d;
	int r, fd;

	if ((r = sbx_dial_start(addr, port, &d, err)) < 0)
		return r;
	while ((r = sbx_dial_step(d, err)) == 0) {
		struct pollfd p = { .fd = d->fd, .events = sbx_dial_events(d) == EPOLLIN ? POLLIN : POLLOUT };
		int wait = -1;

		if (deadline) {
			uint64_t now = time_mono_ns();

			if (now >= deadline) {
				r = sbx_fail(err, ETIMEDOUT, "no answer from %s within %d ms", addr,
					 timeout_ms);
				break;
			}
			wait = (int)((deadline - now) / NSEC_PER_MSEC) + 1;
		}
		if (poll(&p, 1, wait) < 0 && errno != EINTR) {
			r = sbx_fail(err, errno, "poll");
			break;
		}
	}
	if (r < 0) {
		sbx_dial_free(d);
		return r;
	}
	fd = sbx_dial_take(d);
	fd_set_nonblock(fd, false);
	return fd;
}

/* ---- stdin/stdout through a forward ---- */

static bool stdio_done;

static void stdio_relay_done(void *arg, const struct relay_stats *st)
{
	stdio_done = true;
}

/* A terminal's open file description is shared with the shell: give the
 * relay a private one, so making it non-blocking stays ours. */
static void private_tty(int fd, int flags)
{
	char path[32];
	int nfd;

	if (!isatty(fd))
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, flags | O_NOCTTY | O_CLOEXEC);
	if (nfd < 0)
		return;
	dup2(nfd, fd);
	close(nfd);
}

int sbx_forward_stdio(const char *addr, unsigned port, struct sbx_error *err)
{
	int fd, r;

	fd = sbx_forward_open(addr, port, DEFAULT_TIMEOUT_MS, err);
	if (fd < 0)
		return fd;
	signal(SIGPIPE, SIG_IGN);
	if ((r = loop_init()) < 0) {
		close(fd);
		return sbx_fail(err, r, "cannot create an event loop");
	}
	private_tty(0, O_RDONLY);
	private_tty(1, O_WRONLY);
	r = relay_start(&(struct relay_end){ 0, 1 }, &(struct relay_end){ fd, fd },
			stdio_relay_done, NULL);
	if (r < 0)
		return sbx_fail(err, r, "cannot relay standard input and output: %s", strerror(-r));
	while (!stdio_done)
		if ((r = loop_run_once(-1)) < 0)
			return sbx_fail(err, r, "event loop");
	return 0;
}

/* ---- SSH requests ---- */

/* Sends one request frame (already in c's queue) and reads its reply. */
static int request(struct sbx_conn *c, struct frame *f, struct sbx_error *err)
{
	int r = sbx_flush(c, err);

	return r < 0 ? r : sbx_recv(c, f, DEFAULT_TIMEOUT_MS, err);
}

static int key_request(const char *addr, uint16_t type, const char *user, const char *key,
		       void (*fn)(void *arg, const char *line), void *arg, struct sbx_error *err)
{
	char line[SSH_KEY_LINE_MAX + 1];
	struct sbx_conn *c;
	struct proto_err pe;
	struct ssh_pubkey k;
	struct frame f;
	int r;

	if (user && strlen(user) > NET_USER_MAX)
		return sbx_fail(err, EINVAL, "user name too long: %s", user);
	if (key) {
		/* One line: drop the newline a .pub file ends with. */
		size_t len = strcspn(key, "\r\n");

		if (key[len] && key[len + strspn(key + len, "\r\n")])
			return sbx_fail(err, EINVAL, "malformed key: give one key, on one line");
		if (len > SSH_KEY_LINE_MAX)
			return sbx_fail(err, EINVAL, "malformed key: longer than %d bytes",
				    SSH_KEY_LINE_MAX);
		memcpy(line, key, len);
		line[len] = '\0';
		if (ssh_key_parse(line, len, &k, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		key = line;
	}
	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	if (proto_ssh_key_put(sbx_txbuf(c), type, user, key) < 0) {
		r = sbx_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	if ((r = request(c, &f, err)) < 0)
		goto out;
	if (type == FT_SSH_KEY_LIST) {
		if (f.type != FT_SSH_KEYS) {
			r = sbx_fail(err, EPROTO, "%s answered SSH_KEY_LIST with %s", addr,
				 proto_type_name(f.type));
			goto out;
		}
		if ((r = proto_ssh_keys_decode(&f, fn, arg, &pe)) < 0)
			r = sbx_fail(err, pe.code, "bad SSH_KEYS from %s: %s", addr, pe.msg);
	} else if (f.type != FT_OK) {
		r = sbx_fail(err, EPROTO, "%s answered %s with %s", addr, proto_type_name(type),
			 proto_type_name(f.type));
	}
out:
	sbx_close(c);
	return r;
}

int sbx_ssh_key_add(const char *addr, const char *user, const char *key, struct sbx_error *err)
{
	return key_request(addr, FT_SSH_KEY_ADD, user, key, NULL, NULL, err);
}

int sbx_ssh_key_remove(const char *addr, const char *user, const char *key,
		       struct sbx_error *err)
{
	return key_request(addr, FT_SSH_KEY_REMOVE, user, key, NULL, NULL, err);
}

int sbx_ssh_key_list(const char *addr, const char *user,
		     void (*fn)(void *arg, const char *line), void *arg, struct sbx_error *err)
{
	return key_request(addr, FT_SSH_KEY_LIST, user, NULL, fn, arg, err);
}

int sbx_ssh_start(const char *addr, struct ssh_server_info *out, struct sbx_error *err)
{
	char fp[SSH_FINGERPRINT_MAX + 1];
	struct sbx_conn *c;
	struct proto_err pe;
	struct ssh_pubkey k;
	struct frame f;
	int r;

	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	if (proto_ssh_start_put(sbx_txbuf(c)) < 0) {
		r = sbx_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	if ((r = request(c, &f, err)) < 0)
		goto out;
	if (f.type != FT_SSH_SERVER) {
		r = sbx_fail(err, EPROTO, "%s answered SSH_START with %s", addr, proto_type_name(f.type));
		goto out;
	}
	if ((r = proto_ssh_server_decode(&f, out, &pe)) < 0) {
		r = sbx_fail(err, pe.code, "bad SSH_SERVER from %s: %s", addr, pe.msg);
		goto out;
	}
	/* The key is what gets pinned; the fingerprint must describe it. */
	if (ssh_key_parse(out->host_key, strlen(out->host_key), &k, &pe) < 0) {
		r = sbx_fail(err, EPROTO, "the sandbox reported a bad SSH host key: %s", pe.msg);
		goto out;
	}
	ssh_key_fingerprint(k.blob, k.blob_len, fp);
	if (strcmp(fp, out->fingerprint) != 0)
		r = sbx_fail(err, EPROTO, "the sandbox's SSH host key does not match its fingerprint "
			 "(%s, reported %s)", fp, out->fingerprint);
out:
	sbx_close(c);
	return r;
}
