/* sbx-hostile: a raw client of the agent. It sends what it is told,
 * right or wrong, and reads the answer a client would get; the expect_*
 * checks say in `why` what differed. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"
#include "vsock/proto_fs.h"
#include "tests/tools/hostile/hostile.h"

int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return -1;
}

uint64_t now_ms(void)
{
	return time_mono_ns() / NSEC_PER_MSEC;
}

/* ---- a raw client ---- */

int peer_open(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->rx, 4 * PROTO_FRAME_MAX);
	p->fd = addr_connect(&agent, 5000);
	if (p->fd < 0)
		return fail("cannot connect: %s", strerror(-p->fd));
	return 0;
}

void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	buf_free(&p->rx);
}

/* Sends everything; a peer that closed on us is not an error here (the
 * answer it left says what happened). */
int send_raw(struct peer *p, const void *data, size_t len)
{
	const uint8_t *d = data;

	while (len) {
		ssize_t n = send(p->fd, d, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		d += n;
		len -= (size_t)n;
	}
	return 0;
}

int send_buf(struct peer *p, struct buf *b)
{
	int r = send_raw(p, buf_head(b), buf_len(b));

	buf_consume(b, buf_len(b));
	return r;
}

int send_frame(struct peer *p, uint16_t type, const void *payload, size_t len)
{
	struct buf b;
	int r;

	buf_init(&b, PROTO_HDR_LEN + PROTO_FRAME_MAX);
	r = proto_put(&b, type, payload, len);
	if (r == 0)
		r = send_buf(p, &b);
	buf_free(&b);
	return r;
}

/* HELLO; with a token, also wait for HELLO_OK and prove it (AUTH). */
int send_hello(struct peer *p)
{
	struct hello_ok h;
	struct proto_err e;
	uint8_t mac[PROTO_AUTH_LEN];
	struct frame f;
	struct buf b;
	int r;

	buf_init(&b, 64);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	r = send_buf(p, &b);
	if (r == 0 && token) {
		if (recv_frame(p, &f, RECV_MS) != 1 || f.type != FT_HELLO_OK ||
		    proto_hello_ok_decode(&f, &h, &e) < 0 || !(h.flags & HELLO_F_AUTH)) {
			r = fail("no HELLO_OK asking for the token");
		} else {
			proto_auth_mac(auth_key, h.nonce, mac);
			proto_put(&b, FT_AUTH, mac, sizeof(mac));
			r = send_buf(p, &b);
		}
	}
	buf_free(&b);
	return r;
}

/* The next frame: 1, 0 at the end of the stream, or -errno (-ETIMEDOUT,
 * -EBADMSG for bytes that are not a frame). f is valid until the next
 * call. */
int recv_frame(struct peer *p, struct frame *f, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	buf_consume(&p->rx, p->consumed);
	p->consumed = 0;
	for (;;) {
		struct proto_err e;
		long n = proto_frame_parse(buf_head(&p->rx), buf_len(&p->rx), f, &e);
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		ssize_t k;
		int wait;

		if (n > 0) {
			p->consumed = (size_t)n;
			return 1;
		}
		if (n < 0) {
			fail("the agent sent bytes that are not a frame: %s", e.msg);
			return -EBADMSG;
		}
		if (p->eof) {
			if (buf_len(&p->rx)) {
				fail("the stream ended inside a frame (%zu bytes left)", buf_len(&p->rx));
				return -EBADMSG;
			}
			return 0;
		}
		wait = (int)(deadline > now_ms() ? deadline - now_ms() : 0);
		if (poll(&pfd, 1, wait) == 0) {
			fail("no answer within %d ms", timeout_ms);
			return -ETIMEDOUT;
		}
		if (buf_reserve(&p->rx, 65536) < 0) {
			fail("the agent sent more than %zu bytes", p->rx.max);
			return -ENOBUFS;
		}
		k = recv(p->fd, buf_tail(&p->rx), buf_room(&p->rx), 0);
		if (k > 0)
			buf_commit(&p->rx, (size_t)k);
		else if (k == 0 || errno == ECONNRESET)
			p->eof = true; /* reset: it closed with our bytes unread */
		else if (errno != EINTR)
			return fail("recv: %s", strerror(errno)), -errno;
	}
}

/* The frame after HELLO_OK (which is checked when it comes). */
int recv_answer(struct peer *p, struct frame *f, int timeout_ms)
{
	int r = recv_frame(p, f, timeout_ms);

	if (r == 1 && f->type == FT_HELLO_OK) {
		struct hello_ok h;
		struct proto_err e;

		if (proto_hello_ok_decode(f, &h, &e) < 0 || h.version != PROTO_VERSION)
			return fail("bad HELLO_OK: %s", e.msg), -EBADMSG;
		r = recv_frame(p, f, timeout_ms);
	}
	return r;
}

int expect_eof(struct peer *p)
{
	struct frame f;
	int r = recv_frame(p, &f, RECV_MS);

	if (r == 1)
		return fail("a %s frame came after the final answer", proto_type_name(f.type));
	return r < 0 ? -1 : 0;
}

/* An ERROR with this code whose message contains `text`, then the end of
 * the connection. */
int expect_error(struct peer *p, int code, const char *text)
{
	char msg[PROTO_MSG_MAX + 1];
	struct proto_err e;
	struct frame f;
	int r = recv_answer(p, &f, RECV_MS), got;

	if (r == 0)
		return fail("the connection closed without an ERROR (wanted %s \"%s\")",
			    strerror(code), text);
	if (r < 0)
		return -1;
	if (f.type != FT_ERROR)
		return fail("got %s, wanted ERROR %d \"%s\"", proto_type_name(f.type), code, text);
	if (proto_error_decode(&f, &got, msg, sizeof(msg), &e) < 0)
		return fail("bad ERROR frame: %s", e.msg);
	if (got != code || !strstr(msg, text))
		return fail("ERROR %d \"%.300s\", wanted %d (%s) \"%s\"", got, msg, code,
			    strerror(code), text);
	return expect_eof(p);
}

/* STARTED (unless the command did not start), output, then EXIT with
 * how/value and a message containing `text`; out gets stdout. */
int expect_exit(struct peer *p, int how, int value, const char *text, struct buf *out)
{
	static struct exit_status x;
	struct proto_err e;
	struct frame f;
	int r;

	for (;;) {
		r = recv_answer(p, &f, RECV_MS);
		if (r == 0)
			return fail("the connection closed before EXIT");
		if (r < 0)
			return -1;
		if (f.type == FT_STDOUT && out && buf_append(out, f.payload, f.len) < 0)
			return fail("too much output");
		if (f.type == FT_ERROR) {
			char msg[PROTO_MSG_MAX + 1];
			int code = 0;

			proto_error_decode(&f, &code, msg, sizeof(msg), &e);
			return fail("ERROR %d \"%.300s\" instead of EXIT", code, msg);
		}
		if (f.type == FT_EXIT)
			break;
		if (f.type != FT_STARTED && f.type != FT_STDOUT && f.type != FT_STDERR)
			return fail("unexpected %s during a command", proto_type_name(f.type));
	}
	if (proto_exit_decode(&f, &x, &e) < 0)
		return fail("bad EXIT: %s", e.msg);
	if (x.how != how || x.value != value || !strstr(x.msg, text))
		return fail("EXIT how %d value %d \"%.300s\", wanted how %d value %d \"%s\"", x.how,
			    x.value, x.msg, how, value, text);
	return expect_eof(p);
}

/* ---- requests ---- */

int send_exec(struct peer *p, char **argv, char **env, const char *cwd, uint32_t flags)
{
	struct exec_req r = { .argv = argv, .env = env, .cwd = (char *)cwd, .flags = flags };
	struct buf b;
	int rc;

	while (argv && argv[r.argc])
		r.argc++;
	while (env && env[r.envc])
		r.envc++;
	buf_init(&b, 2 * PROTO_FRAME_MAX);
	rc = proto_exec_put(&b, &r);
	if (rc == 0)
		rc = send_buf(p, &b);
	buf_free(&b);
	return rc < 0 ? fail("cannot send EXEC: %s", strerror(-rc)) : 0;
}

/* HELLO, then one frame made of fields, in one write; the list ends with
 * tag 0. */
int send_fields(struct peer *p, uint16_t type, const struct field *fields)
{
	struct buf b;
	size_t mark;
	int r;

	buf_init(&b, 2 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_begin(&b, type, &mark);
	for (; fields->tag; fields++)
		proto_field_put(&b, fields->tag, fields->data, fields->len);
	r = proto_end(&b, mark);
	if (r == 0)
		r = send_buf(p, &b);
	buf_free(&b);
	return r;
}

const uint8_t *u32le(uint32_t v)
{
	static uint8_t s[8][4];
	static int i;
	uint8_t *p = s[i++ % 8];

	put_le32(p, v);
	return p;
}

/* One-shot: connect, HELLO, the request, then check the ERROR. */
int request_error(uint16_t type, const void *payload, size_t len, int code,
			 const char *text)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_frame(&p, type, payload, len);
	r = expect_error(&p, code, text);
	peer_close(&p);
	return r;
}

/* A command run to its end; stdout in out (may be NULL). */
int run(char **argv, char **env, const char *cwd, uint32_t flags, int how, int value,
	       const char *text, struct buf *out)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	r = send_exec(&p, argv, env, cwd, flags);
	if (r == 0)
		r = expect_exit(&p, how, value, text, out);
	peer_close(&p);
	return r;
}

int out_is(struct buf *out, const char *want)
{
	size_t n = strlen(want);

	if (buf_len(out) != n || memcmp(buf_head(out), want, n) != 0)
		return fail("stdout is %zu bytes \"%.*s\", wanted \"%s\"", buf_len(out),
			    (int)MIN(buf_len(out), 200u), (const char *)buf_head(out), want);
	return 0;
}

/* EXIT 0 on p, with stdout exactly want. */
int exit_prints(struct peer *p, const char *want)
{
	struct buf out;
	int r;

	buf_init(&out, 4096);
	r = expect_exit(p, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, want);
	buf_free(&out);
	return r;
}

/* A command run to EXIT 0, with stdout exactly want. */
int run_prints(char **argv, char **env, const char *cwd, const char *want)
{
	struct buf out;
	int r;

	buf_init(&out, 4096);
	r = run(argv, env, cwd, 0, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, want);
	buf_free(&out);
	return r;
}

char *long_path(size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	for (size_t i = 0; i < len; i++)
		p[i] = i % 100 == 0 ? '/' : 'a';
	p[len] = '\0';
	return p;
}

/* A command started on p and left running: `sleep`, or `sh -c` with a
 * PTY when pty is set. Reads up to STARTED. */
/* Connects and sends HELLO and r in one write. */
int open_exec(struct peer *p, const struct exec_req *r)
{
	struct buf b;

	if (peer_open(p) < 0)
		return -1;
	buf_init(&b, PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, r);
	send_buf(p, &b);
	buf_free(&b);
	return 0;
}

int start_cmd(struct peer *p, bool pty, uint32_t flags, pid_t *pid)
{
	char *argv[] = { "sleep", "30", NULL };
	struct exec_req r = { .argv = argv, .argc = 2, .flags = flags, .pty = pty, .rows = 24,
			      .cols = 80 };
	struct frame f;
	uint32_t v = 0;
	struct proto_err e;
	int rc;

	if (open_exec(p, &r) < 0)
		return -1;
	rc = recv_answer(p, &f, RECV_MS);
	if (rc != 1 || f.type != FT_STARTED || proto_u32_decode(&f, &v, &e) < 0)
		return fail("the command did not start (%s)", rc == 1 ? proto_type_name(f.type) : why);
	if (pid)
		*pid = (pid_t)v;
	return 0;
}

/* HELLO, then HELLO_OK with the auth flag and a nonce. */
int hello_for_nonce(struct peer *p, uint8_t nonce[PROTO_NONCE_LEN])
{
	static const uint8_t zero[PROTO_NONCE_LEN];
	struct hello_ok h;
	struct proto_err e;
	struct frame f;
	struct buf b;
	int r;

	if (peer_open(p) < 0)
		return -1;
	buf_init(&b, 64);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	send_buf(p, &b);
	buf_free(&b);
	r = recv_frame(p, &f, RECV_MS);
	if (r != 1 || f.type != FT_HELLO_OK || proto_hello_ok_decode(&f, &h, &e) < 0)
		return fail("no HELLO_OK: %s", r == 1 ? proto_type_name(f.type) : why);
	if (!(h.flags & HELLO_F_AUTH) || memcmp(h.nonce, zero, sizeof(zero)) == 0)
		return fail("HELLO_OK does not ask for the token (flags 0x%x)", h.flags);
	memcpy(nonce, h.nonce, PROTO_NONCE_LEN);
	return 0;
}

static int fs_request(uint16_t type, const char *path, const char *path2, const char *target,
		      uint32_t flags, struct peer *p)
{
	struct fs_req r = { .type = type, .path = (char *)path, .path2 = (char *)path2,
			    .target = (char *)target, .flags = flags };
	struct buf b;
	int rc;

	if (flags)
		r.have |= FS_HAVE(FS_FLAGS);
	if (peer_open(p) < 0)
		return -1;
	buf_init(&b, 2 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	rc = proto_fs_req_put(&b, &r);
	if (rc == 0)
		rc = send_buf(p, &b);
	buf_free(&b);
	return rc < 0 ? fail("cannot send %s: %s", proto_type_name(type), strerror(-rc)) : 0;
}

/* The one answer of type want (its payload copied into text, of n bytes,
 * when text is given), then the end of the connection; `what` names the
 * request when it fails. */
int expect_answer(struct peer *p, uint16_t want, const char *what, char *text, size_t n)
{
	struct frame f;
	int r = recv_answer(p, &f, RECV_MS);

	if (r == 0)
		return fail("%s: the connection closed without an answer", what);
	if (r < 0)
		return -1;
	if (f.type != want) {
		char msg[PROTO_MSG_MAX + 1] = "";
		struct proto_err e;
		int code = 0;

		if (f.type == FT_ERROR)
			proto_error_decode(&f, &code, msg, sizeof(msg), &e);
		return fail("%s: got %s %d \"%.300s\"", what, proto_type_name(f.type), code, msg);
	}
	if (text)
		snprintf(text, n, "%.*s", (int)f.len, (const char *)f.payload);
	return expect_eof(p);
}

/* A file request answered OK (or PATH_OK / STAT_OK, whose payload goes to
 * text). */
int fs_expect(uint16_t type, const char *path, const char *path2, const char *target,
	      uint32_t flags, uint16_t want, char *text, size_t n)
{
	char what[300];
	struct peer p;
	int r;

	snprintf(what, sizeof(what), "%s %.200s", proto_type_name(type), path);
	if (fs_request(type, path, path2, target, flags, &p) < 0)
		return -1;
	r = expect_answer(&p, want, what, text, n);
	peer_close(&p);
	return r < 0 ? -1 : 0;
}

int fs_error(uint16_t type, const char *path, const char *path2, uint32_t flags, int code,
		    const char *text)
{
	struct peer p;
	int r;

	if (fs_request(type, path, path2, NULL, flags, &p) < 0)
		return -1;
	r = expect_error(&p, code, text);
	peer_close(&p);
	return r;
}

/* A case as data: connect, get to where c->start says, send the bad frame,
 * and check the ERROR (then the end of the connection). */
int bad_frame_check(const struct bad_frame *c)
{
	uint8_t nonce[PROTO_NONCE_LEN], hdr[PROTO_HDR_LEN];
	struct peer p;
	int r = 0;

	switch (c->start) {
	case IN_COMMAND:
	case IN_PTY_COMMAND:
		r = start_cmd(&p, c->start == IN_PTY_COMMAND, 0, NULL);
		break;
	case AFTER_NONCE:
		r = hello_for_nonce(&p, nonce);
		break;
	case AFTER_HELLO:
	case NO_HELLO:
		r = peer_open(&p);
		if (r == 0 && c->start == AFTER_HELLO && c->shape != FIELDS && send_hello(&p) < 0)
			r = why[0] ? -1 : fail("cannot send HELLO");
		break;
	}
	if (r < 0) {
		peer_close(&p);
		return -1;
	}
	switch (c->shape) {
	case PAYLOAD:
		send_frame(&p, c->type, c->bytes, c->len);
		break;
	case FIELDS:
		send_fields(&p, c->type, c->fields);
		break;
	case HEADER:
		proto_hdr_put(hdr, c->type, c->claim);
		hdr[6] = c->hdr_flags;
		send_raw(&p, hdr, sizeof(hdr));
		break;
	case RAW:
		send_raw(&p, c->bytes, c->len);
		break;
	}
	r = expect_error(&p, c->code, c->text);
	peer_close(&p);
	return r;
}
