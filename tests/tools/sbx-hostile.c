/* sbx-hostile: the table of hostile inputs of issue 7, sent over a real
 * connection to a real agent. Each case builds its bytes with the codec
 * (vsock/proto*.h) or by hand, sends them, and checks the answer a client
 * gets: an ERROR with the documented code and a message naming what was
 * wrong, or an EXIT. After every case the agent must still serve (an echo
 * command works), its server process must be the same one (no crash, no
 * restart), and its fd count and RSS must come back to where they were.
 *
 *   sbx-hostile ADDR SERVER_PID SCRATCH_DIR [CASE...]
 *
 * CASE selects cases whose name contains it. Prints "# plan: N cases",
 * then TAP lines "ok - SUITE: case" (SUITE from $HOSTILE_SUITE, default
 * "hostile"); exits 0 only when every case passed.
 * With $HOSTILE_TOKEN (the agent's token) only the "auth:" cases run,
 * which need an agent with a token; without, they do not.
 * $HOSTILE_RSS_SLACK_KIB is how far above its baseline the server's RSS
 * may stay after a case (default 512 KiB: allocator noise); floods may
 * take it 4 MiB (or that slack) above while they last. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "vsock/addr.h"
#include "vsock/proto.h"
#include "vsock/proto_fs.h"
#include "vsock/proto_net.h"

#define RECV_MS 15000            /* an answer takes at most this long (> HANDSHAKE_S) */
#define SETTLE_MS 8000           /* for the server to give back fds and memory */
#define HANDSHAKE_S 10           /* server/conn.c HANDSHAKE_NS */
#define CONN_MAX 1024            /* server/server.c CONN_MAX */

static struct addr agent;
static pid_t server;
static const char *scratch;
static const char *suite = "hostile";
static const char *token;        /* $HOSTILE_TOKEN: the agent's, for the auth: cases */
static uint8_t auth_key[32];
static long rss_slack_kib = 512;
static char why[2048];
static int base_fds;
static long base_rss;
static long worst_rss_delta;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return -1;
}

static uint64_t now_ms(void)
{
	return time_mono_ns() / NSEC_PER_MSEC;
}

/* ---- a raw client ---- */

struct peer {
	int fd;
	struct buf rx;
	size_t consumed; /* bytes of rx the last frame returned used */
	bool eof;
};

static int peer_open(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->rx, 4 * PROTO_FRAME_MAX);
	p->fd = addr_connect(&agent, 5000);
	if (p->fd < 0)
		return fail("cannot connect: %s", strerror(-p->fd));
	return 0;
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	buf_free(&p->rx);
}

/* Sends everything; a peer that closed on us is not an error here (the
 * answer it left says what happened). */
static int send_raw(struct peer *p, const void *data, size_t len)
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

static int send_buf(struct peer *p, struct buf *b)
{
	int r = send_raw(p, buf_head(b), buf_len(b));

	buf_consume(b, buf_len(b));
	return r;
}

static int send_frame(struct peer *p, uint16_t type, const void *payload, size_t len)
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

static int recv_frame(struct peer *p, struct frame *f, int timeout_ms);

/* HELLO; with a token, also wait for HELLO_OK and prove it (AUTH). */
static int send_hello(struct peer *p)
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
static int recv_frame(struct peer *p, struct frame *f, int timeout_ms)
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
static int recv_answer(struct peer *p, struct frame *f, int timeout_ms)
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

static int expect_eof(struct peer *p)
{
	struct frame f;
	int r = recv_frame(p, &f, RECV_MS);

	if (r == 1)
		return fail("a %s frame came after the final answer", proto_type_name(f.type));
	return r < 0 ? -1 : 0;
}

/* An ERROR with this code whose message contains `text`, then the end of
 * the connection. */
static int expect_error(struct peer *p, int code, const char *text)
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
static int expect_exit(struct peer *p, int how, int value, const char *text, struct buf *out)
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

static int send_exec(struct peer *p, char **argv, char **env, const char *cwd, uint32_t flags)
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

/* HELLO, then one frame made of fields given as (tag, bytes, len) triples,
 * ending with tag 0. */
static int send_fields(struct peer *p, uint16_t type, ...)
{
	struct buf b;
	size_t mark;
	va_list ap;
	int r;

	buf_init(&b, 2 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_begin(&b, type, &mark);
	va_start(ap, type);
	for (;;) {
		int tag = va_arg(ap, int);
		const void *v;
		size_t len;

		if (tag == 0)
			break;
		v = va_arg(ap, const void *);
		len = va_arg(ap, size_t);
		proto_field_put(&b, (uint16_t)tag, v, len);
	}
	va_end(ap);
	r = proto_end(&b, mark);
	if (r == 0)
		r = send_buf(p, &b);
	buf_free(&b);
	return r;
}

static const uint8_t *u32le(uint32_t v)
{
	static uint8_t s[8][4];
	static int i;
	uint8_t *p = s[i++ % 8];

	put_le32(p, v);
	return p;
}

/* One-shot: connect, HELLO, the request, then check the ERROR. */
static int request_error(uint16_t type, const void *payload, size_t len, int code,
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
static int run(char **argv, char **env, const char *cwd, uint32_t flags, int how, int value,
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

static int out_is(struct buf *out, const char *want)
{
	size_t n = strlen(want);

	if (buf_len(out) != n || memcmp(buf_head(out), want, n) != 0)
		return fail("stdout is %zu bytes \"%.*s\", wanted \"%s\"", buf_len(out),
			    (int)MIN(buf_len(out), 200u), (const char *)buf_head(out), want);
	return 0;
}

/* ---- the server's health ---- */

static int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static bool server_alive(void)
{
	char path[64], buf[512], *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)server);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static int echo_works(void)
{
	char *argv[] = { "echo", "still-serving", NULL };
	struct buf out;
	int r;

	buf_init(&out, 4096);
	r = run(argv, NULL, NULL, 0, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "still-serving\n");
	buf_free(&out);
	return r;
}

/* Processes whose command line contains `marker`. */
static int procs_with(const char *marker)
{
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		char path[300], cmd[4096];
		ssize_t k;
		int fd;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (k <= 0)
			continue;
		for (ssize_t i = 0; i < k; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[k] = '\0';
		n += strstr(cmd, marker) != NULL;
	}
	closedir(dir);
	return n;
}

static int wait_procs_gone(const char *marker, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	while (procs_with(marker) > 0) {
		if (now_ms() > deadline)
			return fail("%d processes with '%s' are still there after %d ms",
				    procs_with(marker), marker, ms);
		usleep(20000);
	}
	return 0;
}

/* After a case: the same server serves, and gives back what it took. */
static int healthy(void)
{
	uint64_t deadline;
	int fds = -1;
	long rss = -1;

	if (!server_alive())
		return fail("the server process %d is gone (crashed?)", (int)server);
	if (echo_works() < 0) {
		char saved[sizeof(why)];

		memcpy(saved, why, sizeof(saved));
		return fail("the agent no longer runs commands: %s", saved);
	}
	deadline = now_ms() + SETTLE_MS;
	for (;;) {
		fds = fd_count(server);
		rss = rss_kib(server);
		if (fds == base_fds && rss >= 0 && rss <= base_rss + rss_slack_kib)
			break;
		if (now_ms() > deadline)
			return fail("the server holds %d fds (%d before) and %ld KiB RSS (%ld before, "
				    "%ld allowed above)", fds, base_fds, rss, base_rss, rss_slack_kib);
		usleep(20000);
	}
	if (rss - base_rss > worst_rss_delta)
		worst_rss_delta = rss - base_rss;
	if (!server_alive())
		return fail("the server process %d is gone (crashed?)", (int)server);
	return 0;
}

/* ---- the cases ---- */

static int c_garbage_http(void)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: sandbox\r\n\r\n";

	/* "GET " read as a length: 542,393,671 bytes. */
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_raw(&p, req, sizeof(req) - 1);
	r = expect_error(&p, EMSGSIZE, "frame of 542393671 bytes exceeds the 1048576-byte limit");
	peer_close(&p);
	return r;
}

static int c_garbage_small_frame(void)
{
	struct peer p;
	int r;

	/* A well-formed frame of an unknown type where HELLO belongs. */
	if (peer_open(&p) < 0)
		return -1;
	send_frame(&p, 0x7777, "junk", 4);
	r = expect_error(&p, EPROTO, "expected HELLO, got frame type 0x7777");
	peer_close(&p);
	return r;
}

static int c_request_before_hello(void)
{
	struct peer p;
	int r;

	/* A valid request, but no HELLO first. */
	if (peer_open(&p) < 0)
		return -1;
	send_frame(&p, FT_INFO, NULL, 0);
	r = expect_error(&p, EPROTO, "expected HELLO, got frame type 0x0070 (INFO)");
	peer_close(&p);
	return r;
}

static int c_garbage_random(void)
{
	uint8_t junk[4096];
	struct peer p;
	int r;

	/* Random bytes with a length the agent will wait for: header says
	 * 3000 bytes of type 0x0001, then junk, so HELLO's check fails. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 2654435761u >> 13);
	proto_hdr_put(junk, FT_HELLO, 3000);
	if (peer_open(&p) < 0)
		return -1;
	send_raw(&p, junk, PROTO_HDR_LEN + 3000);
	r = expect_error(&p, EBADMSG, "HELLO payload is 3000 bytes, expected 8");
	peer_close(&p);
	return r;
}

static int c_truncated_close(void)
{
	uint8_t hdr[PROTO_HDR_LEN + 4] = { 0 };
	struct peer p;

	/* Half a HELLO, then the client goes. Nobody is left to answer. */
	proto_hdr_put(hdr, FT_HELLO, 8);
	memcpy(hdr + PROTO_HDR_LEN, "SBX", 4);
	if (peer_open(&p) < 0)
		return -1;
	send_raw(&p, hdr, sizeof(hdr));
	peer_close(&p);
	/* And a torn header (3 bytes) on another connection. */
	if (peer_open(&p) < 0)
		return -1;
	send_raw(&p, hdr, 3);
	peer_close(&p);
	return 0;
}

static int c_truncated_request_close(void)
{
	struct peer p;
	uint8_t hdr[PROTO_HDR_LEN];

	/* HELLO, then an EXEC header promising 1 MiB and 100 bytes of it. */
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	proto_hdr_put(hdr, FT_EXEC, PROTO_FRAME_MAX);
	send_raw(&p, hdr, sizeof(hdr));
	send_raw(&p, "\x01\x00\x10\x00\x00\x00" "0123456789", 16);
	usleep(100000);
	peer_close(&p);
	return 0;
}

static int c_len_4g(void)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct peer p;
	int r;

	proto_hdr_put(hdr, FT_HELLO, 0xffffffffu);
	if (peer_open(&p) < 0)
		return -1;
	send_raw(&p, hdr, sizeof(hdr));
	r = expect_error(&p, EMSGSIZE, "frame of 4294967295 bytes exceeds the 1048576-byte limit");
	peer_close(&p);
	return r;
}

static int c_len_4g_after_hello(void)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct peer p;
	int r;

	proto_hdr_put(hdr, FT_EXEC, 0xffffffffu);
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_raw(&p, hdr, sizeof(hdr));
	r = expect_error(&p, EMSGSIZE, "frame of 4294967295 bytes exceeds");
	peer_close(&p);
	return r;
}

static int c_len_1m_plus_1(void)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct peer p;
	int r;

	/* One byte over the cap: refused on the header alone. */
	proto_hdr_put(hdr, FT_EXEC, PROTO_FRAME_MAX + 1);
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_raw(&p, hdr, sizeof(hdr));
	r = expect_error(&p, EMSGSIZE, "frame of 1048577 bytes exceeds the 1048576-byte limit");
	peer_close(&p);
	return r;
}

static int c_reserved_flags(void)
{
	uint8_t fr[PROTO_HDR_LEN];
	struct peer p;
	int r;

	proto_hdr_put(fr, FT_INFO, 0);
	fr[6] = 0x80;
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_raw(&p, fr, sizeof(fr));
	r = expect_error(&p, EPROTO, "frame INFO has reserved flags 0x80 set");
	peer_close(&p);
	return r;
}

static int c_unknown_type(void)
{
	return request_error(0x7777, NULL, 0, EOPNOTSUPP,
			     "unknown operation: frame type 0x7777 (unknown)");
}

static int c_unknown_fs_type(void)
{
	return request_error(0x003f, NULL, 0, EOPNOTSUPP, "unknown file operation 0x003f");
}

static int c_unknown_net_type(void)
{
	return request_error(0x005f, NULL, 0, EOPNOTSUPP, "is not implemented by this agent");
}

static int c_reply_type_as_request(void)
{
	uint8_t x[8] = { 0 };

	/* A frame only the agent sends (EXIT), sent to it. */
	return request_error(FT_EXIT, x, sizeof(x), EOPNOTSUPP, "frame type 0x0113 (EXIT)");
}

static int c_stream_before_request(void)
{
	return request_error(FT_STDIN, "data", 4, EOPNOTSUPP, "frame type 0x0100 (STDIN)");
}

static int hello_error(uint16_t lo, uint16_t hi, const char *magic, size_t len, int code,
		       const char *text)
{
	uint8_t h[16] = { 0 };
	struct peer p;
	int r;

	memcpy(h, magic, 4);
	put_le16(h + 4, lo);
	put_le16(h + 6, hi);
	if (peer_open(&p) < 0)
		return -1;
	send_frame(&p, FT_HELLO, h, len);
	r = expect_error(&p, code, text);
	peer_close(&p);
	return r;
}

static int c_wrong_version(void)
{
	return hello_error(2, 3, "SBX", 8, EPROTONOSUPPORT,
			   "no common protocol version: client 2-3, agent 1-1");
}

static int c_version_0(void)
{
	return hello_error(0, 0, "SBX", 8, EPROTONOSUPPORT, "client 0-0, agent 1-1");
}

static int c_version_range_empty(void)
{
	return hello_error(3, 1, "SBX", 8, EINVAL, "HELLO version range 3-1 is empty");
}

static int c_bad_magic(void)
{
	return hello_error(1, 1, "SSH-", 8, EPROTO, "bad magic number: not an sbx peer");
}

static int c_hello_short(void)
{
	return hello_error(1, 1, "SBX", 7, EBADMSG, "HELLO payload is 7 bytes, expected 8");
}

static int c_hello_twice(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_hello(&p);
	r = expect_error(&p, EOPNOTSUPP, "frame type 0x0001 (HELLO)");
	peer_close(&p);
	return r;
}

static int c_auth_without_token(void)
{
	uint8_t mac[PROTO_AUTH_LEN] = { 0 };

	/* This agent has no token: AUTH is not an operation. */
	return request_error(FT_AUTH, mac, sizeof(mac), EOPNOTSUPP, "frame type 0x0003 (AUTH)");
}

static int fields_case(int code, const char *text, int (*send)(struct peer *p))
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send(&p);
	r = expect_error(&p, code, text);
	peer_close(&p);
	return r;
}

static int s_exec_no_arg(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_CWD, "/", (size_t)1, 0);
}

static int c_exec_missing_argv(void)
{
	return fields_case(EINVAL, "EXEC: no program given (field ARG is missing)", s_exec_no_arg);
}

static int s_exec_empty_prog(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "", (size_t)0, EXEC_ARG, "x", (size_t)1, 0);
}

static int c_exec_empty_argv0(void)
{
	return fields_case(EINVAL, "EXEC: the program name is empty", s_exec_empty_prog);
}

static int s_exec_cwd_twice(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "true", (size_t)4, EXEC_CWD, "/", (size_t)1,
			   EXEC_CWD, "/tmp", (size_t)4, 0);
}

static int c_exec_duplicate_field(void)
{
	return fields_case(EINVAL, "EXEC: field CWD given twice", s_exec_cwd_twice);
}

static int s_exec_unknown_field(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "true", (size_t)4, 99, "?", (size_t)1, 0);
}

static int c_exec_unknown_field(void)
{
	return fields_case(EINVAL, "EXEC: unknown field 99", s_exec_unknown_field);
}

static int c_exec_trailing_bytes(void)
{
	uint8_t pl[6 + 4 + 3];
	struct peer p;
	int r;

	put_le16(pl, EXEC_ARG);
	put_le32(pl + 2, 4);
	memcpy(pl + 6, "true", 4);
	memcpy(pl + 10, "\x01\x00\x05", 3); /* half a field header */
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_frame(&p, FT_EXEC, pl, sizeof(pl));
	r = expect_error(&p, EBADMSG, "EXEC: 3 trailing bytes do not form a field");
	peer_close(&p);
	return r;
}

static int c_exec_field_overruns(void)
{
	uint8_t pl[6 + 4];
	struct peer p;
	int r;

	put_le16(pl, EXEC_ARG);
	put_le32(pl + 2, 0x7fffffff);
	memcpy(pl + 6, "true", 4);
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_frame(&p, FT_EXEC, pl, sizeof(pl));
	r = expect_error(&p, EBADMSG, "EXEC: field 1 claims 2147483647 bytes but only 4 remain");
	peer_close(&p);
	return r;
}

static int s_exec_nul_arg(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "echo", (size_t)4, EXEC_ARG, "a\0b", (size_t)3, 0);
}

static int c_nul_in_argv(void)
{
	return fields_case(EINVAL, "EXEC: field ARG contains a NUL byte", s_exec_nul_arg);
}

static int s_exec_nul_env(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "true", (size_t)4, EXEC_ENV, "A=b\0c", (size_t)5, 0);
}

static int c_nul_in_env(void)
{
	return fields_case(EINVAL, "EXEC: field ENV contains a NUL byte", s_exec_nul_env);
}

static int s_exec_nul_cwd(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "true", (size_t)4, EXEC_CWD, "/tmp\0/etc", (size_t)9,
			   0);
}

static int c_nul_in_cwd(void)
{
	return fields_case(EINVAL, "EXEC: field CWD contains a NUL byte", s_exec_nul_cwd);
}

static int s_fs_nul_path(struct peer *p)
{
	return send_fields(p, FT_FS_STAT, FS_PATH, "/etc\0passwd", (size_t)11, 0);
}

static int c_nul_in_path(void)
{
	return fields_case(EINVAL, "FS_STAT: the path contains a NUL byte", s_fs_nul_path);
}

static int s_exec_bad_env(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "true", (size_t)4, EXEC_ENV, "=value", (size_t)6, 0);
}

static int c_env_without_name(void)
{
	return fields_case(EINVAL, "EXEC: environment entry 1 is not NAME=value", s_exec_bad_env);
}

static int s_exec_bad_flags(struct peer *p)
{
	return send_fields(p, FT_EXEC, EXEC_ARG, "true", (size_t)4, EXEC_FLAGS, u32le(0x80000000u),
			   (size_t)4, 0);
}

static int c_exec_unknown_flags(void)
{
	return fields_case(EINVAL, "EXEC: unknown flags 0x80000000", s_exec_bad_flags);
}

static int c_invalid_utf8_argv(void)
{
	char *argv[] = { "printf", "%s|%s", "\xff\xfe\xc0\x80", "\xed\xa0\x80 ok", NULL };
	struct buf out;
	int r;

	/* Arguments are bytes, not UTF-8: they reach the command as sent. */
	buf_init(&out, 4096);
	r = run(argv, NULL, NULL, 0, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "\xff\xfe\xc0\x80|\xed\xa0\x80 ok");
	buf_free(&out);
	return r;
}

static int c_invalid_utf8_env(void)
{
	char *argv[] = { "sh", "-c", "printf %s \"$BYTES\"", NULL };
	char *env[] = { "BYTES=\x80\xbf\xf8\x88\x80\x80\x80", NULL };
	struct buf out;
	int r;

	buf_init(&out, 4096);
	r = run(argv, env, NULL, 0, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "\x80\xbf\xf8\x88\x80\x80\x80");
	buf_free(&out);
	return r;
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

/* A file request answered OK (or PATH_OK / STAT_OK, then checked by the
 * caller through f). */
static int fs_expect(uint16_t type, const char *path, const char *path2, const char *target,
		     uint32_t flags, uint16_t want, char *text, size_t n)
{
	struct peer p;
	struct frame f;
	int r;

	if (fs_request(type, path, path2, target, flags, &p) < 0)
		return -1;
	r = recv_answer(&p, &f, RECV_MS);
	if (r == 1 && f.type != want) {
		char msg[PROTO_MSG_MAX + 1] = "";
		struct proto_err e;
		int code = 0;

		if (f.type == FT_ERROR)
			proto_error_decode(&f, &code, msg, sizeof(msg), &e);
		r = fail("%s %s: got %s %d \"%.300s\"", proto_type_name(type), path,
			 proto_type_name(f.type), code, msg);
	} else if (r == 1) {
		if (text)
			snprintf(text, n, "%.*s", (int)f.len, (const char *)f.payload);
		r = expect_eof(&p);
	} else if (r == 0) {
		r = fail("%s: the connection closed without an answer", proto_type_name(type));
	}
	peer_close(&p);
	return r < 0 ? -1 : 0;
}

static int fs_error(uint16_t type, const char *path, const char *path2, uint32_t flags, int code,
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

static int c_invalid_utf8_path(void)
{
	char path[512];

	/* File names are bytes too. */
	snprintf(path, sizeof(path), "%s/bad-\xff\xfe-\xc3\x28", scratch);
	if (fs_expect(FT_FS_MKDIR, path, NULL, NULL, 0, FT_OK, NULL, 0) < 0 ||
	    fs_expect(FT_FS_STAT, path, NULL, NULL, 0, FT_FS_STAT_OK, NULL, 0) < 0 ||
	    fs_expect(FT_FS_REMOVE, path, NULL, NULL, 0, FT_OK, NULL, 0) < 0)
		return -1;
	if (access(path, F_OK) == 0)
		return fail("%s is still there", path);
	return 0;
}

static int c_100k_argv(void)
{
	size_t n = 100000;
	char **argv = calloc(n + 1, sizeof(char *));
	struct buf out;
	int r;

	if (!argv)
		return fail("out of memory");
	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = "echo $#";
	argv[3] = "sh";
	for (size_t i = 4; i < n; i++)
		argv[i] = "x";
	buf_init(&out, 4096);
	r = run(argv, NULL, NULL, 0, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "99996\n");
	buf_free(&out);
	free(argv);
	return r;
}

static int c_env_value_1m(void)
{
	size_t n = PROTO_FRAME_MAX, mark, len;
	struct buf b;
	struct peer p;
	char text[96];
	uint8_t fh[6];
	int r;

	/* NAME=value with a 1 MiB value does not fit in a frame: the client
	 * cannot even send it whole, and the agent refuses the header. (The
	 * field is built by hand: the encoder refuses it too.) */
	buf_init(&b, 4 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	mark = buf_len(&b);
	buf_reserve(&b, PROTO_HDR_LEN);
	proto_hdr_put(buf_tail(&b), FT_EXEC, 0);
	buf_commit(&b, PROTO_HDR_LEN);
	proto_field_put(&b, EXEC_ARG, "true", 4);
	put_le16(fh, EXEC_ENV);
	put_le32(fh + 2, (uint32_t)(4 + n));
	buf_append(&b, fh, sizeof(fh));
	buf_append(&b, "BIG=", 4);
	buf_reserve(&b, n);
	memset(buf_tail(&b), 'v', n);
	buf_commit(&b, n);
	len = buf_len(&b) - mark - PROTO_HDR_LEN;
	put_le32(buf_head(&b) + mark, (uint32_t)len);
	snprintf(text, sizeof(text), "frame of %zu bytes exceeds the 1048576-byte limit", len);
	if (peer_open(&p) < 0) {
		buf_free(&b);
		return -1;
	}
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EMSGSIZE, text);
	peer_close(&p);
	return r;
}

static int c_env_value_1m_minus(void)
{
	/* The largest that fits in a frame: decoded, then execve refuses a
	 * string over 128 KiB (E2BIG); the command is not started. */
	size_t n = PROTO_FRAME_MAX - 64;
	char *v = malloc(n + 1);
	char *argv[] = { "true", NULL }, *env[] = { v, NULL };
	int r;

	if (!v)
		return fail("out of memory");
	memcpy(v, "BIG=", 4);
	memset(v + 4, 'v', n - 4);
	v[n] = '\0';
	r = run(argv, env, NULL, 0, EXIT_NOT_STARTED, 126, "Argument list too long", NULL);
	free(v);
	return r;
}

static char *long_path(size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	for (size_t i = 0; i < len; i++)
		p[i] = i % 100 == 0 ? '/' : 'a';
	p[len] = '\0';
	return p;
}

static int c_path_10000_fs(void)
{
	char *p = long_path(10000);
	int r;

	if (!p)
		return fail("out of memory");
	r = fs_error(FT_FS_STAT, p, NULL, 0, ENAMETOOLONG,
		     "FS_STAT: the path is 10000 bytes long (at most 4095)");
	free(p);
	return r;
}

static int c_path_10000_cwd(void)
{
	char *p = long_path(10000), *argv[] = { "true", NULL };
	int r;

	if (!p)
		return fail("out of memory");
	r = run(argv, NULL, p, 0, EXIT_NOT_STARTED, 126, "working directory name too long", NULL);
	free(p);
	return r;
}

static int c_path_10000_program(void)
{
	char *p = long_path(10000), *argv[] = { p, NULL };
	int r;

	if (!p)
		return fail("out of memory");
	/* The reason must reach the client ("File name too long" in glibc,
	 * "Filename too long" in musl), whatever the length of the name. */
	r = run(argv, NULL, NULL, 0, EXIT_NOT_STARTED, 126, "too long", NULL);
	free(p);
	return r;
}

static int c_dotdot_realpath(void)
{
	char path[512], got[PROTO_MSG_MAX + 1];

	snprintf(path, sizeof(path), "%s/../../../../../../../../../..", scratch);
	if (fs_expect(FT_FS_REALPATH, path, NULL, NULL, 0, FT_FS_PATH_OK, got, sizeof(got)) < 0)
		return -1;
	return strcmp(got, "/") == 0 ? 0 : fail("realpath of %s is %s", path, got);
}

static int c_dotdot_remove(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/sub/..", scratch);
	mkdir(path, 0755); /* sub may not exist; the request is judged first */
	snprintf(path, sizeof(path), "%s/sub", scratch);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sub/..", scratch);
	if (fs_error(FT_FS_REMOVE, path, NULL, FS_F_RECURSIVE, EINVAL,
		     "refusing to remove '.' or '..'") < 0)
		return -1;
	if (access(scratch, F_OK) < 0)
		return fail("%s was removed", scratch);
	return 0;
}

static int c_dotdot_cwd(void)
{
	char *argv[] = { "/bin/pwd", "-P", NULL };
	struct buf out;
	int r;

	buf_init(&out, 4096);
	r = run(argv, NULL, "/tmp/../../../../..", 0, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "/\n");
	buf_free(&out);
	return r;
}

static int c_dotdot_tree_entry(void)
{
	struct fs_stat dir = { .mode = 040755 };
	struct fs_req req = { .type = FT_FS_TREE_WRITE, .flags = FS_F_NO_VERIFY,
			      .have = FS_HAVE(FS_FLAGS) };
	char dest[512], escape[512];
	struct buf b;
	struct peer p;
	int r;

	/* A tree whose second entry climbs out of it. */
	snprintf(dest, sizeof(dest), "%s/tree", scratch);
	snprintf(escape, sizeof(escape), "%s/escaped", scratch);
	req.path = dest;
	buf_init(&b, 2 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_fs_req_put(&b, &req);
	proto_fs_entry_put(&b, "", &dir, NULL);
	/* proto_fs_entry_put does not judge the path; the agent must. */
	proto_fs_entry_put(&b, "../escaped", &dir, NULL);
	proto_fs_tree_end_put(&b, &(struct fs_tree_end){ 2, 0, 0 });
	if (peer_open(&p) < 0) {
		buf_free(&b);
		return -1;
	}
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EINVAL, "tree entry path '../escaped' is not a plain relative path");
	peer_close(&p);
	if (r == 0 && access(escape, F_OK) == 0)
		r = fail("%s was created", escape);
	if (r == 0 && access(dest, F_OK) == 0)
		r = fail("%s was left behind by a refused tree", dest);
	return r;
}

static int make_loop(char *a, size_t n)
{
	char b[512];

	snprintf(a, n, "%s/loop-a", scratch);
	snprintf(b, sizeof(b), "%s/loop-b", scratch);
	unlink(a);
	unlink(b);
	if (fs_expect(FT_FS_SYMLINK, a, NULL, "loop-b", 0, FT_OK, NULL, 0) < 0 ||
	    fs_expect(FT_FS_SYMLINK, b, NULL, "loop-a", 0, FT_OK, NULL, 0) < 0)
		return -1;
	return 0;
}

static int c_symlink_loop_stat(void)
{
	char a[512];

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	return fs_error(FT_FS_STAT, a, NULL, 0, ELOOP, "too many levels of symbolic links");
}

static int c_symlink_loop_realpath(void)
{
	char a[512];

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	return fs_error(FT_FS_REALPATH, a, NULL, 0, ELOOP, "too many levels of symbolic links");
}

static int c_symlink_loop_write(void)
{
	char a[512], path[600];

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/file", a);
	return fs_error(FT_FS_WRITE, path, NULL, 0, ELOOP, "too many levels of symbolic links");
}

static int c_symlink_loop_cwd(void)
{
	char a[512], *argv[] = { "true", NULL };

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	/* strerror(ELOOP): "Too many levels of symbolic links" (glibc) or
	 * "Symbolic link loop" (musl). */
	char text[600];

	snprintf(text, sizeof(text), "cannot change directory to %s: ", a);
	if (run(argv, NULL, a, 0, EXIT_NOT_STARTED, 126, text, NULL) < 0)
		return -1;
	return 0;
}

/* A command started on p and left running: `sleep`, or `sh -c` with a
 * PTY when pty is set. Reads up to STARTED. */
static int start_cmd(struct peer *p, bool pty, uint32_t flags, pid_t *pid)
{
	char *argv[] = { "sleep", "30", NULL };
	struct exec_req r = { .argv = argv, .argc = 2, .flags = flags, .pty = pty, .rows = 24,
			      .cols = 80 };
	struct frame f;
	struct buf b;
	uint32_t v = 0;
	struct proto_err e;
	int rc;

	if (peer_open(p) < 0)
		return -1;
	buf_init(&b, PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, &r);
	send_buf(p, &b);
	buf_free(&b);
	rc = recv_answer(p, &f, RECV_MS);
	if (rc != 1 || f.type != FT_STARTED || proto_u32_decode(&f, &v, &e) < 0)
		return fail("the command did not start (%s)", rc == 1 ? proto_type_name(f.type) : why);
	if (pid)
		*pid = (pid_t)v;
	return 0;
}

static int during_cmd(bool pty, uint16_t type, const void *payload, size_t len, int code,
		      const char *text)
{
	struct peer p;
	int r;

	if (start_cmd(&p, pty, 0, NULL) < 0) {
		peer_close(&p);
		return -1;
	}
	send_frame(&p, type, payload, len);
	r = expect_error(&p, code, text);
	peer_close(&p);
	/* The client is gone: its command is hung up on (SIGHUP, then
	 * SIGKILL after 2 s); healthy() waits for its fds to close. */
	return r;
}

static int c_signal_0(void)
{
	return during_cmd(false, FT_SIGNAL, u32le(0), 4, EINVAL,
			  "SIGNAL: signal 0 is out of range (1-64)");
}

static int c_signal_65(void)
{
	return during_cmd(false, FT_SIGNAL, u32le(65), 4, EINVAL,
			  "SIGNAL: signal 65 is out of range (1-64)");
}

static int c_signal_huge(void)
{
	return during_cmd(false, FT_SIGNAL, u32le(0xffffffffu), 4, EINVAL,
			  "SIGNAL: signal 4294967295 is out of range (1-64)");
}

static int c_signal_short(void)
{
	return during_cmd(false, FT_SIGNAL, "\x09", 1, EBADMSG, "SIGNAL payload is 1 bytes, expected 4");
}

static int exec_pty_error(uint16_t rows, uint16_t cols, const char *text)
{
	uint8_t ws[4];
	struct peer p;
	int r;

	put_le16(ws, rows);
	put_le16(ws + 2, cols);
	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_EXEC, EXEC_ARG, "true", (size_t)4, EXEC_PTY, ws, (size_t)4, 0);
	r = expect_error(&p, EINVAL, text);
	peer_close(&p);
	return r;
}

static int c_pty_0(void)
{
	return exec_pty_error(0, 0, "EXEC: terminal size 0x0 is out of range (1-9999)");
}

static int c_pty_65535(void)
{
	return exec_pty_error(65535, 65535, "EXEC: terminal size 65535x65535 is out of range (1-9999)");
}

static int c_pty_9999(void)
{
	char *argv[] = { "stty", "size", NULL };
	struct exec_req r = { .argv = argv, .argc = 2, .pty = true, .rows = 9999, .cols = 9999 };
	struct buf b, out;
	struct peer p;
	int rc;

	/* The largest size is accepted and reaches the terminal. */
	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, &r);
	send_buf(&p, &b);
	buf_free(&b);
	buf_init(&out, 4096);
	rc = expect_exit(&p, EXIT_EXITED, 0, "", &out);
	if (rc == 0)
		rc = out_is(&out, "9999 9999\r\n");
	buf_free(&out);
	peer_close(&p);
	return rc;
}

static int c_resize_0(void)
{
	return during_cmd(true, FT_RESIZE, "\0\0\0\0", 4, EINVAL,
			  "RESIZE: terminal size 0x0 is out of range (1-9999)");
}

static int c_resize_65535(void)
{
	return during_cmd(true, FT_RESIZE, "\xff\xff\xff\xff", 4, EINVAL,
			  "RESIZE: terminal size 65535x65535 is out of range (1-9999)");
}

static int c_resize_no_pty(void)
{
	return during_cmd(false, FT_RESIZE, "\x18\x00\x50\x00", 4, EINVAL,
			  "RESIZE: the command has no terminal");
}

static int forward_error(uint32_t port, int code, const char *text)
{
	struct buf b;
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_forward_put(&b, port);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, code, text);
	peer_close(&p);
	return r;
}

static int c_forward_port_0(void)
{
	return forward_error(0, EINVAL, "FORWARD: port 0 is out of range (1-65535)");
}

static int c_forward_port_70000(void)
{
	return forward_error(70000, EINVAL, "FORWARD: port 70000 is out of range (1-65535)");
}

static int c_forward_nothing_listens(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char text[64];
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* A port that was free a moment ago. */
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) < 0)
		return fail("cannot find a free port: %s", strerror(errno));
	close(s);
	snprintf(text, sizeof(text), "nothing listens on port %u", ntohs(sa.sin_port));
	return forward_error(ntohs(sa.sin_port), ECONNREFUSED, text);
}

static int c_frames_after_exit(void)
{
	char *argv[] = { "true", NULL };
	struct exec_req r = { .argv = argv, .argc = 1 };
	static struct exit_status x;
	struct proto_err e;
	struct frame f;
	struct buf b;
	struct peer p;
	int rc;

	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, &r);
	send_buf(&p, &b);
	do {
		rc = recv_answer(&p, &f, RECV_MS);
	} while (rc == 1 && f.type != FT_EXIT);
	if (rc != 1 || proto_exit_decode(&f, &x, &e) < 0 || x.how != EXIT_EXITED || x.value != 0) {
		buf_free(&b);
		peer_close(&p);
		return fail("no EXIT 0 for true");
	}
	/* The command is over; the client keeps talking. */
	proto_put(&b, FT_STDIN, "late", 4);
	proto_u32_put(&b, FT_SIGNAL, 9);
	proto_put(&b, FT_INFO, NULL, 0);
	send_buf(&p, &b);
	buf_free(&b);
	rc = expect_eof(&p);
	peer_close(&p);
	return rc;
}

static int c_frames_after_error(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_frame(&p, FT_INFO, "x", 1);  /* error: INFO is empty */
	send_frame(&p, FT_INFO, NULL, 0); /* would be fine on its own */
	send_frame(&p, FT_PS, NULL, 0);
	r = expect_error(&p, EBADMSG, "INFO payload is 1 bytes, expected 0");
	peer_close(&p);
	return r;
}

static int c_pipelined_requests(void)
{
	struct buf b;
	struct peer p;
	struct frame f;
	int r;

	/* One connection, one operation: the second INFO is not answered. */
	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	for (int i = 0; i < 1000; i++)
		proto_put(&b, FT_INFO, NULL, 0);
	send_buf(&p, &b);
	buf_free(&b);
	r = recv_answer(&p, &f, RECV_MS);
	if (r != 1 || f.type != FT_INFO_OK)
		r = fail("wanted INFO_OK, got %s", r == 1 ? proto_type_name(f.type) : why);
	else
		r = expect_eof(&p);
	peer_close(&p);
	return r;
}

static int c_one_byte_writes(void)
{
	char *argv[] = { "echo", "bytewise", NULL };
	struct exec_req r = { .argv = argv, .argc = 2 };
	struct buf b, out;
	struct peer p;
	int rc;

	/* Every frame boundary falls inside a read. */
	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, &r);
	for (size_t i = 0; i < buf_len(&b); i++) {
		send_raw(&p, buf_head(&b) + i, 1);
		usleep(1000);
	}
	buf_free(&b);
	buf_init(&out, 4096);
	rc = expect_exit(&p, EXIT_EXITED, 0, "", &out);
	if (rc == 0)
		rc = out_is(&out, "bytewise\n");
	buf_free(&out);
	peer_close(&p);
	return rc;
}

static int c_stdin_1m_frame(void)
{
	char *argv[] = { "wc", "-c", NULL };
	uint8_t *big = calloc(1, PROTO_FRAME_MAX);
	struct buf out;
	struct peer p;
	int r;

	/* The largest frame there is, in one piece. */
	if (!big)
		return fail("out of memory");
	if (peer_open(&p) < 0) {
		free(big);
		return -1;
	}
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, EXEC_F_STDIN);
	send_frame(&p, FT_STDIN, big, PROTO_FRAME_MAX);
	send_frame(&p, FT_STDIN, big, PROTO_FRAME_MAX);
	send_frame(&p, FT_STDIN_EOF, NULL, 0);
	free(big);
	buf_init(&out, 4096);
	r = expect_exit(&p, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "2097152\n");
	buf_free(&out);
	peer_close(&p);
	return r;
}

static int c_stdin_empty_frames(void)
{
	char *argv[] = { "wc", "-c", NULL };
	struct buf b, out;
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, EXEC_F_STDIN);
	buf_init(&b, 2 * PROTO_FRAME_MAX);
	for (int i = 0; i < 100000; i++)
		proto_put(&b, FT_STDIN, NULL, 0);
	proto_put(&b, FT_STDIN_EOF, NULL, 0);
	send_buf(&p, &b);
	buf_free(&b);
	buf_init(&out, 4096);
	r = expect_exit(&p, EXIT_EXITED, 0, "", &out);
	if (r == 0)
		r = out_is(&out, "0\n");
	buf_free(&out);
	peer_close(&p);
	return r;
}

static int c_stdin_after_eof(void)
{
	char *argv[] = { "cat", NULL };
	char msg[PROTO_MSG_MAX + 1];
	struct proto_err e;
	struct buf b, out;
	struct frame f;
	struct peer p;
	int r, code;

	/* Nothing sent after STDIN_EOF may reach the command. The agent
	 * either refuses it (EPROTO, while the EOF is still queued) or drops
	 * it (the pipe is closed already); either way cat sees "before". */
	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	send_buf(&p, &b);
	send_exec(&p, argv, NULL, NULL, EXEC_F_STDIN);
	proto_put(&b, FT_STDIN, "before", 6);
	proto_put(&b, FT_STDIN_EOF, NULL, 0);
	proto_put(&b, FT_STDIN, "after", 5);
	send_buf(&p, &b);
	buf_free(&b);
	buf_init(&out, 4096);
	r = 0;
	for (;;) {
		int k = recv_answer(&p, &f, RECV_MS);

		if (k != 1) {
			r = fail("no EXIT or ERROR: %s", k == 0 ? "closed" : why);
			break;
		}
		if (f.type == FT_STDOUT) {
			buf_append(&out, f.payload, f.len);
		} else if (f.type == FT_ERROR) {
			proto_error_decode(&f, &code, msg, sizeof(msg), &e);
			if (code != EPROTO || !strstr(msg, "STDIN after STDIN_EOF"))
				r = fail("ERROR %d \"%s\"", code, msg);
			break;
		} else if (f.type == FT_EXIT) {
			static struct exit_status x;

			proto_exit_decode(&f, &x, &e);
			if (x.how != EXIT_EXITED || x.value != 0)
				r = fail("cat: EXIT how %d value %d", x.how, x.value);
			else
				r = out_is(&out, "before");
			break;
		} else if (f.type != FT_STARTED) {
			r = fail("unexpected %s", proto_type_name(f.type));
			break;
		}
	}
	if (r == 0)
		r = expect_eof(&p);
	if (r == 0 && buf_len(&out) > 6)
		r = fail("the command read past STDIN_EOF");
	buf_free(&out);
	peer_close(&p);
	return r;
}

static int c_stdin_eof_payload(void)
{
	return during_cmd(false, FT_STDIN_EOF, "x", 1, EBADMSG,
			  "STDIN_EOF payload is 1 bytes, expected 0");
}

static int c_unexpected_frame_in_cmd(void)
{
	return during_cmd(false, FT_PS, NULL, 0, EPROTO, "unexpected PS frame during a command");
}

static int c_ack_ordinary(void)
{
	uint8_t ack[24] = { 0 };

	return during_cmd(false, FT_ACK, ack, sizeof(ack), EPROTO, "ACK is for detached commands");
}

/* Ends a detached command (SIGNAL 9 on a new ATTACH: its pid may be in
 * another pid namespace) and collects it: read to EXIT, ACK it. */
static int kill_and_collect(pid_t pid)
{
	static struct exit_status x;
	struct attached at = { 0 };
	uint64_t out = 0, err = 0;
	struct proto_err e;
	struct frame f;
	struct buf b;
	struct peer p;
	size_t mark;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_begin(&b, FT_ATTACH, &mark);
	proto_field_put_u32(&b, ATTACH_PID, (uint32_t)pid);
	proto_end(&b, mark);
	proto_u32_put(&b, FT_SIGNAL, SIGKILL);
	send_buf(&p, &b);
	for (;;) {
		r = recv_answer(&p, &f, RECV_MS);
		if (r != 1) {
			r = fail("collecting %d: %s", (int)pid, r == 0 ? "closed" : why);
			break;
		}
		if (f.type == FT_ATTACHED) {
			proto_attached_decode(&f, &at, &e);
			out = at.out_base;
			err = at.err_base;
		} else if (f.type == FT_STDOUT) {
			out += f.len;
		} else if (f.type == FT_STDERR) {
			err += f.len;
		} else if (f.type == FT_EXIT) {
			struct ack a = { .out_off = out, .err_off = err, .flags = ACK_F_EXIT };

			proto_exit_decode(&f, &x, &e);
			proto_ack_put(&b, &a);
			send_buf(&p, &b);
			r = expect_eof(&p);
			break;
		} else {
			r = fail("collecting %d: got %s", (int)pid, proto_type_name(f.type));
			break;
		}
	}
	buf_free(&b);
	peer_close(&p);
	return r;
}

static int c_ack_beyond_sent(void)
{
	struct ack a = { .out_off = 1000000 };
	struct buf b;
	struct peer p;
	pid_t pid;
	int r;

	if (start_cmd(&p, false, EXEC_F_DETACH, &pid) < 0) {
		peer_close(&p);
		return -1;
	}
	buf_init(&b, 4096);
	proto_ack_put(&b, &a);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EINVAL, "ACK of stdout offset 1000000, but 0-0 were sent");
	peer_close(&p);
	/* The detached command outlives its client: end it and collect it,
	 * so that nothing of it stays in the agent. */
	if (kill_and_collect(pid) < 0)
		return -1;
	return r;
}

static int c_ack_exit_not_sent(void)
{
	struct ack a = { .flags = ACK_F_EXIT };
	struct buf b;
	struct peer p;
	pid_t pid;
	int r;

	if (start_cmd(&p, false, EXEC_F_DETACH, &pid) < 0) {
		peer_close(&p);
		return -1;
	}
	buf_init(&b, 4096);
	proto_ack_put(&b, &a);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EPROTO, "ACK of an EXIT that was not sent");
	peer_close(&p);
	if (kill_and_collect(pid) < 0)
		return -1;
	return r;
}

static int c_attach_nonexistent(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ATTACH, ATTACH_PID, u32le(999999), (size_t)4, 0);
	r = expect_error(&p, ESRCH, "no command with pid 999999");
	peer_close(&p);
	return r;
}

static int c_attach_pid_0(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ATTACH, ATTACH_PID, u32le(0), (size_t)4, 0);
	r = expect_error(&p, EINVAL, "ATTACH: field PID is missing");
	peer_close(&p);
	return r;
}

static int c_attach_twice_field(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ATTACH, ATTACH_PID, u32le(1), (size_t)4, ATTACH_PID, u32le(2), (size_t)4, 0);
	r = expect_error(&p, EINVAL, "ATTACH: expected one field PID of 4 bytes");
	peer_close(&p);
	return r;
}

static int c_attach_ordinary(void)
{
	struct peer p, q;
	pid_t pid;
	int r;

	if (start_cmd(&p, false, 0, &pid) < 0) {
		peer_close(&p);
		return -1;
	}
	if (peer_open(&q) < 0) {
		peer_close(&p);
		return -1;
	}
	send_fields(&q, FT_ATTACH, ATTACH_PID, u32le((uint32_t)pid), (size_t)4, 0);
	r = expect_error(&q, EBUSY, "belongs to the client that started it");
	peer_close(&q);
	peer_close(&p);
	return r;
}

static int c_session_then_frame(void)
{
	struct frame f;
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_frame(&p, FT_SESSION, NULL, 0);
	r = recv_answer(&p, &f, RECV_MS);
	if (r != 1 || f.type != FT_LIFETIME) {
		peer_close(&p);
		return fail("SESSION: wanted LIFETIME, got %s", r == 1 ? proto_type_name(f.type) : why);
	}
	send_frame(&p, FT_INFO, NULL, 0);
	r = expect_error(&p, EPROTO, "a session carries no INFO frames");
	peer_close(&p);
	return r;
}

static int c_extend_out_of_range(void)
{
	uint8_t s[8];

	put_le64(s, 0);
	if (request_error(FT_EXTEND, s, 8, EINVAL, "EXTEND: 0 seconds is out of range (1-3600") < 0)
		return -1;
	put_le64(s, UINT64_MAX);
	if (request_error(FT_EXTEND, s, 8, EINVAL, "EXTEND: 18446744073709551615 seconds is out of range") < 0)
		return -1;
	return request_error(FT_EXTEND, s, 7, EBADMSG, "EXTEND payload is 7 bytes, expected 8");
}

static int c_shutdown_reason_too_long(void)
{
	char reason[64];
	struct peer p;
	int r;

	/* (A valid SHUTDOWN would stop the agent; this one must not.) */
	memset(reason, 'r', sizeof(reason));
	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_SHUTDOWN, SHUTDOWN_REASON, reason, sizeof(reason), 0);
	r = expect_error(&p, EINVAL, "SHUTDOWN: REASON must be at most 63 bytes without NUL");
	peer_close(&p);
	return r;
}

static int c_shutdown_unknown_field(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_SHUTDOWN, 7, "now", (size_t)3, 0);
	r = expect_error(&p, EINVAL, "SHUTDOWN: unknown field 7");
	peer_close(&p);
	return r;
}

static int c_set_time_missing(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_SET_TIME, LIFE_LEFT_NS, "\1\0\0\0\0\0\0\0", (size_t)8, 0);
	r = expect_error(&p, EINVAL, "SET_TIME: field REALTIME_NS is missing");
	peer_close(&p);
	return r;
}

static int c_env_bad_name(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ENV, ENV_OP, u32le(ENV_SET), (size_t)4, ENV_ENTRY, "1X=y", (size_t)4, 0);
	r = expect_error(&p, EINVAL, "ENV: '1X=y' is not NAME=value");
	peer_close(&p);
	return r;
}

static int c_env_bad_op(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ENV, ENV_OP, u32le(9), (size_t)4, 0);
	r = expect_error(&p, EINVAL, "ENV: OP must be 1 (list), 2 (set) or 3 (unset)");
	peer_close(&p);
	return r;
}

static int env_op(uint32_t op, const char *entry, size_t len, uint16_t want)
{
	struct frame f;
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ENV, ENV_OP, u32le(op), (size_t)4,
		    op == ENV_SET ? ENV_ENTRY : ENV_NAME, entry, len, 0);
	r = recv_answer(&p, &f, RECV_MS);
	if (r == 1 && f.type != want) {
		char msg[PROTO_MSG_MAX + 1] = "";
		struct proto_err e;
		int code = 0;

		if (f.type == FT_ERROR)
			proto_error_decode(&f, &code, msg, sizeof(msg), &e);
		r = fail("ENV op %u: got %s %d \"%.200s\"", op, proto_type_name(f.type), code, msg);
	} else if (r == 1) {
		r = expect_eof(&p);
	} else {
		r = fail("ENV op %u: %s", op, r == 0 ? "closed without an answer" : why);
	}
	peer_close(&p);
	return r;
}

/* Reads an ENV list answer: ENV_LIST frames, then OK (or, from agents
 * that send one frame, the end); every entry goes to out (may be NULL).
 * An ERROR is a failure unless refused is given, which then gets the
 * message. */
static int read_env_list(struct peer *p, struct buf *out, char *refused, size_t n)
{
	struct proto_err e;
	struct frame f;
	int r, k, frames = 0;

	for (;;) {
		struct field_iter it;
		const uint8_t *v;
		uint16_t tag;
		uint32_t len;

		r = recv_answer(p, &f, RECV_MS);
		if (r < 0)
			return -1;
		if (r == 0)
			return frames ? 0 : fail("ENV list: closed without an answer");
		if (f.type == FT_OK)
			return expect_eof(p);
		if (f.type == FT_ERROR && refused) {
			char msg[PROTO_MSG_MAX + 1];
			int code;

			if (proto_error_decode(&f, &code, msg, sizeof(msg), &e) < 0)
				return fail("bad ERROR: %s", e.msg);
			snprintf(refused, n, "%d %s", code, msg);
			return expect_eof(p);
		}
		if (f.type != FT_ENV_LIST)
			return fail("ENV list: got %s", proto_type_name(f.type));
		frames++;
		proto_fields(&it, &f);
		while ((k = proto_field_next(&it, &tag, &v, &len, &e)) > 0) {
			if (tag != ENV_ENTRY || !memchr(v, '=', len))
				return fail("ENV_LIST: field %u is not an entry", tag);
			if (out) {
				buf_append(out, v, len);
				buf_append(out, "\n", 1);
			}
		}
		if (k < 0)
			return fail("ENV_LIST is malformed: %s", e.msg);
	}
}

static int c_env_list_over_1m(void)
{
	static const char *const names[] = { "HUGE_A", "HUGE_B", "HUGE_C", "HUGE_D" };
	size_t n = 600 * 1024;
	char *v = malloc(n), refused[PROTO_MSG_MAX + 32] = "";
	struct buf listed;
	struct peer p;
	int r = 0, r2 = 0;

	/* Four variables of 600 KiB, each set on its own: listing them takes
	 * more than a frame (1 MiB) and more than a connection's output
	 * queue (2 MiB). The answer must still be frames: the whole list,
	 * or an ERROR. */
	if (!v)
		return fail("out of memory");
	memset(v, 'v', n);
	for (size_t i = 0; i < ARRAY_SIZE(names) && r == 0; i++) {
		memcpy(v, names[i], 6);
		v[6] = '=';
		r = env_op(ENV_SET, v, n, FT_OK);
	}
	free(v);
	buf_init(&listed, 8u << 20);
	if (r == 0 && peer_open(&p) == 0) {
		send_fields(&p, FT_ENV, ENV_OP, u32le(ENV_LIST), (size_t)4, 0);
		r = read_env_list(&p, &listed, refused, sizeof(refused));
		peer_close(&p);
		if (r == 0 && !refused[0] && buf_len(&listed) < 4 * n)
			r = fail("ENV list gave %zu bytes for 4 x %zu", buf_len(&listed), n);
		if (r == 0 && refused[0])
			printf("#   (refused: %s)\n", refused);
	}
	buf_free(&listed);
	/* Put the environment back, whatever happened. */
	for (size_t i = 0; i < ARRAY_SIZE(names) && r2 == 0; i++)
		r2 = env_op(ENV_UNSET, names[i], 6, FT_OK);
	return r < 0 ? r : r2;
}

static int c_half_close_big_answer(void)
{
	static const char *const names[] = { "HALF_A", "HALF_B" };
	size_t n = 600 * 1024;
	char *v = malloc(n);
	struct buf listed;
	struct peer p;
	int r = 0, r2 = 0;

	/* The client sends its request and shuts its sending side (as
	 * `socat`, or a shell's here-document, would), then reads: a 1.2 MiB
	 * answer, more than a socket holds at once, must arrive whole. */
	if (!v)
		return fail("out of memory");
	memset(v, 'h', n);
	for (size_t i = 0; i < ARRAY_SIZE(names) && r == 0; i++) {
		memcpy(v, names[i], 6);
		v[6] = '=';
		r = env_op(ENV_SET, v, n, FT_OK);
	}
	free(v);
	buf_init(&listed, 4u << 20);
	if (r == 0 && peer_open(&p) == 0) {
		send_fields(&p, FT_ENV, ENV_OP, u32le(ENV_LIST), (size_t)4, 0);
		shutdown(p.fd, SHUT_WR);
		r = read_env_list(&p, &listed, NULL, 0);
		peer_close(&p);
		if (r == 0 && buf_len(&listed) < 2 * n)
			r = fail("ENV list gave %zu bytes for 2 x %zu", buf_len(&listed), n);
	}
	buf_free(&listed);
	for (size_t i = 0; i < ARRAY_SIZE(names) && r2 == 0; i++)
		r2 = env_op(ENV_UNSET, names[i], 6, FT_OK);
	return r < 0 ? r : r2;
}

static int c_info_with_payload(void)
{
	return request_error(FT_INFO, "x", 1, EBADMSG, "INFO payload is 1 bytes, expected 0");
}

static int c_no_such_user(void)
{
	char *argv[] = { "true", NULL };
	struct exec_req r = { .argv = argv, .argc = 1, .user = "no-such-user-x" };
	struct buf b;
	struct peer p;
	int rc;

	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, &r);
	send_buf(&p, &b);
	buf_free(&b);
	rc = expect_exit(&p, EXIT_NOT_STARTED, 126, "no such user: no-such-user-x", NULL);
	peer_close(&p);
	return rc;
}

static int c_fs_missing_path(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_FS_STAT, FS_USER, "root", (size_t)4, 0);
	r = expect_error(&p, EINVAL, "FS_STAT: field PATH is missing");
	peer_close(&p);
	return r;
}

static int c_fs_duplicate_path(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_FS_STAT, FS_PATH, "/", (size_t)1, FS_PATH, "/tmp", (size_t)4, 0);
	r = expect_error(&p, EINVAL, "FS_STAT: field PATH given twice");
	peer_close(&p);
	return r;
}

static int c_forward_duplicate_port(void)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_FORWARD, FORWARD_PORT, u32le(22), (size_t)4, FORWARD_PORT, u32le(23),
		    (size_t)4, 0);
	r = expect_error(&p, EINVAL, "FORWARD: field PORT given twice");
	peer_close(&p);
	return r;
}

static int c_client_never_reads(void)
{
	char marker[64], *argv[] = { "yes", marker, NULL };
	struct peer p;

	/* The command floods a client that never reads, which then leaves:
	 * the command must be stopped, not left blocked on its pipe. */
	snprintf(marker, sizeof(marker), "hostile-flood-%d", (int)getpid());
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, 0);
	usleep(500000);
	if (procs_with(marker) != 1) {
		peer_close(&p);
		return fail("the flooding command is not running (%d found)", procs_with(marker));
	}
	/* Unread output waits in the pipe (the command blocks), not in the
	 * agent: a frame or two at most. */
	if (rss_kib(server) > base_rss + MAX(4096, rss_slack_kib)) {
		long rss = rss_kib(server);

		peer_close(&p);
		return fail("the server grew to %ld KiB (from %ld) with output nobody reads", rss,
			    base_rss);
	}
	peer_close(&p);
	return wait_procs_gone(marker, 5000);
}

static int c_stdin_flood(void)
{
	char *argv[] = { "sleep", "30", NULL };
	uint8_t *chunk = calloc(1, PROTO_FRAME_MAX);
	uint64_t end = now_ms() + 1500;
	size_t sent = 0;
	struct buf b;
	struct peer p;
	long rss;

	/* A command that never reads its input, and a client that sends
	 * 1 MiB STDIN frames as fast as it can: the agent queues 256 KiB
	 * (docs/PROTOCOL.md), then stops reading; the client blocks. */
	if (!chunk)
		return fail("out of memory");
	if (peer_open(&p) < 0) {
		free(chunk);
		return -1;
	}
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, EXEC_F_STDIN);
	fcntl(p.fd, F_SETFL, fcntl(p.fd, F_GETFL) | O_NONBLOCK);
	buf_init(&b, 2 * (PROTO_HDR_LEN + PROTO_FRAME_MAX));
	proto_put(&b, FT_STDIN, chunk, PROTO_FRAME_MAX);
	while (now_ms() < end) {
		struct pollfd pfd = { .fd = p.fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = send(p.fd, buf_head(&b) + sent % buf_len(&b),
			 buf_len(&b) - sent % buf_len(&b), MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
	}
	rss = rss_kib(server);
	buf_free(&b);
	free(chunk);
	peer_close(&p);
	if (sent > 8u << 20)
		return fail("the agent took %zu bytes of input a command never read", sent);
	if (rss > base_rss + MAX(4096, rss_slack_kib))
		return fail("the server grew to %ld KiB (from %ld) with input nobody reads", rss,
			    base_rss);
	return 0;
}

static int c_client_vanishes(void)
{
	char marker[64], script[128], *argv[] = { "sh", "-c", script, NULL };
	struct peer p;

	/* A command with a child in the background; the client goes. Both
	 * sleeps have a duration nothing else uses, to find them by. */
	snprintf(marker, sizeof(marker), "sleep 7%d.", (int)getpid());
	snprintf(script, sizeof(script), "%s1 & %s2; :", marker, marker);
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, 0);
	usleep(300000);
	if (procs_with(marker) < 2) { /* the sleeps, and sh whose script names them */
		peer_close(&p);
		return fail("wanted the 2 sleeps running, found %d", procs_with(marker));
	}
	peer_close(&p);
	return wait_procs_gone(marker, 5000);
}

/* Reads the answer to a clean-up request: OK or an ERROR, then the end. */
static void expect_error_or_ok(struct peer *p)
{
	struct frame f;

	while (recv_answer(p, &f, RECV_MS) == 1)
		;
}

static int c_extend_no_lifetime(void)
{
	uint8_t sec[8];

	/* Development mode: no lifetime to extend. PID 1 answers. */
	put_le64(sec, 60);
	return request_error(FT_EXTEND, sec, 8, EINVAL, "lifetime");
}

/* The sandbox environment, as ENV list gives it, one entry per line. */
static int env_list(struct buf *out)
{
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_fields(&p, FT_ENV, ENV_OP, u32le(ENV_LIST), (size_t)4, 0);
	r = read_env_list(&p, out, NULL, 0);
	peer_close(&p);
	return r;
}

static int c_env_set_5000(void)
{
	struct buf before, after, b;
	struct frame f;
	struct peer p;
	size_t mark;
	int r;

	/* More variables than the environment holds (4,096), in one
	 * request: refused, and, as docs/PROTOCOL.md says of ENV, "the whole
	 * request is checked before anything changes". */
	buf_init(&before, 1 << 20);
	buf_init(&after, 1 << 20);
	if (env_list(&before) < 0)
		return -1;
	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, 2 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_begin(&b, FT_ENV, &mark);
	proto_field_put_u32(&b, ENV_OP, ENV_SET);
	for (int i = 0; i < 5000; i++) {
		char e[32];

		snprintf(e, sizeof(e), "MANY_%d=%d", i, i);
		proto_field_put_str(&b, ENV_ENTRY, e);
	}
	proto_end(&b, mark);
	send_buf(&p, &b);
	buf_free(&b);
	r = recv_answer(&p, &f, RECV_MS);
	if (r != 1 || f.type != FT_ERROR)
		r = fail("ENV set of 5,000: got %s", r == 1 ? proto_type_name(f.type) : why);
	else
		r = expect_eof(&p);
	peer_close(&p);
	if (r == 0 && env_list(&after) == 0 &&
	    (buf_len(&after) != buf_len(&before) ||
	     memcmp(buf_head(&after), buf_head(&before), buf_len(&before)) != 0))
		r = fail("the refused request changed the environment: %zu bytes of it before, %zu after",
			 buf_len(&before), buf_len(&after));
	/* Put it back: unset whatever got in (a few requests of 1,000). */
	for (int i = 0; i < 5000; i += 1000) {
		struct peer q;

		if (peer_open(&q) < 0)
			break;
		buf_init(&b, PROTO_FRAME_MAX);
		proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
		proto_begin(&b, FT_ENV, &mark);
		proto_field_put_u32(&b, ENV_OP, ENV_UNSET);
		for (int k = i; k < i + 1000; k++) {
			char n[32];

			snprintf(n, sizeof(n), "MANY_%d", k);
			proto_field_put_str(&b, ENV_NAME, n);
		}
		proto_end(&b, mark);
		send_buf(&q, &b);
		buf_free(&b);
		expect_error_or_ok(&q);
		peer_close(&q);
	}
	buf_free(&before);
	buf_free(&after);
	return r;
}

static int c_detached_limit(void)
{
	enum { N = 256 };
	static pid_t pids[N];
	int started = 0, r = 0;
	struct peer p;

	/* docs/PROTOCOL.md: at most 256 detached commands; past that, EXEC
	 * is answered EAGAIN. */
	for (int i = 0; i < N; i++) {
		if (start_cmd(&p, false, EXEC_F_DETACH, &pids[i]) < 0) {
			r = fail("detached command %d did not start: %s", i + 1, why);
			peer_close(&p);
			break;
		}
		peer_close(&p);
		started++;
	}
	if (r == 0) {
		char *argv[] = { "sleep", "30", NULL };

		if (peer_open(&p) < 0)
			return -1;
		send_hello(&p);
		send_exec(&p, argv, NULL, NULL, EXEC_F_DETACH);
		r = expect_error(&p, EAGAIN, "too many commands");
		peer_close(&p);
	}
	for (int i = 0; i < started; i++)
		if (kill_and_collect(pids[i]) < 0 && r == 0)
			r = -1;
	return r;
}

static int c_forward_bytes_before_reply(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
	struct buf b;
	struct peer p;

	/* Something listens; the client does not wait for OK before it
	 * starts the byte stream. */
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) < 0)
		return fail("cannot listen: %s", strerror(errno));
	if (peer_open(&p) < 0) {
		close(s);
		return -1;
	}
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_forward_put(&b, ntohs(sa.sin_port));
	buf_append(&b, "GET / HTTP/1.0\r\n\r\n", 18);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EPROTO, "the client sent bytes before the reply");
	peer_close(&p);
	close(s);
	return r;
}

static int c_preauth_memory(void)
{
	enum { N = 256 };
	static struct peer ps[N];
	uint8_t *junk = calloc(1, PROTO_HDR_LEN + PROTO_FRAME_MAX);
	long before = rss_kib(server), during;
	int r = 0, opened = 0;

	/* Before HELLO (and before a token is proven) a client is nobody:
	 * what it can make the agent hold must be small. Each of these sends
	 * a header announcing a 1 MiB HELLO and all of it but the last byte,
	 * then waits. HELLO is 8 bytes and AUTH 32; allowed here: 64 KiB per
	 * connection. */
	if (!junk)
		return fail("out of memory");
	proto_hdr_put(junk, FT_HELLO, PROTO_FRAME_MAX);
	for (int i = 0; i < N; i++, opened++) {
		uint64_t deadline = now_ms() + 2000;
		size_t sent = 0, want = PROTO_HDR_LEN + PROTO_FRAME_MAX - 1;

		if (peer_open(&ps[i]) < 0) {
			r = -1;
			break;
		}
		/* All of it, unless the agent stops reading (it may: that is
		 * a way to bound it too). */
		fcntl(ps[i].fd, F_SETFL, fcntl(ps[i].fd, F_GETFL) | O_NONBLOCK);
		while (sent < want && now_ms() < deadline) {
			struct pollfd pfd = { .fd = ps[i].fd, .events = POLLOUT };
			ssize_t n;

			poll(&pfd, 1, 100);
			n = send(ps[i].fd, junk + sent, want - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				break;
		}
	}
	usleep(200000);
	during = rss_kib(server);
	for (int i = 0; i < opened; i++)
		peer_close(&ps[i]);
	free(junk);
	if (r == 0 && during - before > N * 64)
		r = fail("%d clients that never said HELLO hold %ld KiB of the server (%ld KiB each)",
			 N, during - before, (during - before) / N);
	return r;
}

/* ---- cases that hold connections open ---- */

static int c_silent_connections(void)
{
	struct peer quiet, hello, dribble;
	uint64_t t0 = now_ms(), dt[3] = { 0 };
	struct buf b;
	size_t sent = 0;
	int r = 0;
	char *argv[] = { "echo", "too slow", NULL };
	char *env[] = { "PADDING=a request far longer than ten seconds of one byte every 250 ms", NULL };
	struct exec_req req = { .argv = argv, .argc = 2, .env = env, .envc = 1 };

	/* Three clients: one says nothing, one says HELLO and nothing more,
	 * one sends HELLO and EXEC a byte every 250 ms (~120 bytes: 30 s). Each is told
	 * ETIMEDOUT and closed HANDSHAKE_S seconds after it connected. */
	if (peer_open(&quiet) < 0 || peer_open(&hello) < 0 || peer_open(&dribble) < 0)
		return -1;
	send_hello(&hello);
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_exec_put(&b, &req);
	while (now_ms() - t0 < (HANDSHAKE_S + 3) * 1000u && (!dt[0] || !dt[1] || !dt[2])) {
		struct peer *ps[3] = { &quiet, &hello, &dribble };

		if (sent < buf_len(&b) && send_raw(&dribble, buf_head(&b) + sent, 1) == 0)
			sent++;
		for (int i = 0; i < 3; i++) {
			struct pollfd pfd = { .fd = ps[i]->fd, .events = POLLIN };

			if (!dt[i] && poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLIN | POLLHUP))) {
				struct frame f;
				int k = recv_frame(ps[i], &f, 100);

				if (k == 1 && f.type == FT_HELLO_OK)
					continue;
				dt[i] = now_ms() - t0;
				if (k != 1 || f.type != FT_ERROR) {
					r = fail("client %d: %s", i, k == 1 ? proto_type_name(f.type) : why);
				} else {
					char msg[PROTO_MSG_MAX + 1];
					struct proto_err e;
					int code;

					proto_error_decode(&f, &code, msg, sizeof(msg), &e);
					if (code != ETIMEDOUT || !strstr(msg, "no request within 10 seconds"))
						r = fail("client %d: ERROR %d \"%s\"", i, code, msg);
					else if (expect_eof(ps[i]) < 0)
						r = -1;
				}
			}
		}
		usleep(250000);
	}
	if (r == 0 && sent >= buf_len(&b))
		r = fail("the dribbling client finished its request (%zu bytes) before the timeout", sent);
	buf_free(&b);
	for (int i = 0; r == 0 && i < 3; i++)
		if (dt[i] < (HANDSHAKE_S * 1000u - 500) || dt[i] > HANDSHAKE_S * 1000u + 1500)
			r = fail("client %d was closed after %llu ms, not %d s", i,
				 (unsigned long long)dt[i], HANDSHAKE_S);
	peer_close(&quiet);
	peer_close(&hello);
	peer_close(&dribble);
	return r;
}

static int c_2000_connections(void)
{
	enum { N = 2000 };
	static struct peer ps[N + 1];
	int served = 0, refused = 0, other = 0, r = 0;
	char first_other[300] = "";
	struct rlimit rl;

	/* All at once: the agent serves CONN_MAX and tells the rest, at
	 * once and clearly, that there are too many. */
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < N + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < N; i++) {
		if (peer_open(&ps[i]) < 0) {
			for (int k = 0; k < i; k++)
				peer_close(&ps[k]);
			return fail("connection %d: %s", i, why);
		}
		send_hello(&ps[i]);
	}
	for (int i = 0; i < N; i++) {
		struct frame f;
		int k = recv_frame(&ps[i], &f, RECV_MS);

		if (k == 1 && f.type == FT_HELLO_OK) {
			served++;
		} else if (k == 1 && f.type == FT_ERROR) {
			char msg[PROTO_MSG_MAX + 1];
			struct proto_err e;
			int code;

			proto_error_decode(&f, &code, msg, sizeof(msg), &e);
			if (code == EAGAIN && strstr(msg, "too many connections") &&
			    recv_frame(&ps[i], &f, RECV_MS) == 0) {
				refused++;
			} else {
				if (!other++)
					snprintf(first_other, sizeof(first_other), "ERROR %d \"%s\"", code, msg);
			}
			peer_close(&ps[i]);
		} else {
			if (!other++)
				snprintf(first_other, sizeof(first_other), "%s",
					 k == 1 ? proto_type_name(f.type) : k == 0 ? "closed" : why);
			peer_close(&ps[i]);
		}
	}
	if (served != CONN_MAX || refused != N - CONN_MAX || other)
		r = fail("%d served, %d refused with EAGAIN \"too many connections\", %d other (%s); "
			 "wanted %d and %d", served, refused, other, first_other, CONN_MAX,
			 N - CONN_MAX);
	/* While they are all held, one more is refused too ... */
	if (r == 0) {
		if (peer_open(&ps[N]) < 0)
			r = -1;
		else {
			send_hello(&ps[N]);
			r = expect_error(&ps[N], EAGAIN, "too many connections");
			peer_close(&ps[N]);
		}
	}
	/* ... and the served ones still work. */
	if (r == 0) {
		struct peer *p = NULL;

		for (int i = 0; i < N && !p; i++)
			if (ps[i].fd >= 0)
				p = &ps[i];
		if (p) {
			struct frame f;
			int k;

			send_frame(p, FT_INFO, NULL, 0);
			k = recv_frame(p, &f, RECV_MS);
			if (k != 1 || f.type != FT_INFO_OK)
				r = fail("a served connection did not answer INFO: %s",
					 k == 1 ? proto_type_name(f.type) : why);
		}
	}
	for (int i = 0; i < N; i++)
		if (ps[i].fd >= 0)
			peer_close(&ps[i]);
	return r;
}

/* ---- a sandbox with a token (run with $HOSTILE_TOKEN) ---- */

/* HELLO, then HELLO_OK with the auth flag and a nonce. */
static int hello_for_nonce(struct peer *p, uint8_t nonce[PROTO_NONCE_LEN])
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

static int c_auth_request_instead(void)
{
	struct peer p;
	int r;

	/* Pipelined as a client without the token would. */
	if (peer_open(&p) < 0)
		return -1;
	{
		struct buf b;

		buf_init(&b, 64);
		proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
		proto_put(&b, FT_INFO, NULL, 0);
		send_buf(&p, &b);
		buf_free(&b);
	}
	r = expect_error(&p, EACCES, "authentication required");
	peer_close(&p);
	return r;
}

static int c_auth_wrong(void)
{
	uint8_t nonce[PROTO_NONCE_LEN], mac[PROTO_AUTH_LEN], other[32];
	struct peer p;
	int r;

	if (hello_for_nonce(&p, nonce) < 0) {
		peer_close(&p);
		return -1;
	}
	/* The proof of another token. */
	proto_auth_key("not the token of this sandbox", other);
	proto_auth_mac(other, nonce, mac);
	send_frame(&p, FT_AUTH, mac, sizeof(mac));
	r = expect_error(&p, EACCES, "authentication failed: wrong token");
	peer_close(&p);
	return r;
}

static int c_auth_replay(void)
{
	uint8_t n1[PROTO_NONCE_LEN], n2[PROTO_NONCE_LEN], mac[PROTO_AUTH_LEN];
	struct peer a, b;
	int r;

	/* A proof for one connection's nonce is worth nothing on another,
	 * and no two connections get the same nonce. */
	if (hello_for_nonce(&a, n1) < 0 || hello_for_nonce(&b, n2) < 0) {
		peer_close(&a);
		peer_close(&b);
		return -1;
	}
	if (memcmp(n1, n2, sizeof(n1)) == 0) {
		peer_close(&a);
		peer_close(&b);
		return fail("two connections got the same nonce");
	}
	proto_auth_mac(auth_key, n1, mac);
	send_frame(&b, FT_AUTH, mac, sizeof(mac));
	r = expect_error(&b, EACCES, "authentication failed: wrong token");
	peer_close(&a);
	peer_close(&b);
	return r;
}

static int c_auth_short(void)
{
	uint8_t nonce[PROTO_NONCE_LEN], mac[PROTO_AUTH_LEN] = { 0 };
	struct peer p;
	int r;

	if (hello_for_nonce(&p, nonce) < 0) {
		peer_close(&p);
		return -1;
	}
	send_frame(&p, FT_AUTH, mac, 31);
	r = expect_error(&p, EBADMSG, "AUTH payload is 31 bytes, expected 32");
	peer_close(&p);
	return r;
}

static int c_auth_1m_header(void)
{
	uint8_t nonce[PROTO_NONCE_LEN], hdr[PROTO_HDR_LEN];
	struct peer p;
	int r;

	/* Refused on the header: the megabyte is never read. */
	if (hello_for_nonce(&p, nonce) < 0) {
		peer_close(&p);
		return -1;
	}
	proto_hdr_put(hdr, FT_AUTH, PROTO_FRAME_MAX);
	send_raw(&p, hdr, sizeof(hdr));
	r = expect_error(&p, EBADMSG, "AUTH payload is 1048576 bytes, expected 32");
	peer_close(&p);
	return r;
}

static int c_auth_before_hello(void)
{
	uint8_t mac[PROTO_AUTH_LEN] = { 0 };
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	send_frame(&p, FT_AUTH, mac, sizeof(mac));
	r = expect_error(&p, EPROTO, "expected HELLO, got frame type 0x0003 (AUTH)");
	peer_close(&p);
	return r;
}

static int c_auth_right(void)
{
	struct frame f;
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	if (send_hello(&p) < 0) {
		peer_close(&p);
		return -1;
	}
	send_frame(&p, FT_INFO, NULL, 0);
	r = recv_answer(&p, &f, RECV_MS);
	if (r != 1 || f.type != FT_INFO_OK)
		r = fail("after the right AUTH: %s", r == 1 ? proto_type_name(f.type) : why);
	else
		r = expect_eof(&p);
	peer_close(&p);
	return r;
}

static int c_auth_twice(void)
{
	uint8_t mac[PROTO_AUTH_LEN] = { 0 };
	struct peer p;
	int r;

	/* Proven once; a second AUTH is not an operation. */
	if (peer_open(&p) < 0)
		return -1;
	if (send_hello(&p) < 0) {
		peer_close(&p);
		return -1;
	}
	send_frame(&p, FT_AUTH, mac, sizeof(mac));
	r = expect_error(&p, EOPNOTSUPP, "frame type 0x0003 (AUTH)");
	peer_close(&p);
	return r;
}

static int c_auth_silent(void)
{
	uint8_t nonce[PROTO_NONCE_LEN];
	uint64_t t0 = now_ms(), dt;
	struct peer p;
	int r;

	/* Asked for the token, says nothing. */
	if (hello_for_nonce(&p, nonce) < 0) {
		peer_close(&p);
		return -1;
	}
	r = expect_error(&p, ETIMEDOUT, "no request within 10 seconds");
	dt = now_ms() - t0;
	peer_close(&p);
	if (r == 0 && (dt < HANDSHAKE_S * 1000u - 500 || dt > HANDSHAKE_S * 1000u + 1500))
		r = fail("closed after %llu ms, not %d s", (unsigned long long)dt, HANDSHAKE_S);
	return r;
}

/* ---- the table ---- */

static const struct {
	const char *name;
	int (*fn)(void);
	const char *bug; /* a failure here is a bug reported to the owner of the code */
} cases[] = {
	{ "garbage before HELLO (an HTTP request): EMSGSIZE", c_garbage_http, NULL },
	{ "garbage before HELLO (a frame of unknown type): EPROTO", c_garbage_small_frame, NULL },
	{ "garbage before HELLO (3000 bytes under HELLO's type): EBADMSG", c_garbage_random, NULL },
	{ "a request before HELLO: EPROTO", c_request_before_hello, NULL },
	{ "a truncated HELLO, a torn header, then close", c_truncated_close, NULL },
	{ "a truncated 1 MiB request, then close", c_truncated_request_close, NULL },
	{ "a length of 4 GiB: EMSGSIZE", c_len_4g, NULL },
	{ "a length of 4 GiB after HELLO: EMSGSIZE", c_len_4g_after_hello, NULL },
	{ "a length of 1 MiB + 1: EMSGSIZE", c_len_1m_plus_1, NULL },
	{ "reserved header flags: EPROTO", c_reserved_flags, NULL },
	{ "an unknown frame type: EOPNOTSUPP", c_unknown_type, NULL },
	{ "an unknown type in the file range: EOPNOTSUPP", c_unknown_fs_type, NULL },
	{ "an unknown type in the network range: EOPNOTSUPP", c_unknown_net_type, NULL },
	{ "an agent-to-client type (EXIT) as a request: EOPNOTSUPP", c_reply_type_as_request, NULL },
	{ "STDIN before any request: EOPNOTSUPP", c_stream_before_request, NULL },
	{ "wrong version (HELLO 2-3): EPROTONOSUPPORT", c_wrong_version, NULL },
	{ "version 0: EPROTONOSUPPORT", c_version_0, NULL },
	{ "an empty version range (3-1): EINVAL", c_version_range_empty, NULL },
	{ "a bad magic number: EPROTO", c_bad_magic, NULL },
	{ "a 7-byte HELLO: EBADMSG", c_hello_short, NULL },
	{ "HELLO twice: EOPNOTSUPP", c_hello_twice, NULL },
	{ "AUTH to an agent without a token: EOPNOTSUPP", c_auth_without_token, NULL },
	{ "EXEC without ARG: EINVAL", c_exec_missing_argv, NULL },
	{ "EXEC with an empty program name: EINVAL", c_exec_empty_argv0, NULL },
	{ "EXEC with CWD twice: EINVAL", c_exec_duplicate_field, NULL },
	{ "EXEC with an unknown field: EINVAL", c_exec_unknown_field, NULL },
	{ "EXEC with trailing bytes: EBADMSG", c_exec_trailing_bytes, NULL },
	{ "EXEC with a field longer than the frame: EBADMSG", c_exec_field_overruns, NULL },
	{ "EXEC with unknown flags: EINVAL", c_exec_unknown_flags, NULL },
	{ "a NUL byte in argv: EINVAL", c_nul_in_argv, NULL },
	{ "a NUL byte in the environment: EINVAL", c_nul_in_env, NULL },
	{ "a NUL byte in the working directory: EINVAL", c_nul_in_cwd, NULL },
	{ "a NUL byte in a file path: EINVAL", c_nul_in_path, NULL },
	{ "an environment entry without a name: EINVAL", c_env_without_name, NULL },
	{ "invalid UTF-8 in argv reaches the command as bytes", c_invalid_utf8_argv, NULL },
	{ "invalid UTF-8 in the environment reaches the command", c_invalid_utf8_env, NULL },
	{ "invalid UTF-8 in a path: mkdir, stat, remove", c_invalid_utf8_path, NULL },
	{ "100,000 argv entries: run, $# is right", c_100k_argv, NULL },
	{ "a 1 MiB environment value: EMSGSIZE (over the frame cap)", c_env_value_1m, NULL },
	{ "a 1 MiB - 64 environment value: not started, E2BIG", c_env_value_1m_minus, NULL },
	{ "a 10,000-byte file path: ENAMETOOLONG", c_path_10000_fs, NULL },
	{ "a 10,000-byte working directory: not started (126)", c_path_10000_cwd, NULL },
	{ "a 10,000-byte program path: not started (126)", c_path_10000_program,
	  "exec/exec.c spawn_failed: a long program name crowds the reason out of EXIT's message" },
	{ "'..' past the root in a path resolves to /", c_dotdot_realpath, NULL },
	{ "removing 'dir/..': EINVAL, nothing removed", c_dotdot_remove, NULL },
	{ "'..' past the root as working directory: /", c_dotdot_cwd, NULL },
	{ "a tree entry '../escaped': EINVAL, nothing written", c_dotdot_tree_entry, NULL },
	{ "a symbolic link loop: stat says ELOOP", c_symlink_loop_stat, NULL },
	{ "a symbolic link loop: realpath says ELOOP", c_symlink_loop_realpath, NULL },
	{ "a symbolic link loop: writing below it says ELOOP", c_symlink_loop_write, NULL },
	{ "a symbolic link loop as working directory: not started (126)", c_symlink_loop_cwd, NULL },
	{ "SIGNAL 0: EINVAL", c_signal_0, NULL },
	{ "SIGNAL 65: EINVAL", c_signal_65, NULL },
	{ "SIGNAL 4294967295: EINVAL", c_signal_huge, NULL },
	{ "a 1-byte SIGNAL: EBADMSG", c_signal_short, NULL },
	{ "a PTY of 0x0: EINVAL", c_pty_0, NULL },
	{ "a PTY of 65535x65535: EINVAL", c_pty_65535, NULL },
	{ "a PTY of 9999x9999 is what the command sees", c_pty_9999, NULL },
	{ "RESIZE to 0x0: EINVAL", c_resize_0, NULL },
	{ "RESIZE to 65535x65535: EINVAL", c_resize_65535, NULL },
	{ "RESIZE without a terminal: EINVAL", c_resize_no_pty, NULL },
	{ "FORWARD to port 0: EINVAL", c_forward_port_0, NULL },
	{ "FORWARD to port 70000: EINVAL", c_forward_port_70000, NULL },
	{ "FORWARD to a port nobody listens on: ECONNREFUSED", c_forward_nothing_listens, NULL },
	{ "FORWARD with PORT twice: EINVAL", c_forward_duplicate_port, NULL },
	{ "frames after EXIT: ignored, the connection ends", c_frames_after_exit, NULL },
	{ "frames after an ERROR: ignored", c_frames_after_error, NULL },
	{ "1000 pipelined requests: one answer", c_pipelined_requests, NULL },
	{ "HELLO and EXEC one byte per write", c_one_byte_writes, NULL },
	{ "two 1 MiB STDIN frames (the largest frame)", c_stdin_1m_frame, NULL },
	{ "100,000 empty STDIN frames", c_stdin_empty_frames, NULL },
	{ "STDIN after STDIN_EOF never reaches the command", c_stdin_after_eof, NULL },
	{ "STDIN_EOF with a payload: EBADMSG", c_stdin_eof_payload, NULL },
	{ "a request frame during a command: EPROTO", c_unexpected_frame_in_cmd, NULL },
	{ "ACK for an ordinary command: EPROTO", c_ack_ordinary, NULL },
	{ "ACK beyond what was sent: EINVAL", c_ack_beyond_sent, NULL },
	{ "ACK of an EXIT not sent: EPROTO", c_ack_exit_not_sent, NULL },
	{ "ATTACH to a pid that does not exist: ESRCH", c_attach_nonexistent, NULL },
	{ "ATTACH to pid 0: EINVAL", c_attach_pid_0, NULL },
	{ "ATTACH with PID twice: EINVAL", c_attach_twice_field, NULL },
	{ "ATTACH to an ordinary command: EBUSY", c_attach_ordinary, NULL },
	{ "a frame on a SESSION: EPROTO", c_session_then_frame, NULL },
	{ "EXTEND by 0, by 2^64-1, and 7 bytes: EINVAL/EBADMSG", c_extend_out_of_range, NULL },
	{ "SHUTDOWN with a 64-byte reason: EINVAL (the agent stays up)", c_shutdown_reason_too_long, NULL },
	{ "SHUTDOWN with an unknown field: EINVAL", c_shutdown_unknown_field, NULL },
	{ "SET_TIME without REALTIME_NS: EINVAL", c_set_time_missing, NULL },
	{ "ENV with a bad name: EINVAL", c_env_bad_name, NULL },
	{ "ENV with an unknown operation: EINVAL", c_env_bad_op, NULL },
	{ "EXTEND without a lifetime: EINVAL", c_extend_no_lifetime, NULL },
	{ "ENV set of 5,000 variables: refused, nothing changed", c_env_set_5000,
	  "server/control.c control_env: the 4,096-variable limit is met while applying, after "
	  "the check; the refused request stays half applied (and unsaved)" },
	{ "256 detached commands, then one more: EAGAIN", c_detached_limit, NULL },
	{ "FORWARD with bytes before the reply: EPROTO", c_forward_bytes_before_reply, NULL },
	{ "ENV list of 2.4 MiB: still well-formed frames", c_env_list_over_1m,
	  "server/control.c control_env: a list over the frame cap leaves half an ENV_LIST "
	  "frame in the queue before the ERROR" },
	{ "a client that half-closes after its request gets all of a 1.2 MiB answer",
	  c_half_close_big_answer, "server/conn.c conn_event (since e85bd07): a connection "
	  "flushing its answer treats EPOLLRDHUP (the client shut its sending side) as a hang-up "
	  "and drops the rest of the answer, mid-frame" },
	{ "INFO with a payload: EBADMSG", c_info_with_payload, NULL },
	{ "EXEC as a user that does not exist: not started (126)", c_no_such_user, NULL },
	{ "FS_STAT without PATH: EINVAL", c_fs_missing_path, NULL },
	{ "FS_STAT with PATH twice: EINVAL", c_fs_duplicate_path, NULL },
	{ "a client that never reads (yes), then leaves: bounded, the command is stopped",
	  c_client_never_reads, NULL },
	{ "a client that leaves mid-command: the command and its child are stopped", c_client_vanishes, NULL },
	{ "1 MiB STDIN frames to a command that never reads: the agent stops taking them",
	  c_stdin_flood, "server/conn.c update_events: a paused connection with nothing to send "
	  "leaves epoll, so its hang-up goes unseen: the command is never hung up on, and its "
	  "connection, pipes and queued input stay until it ends by itself" },
	{ "256 clients with a 1 MiB HELLO, all but a byte: the memory they hold is small",
	  c_preauth_memory, "server/conn.c: before HELLO and AUTH, a frame may still be 1 MiB, "
	  "and the agent buffers it whole: 1,024 connections pin 1 GiB" },
	{ "silent, HELLO-only and dribbling clients: ETIMEDOUT after 10 s", c_silent_connections, NULL },
	{ "2,000 connections at once: 1,024 served, the rest EAGAIN", c_2000_connections, NULL },
	/* With $HOSTILE_TOKEN, only these run; without, they do not. */
	{ "auth: a request instead of AUTH: EACCES", c_auth_request_instead, NULL },
	{ "auth: the proof of another token: EACCES", c_auth_wrong, NULL },
	{ "auth: another connection's proof (replay): EACCES; nonces differ", c_auth_replay, NULL },
	{ "auth: a 31-byte AUTH: EBADMSG", c_auth_short, NULL },
	{ "auth: a 1 MiB AUTH header: refused before the payload", c_auth_1m_header, NULL },
	{ "auth: AUTH before HELLO: EPROTO", c_auth_before_hello, NULL },
	{ "auth: the right proof: served", c_auth_right, NULL },
	{ "auth: AUTH twice: EOPNOTSUPP", c_auth_twice, NULL },
	{ "auth: asked for the token, silent: ETIMEDOUT after 10 s", c_auth_silent, NULL },
};

static bool selected(const char *name, int argc, char **argv)
{
	/* The auth: cases need an agent with a token, and only run there. */
	if ((strncmp(name, "auth:", 5) == 0) != (token != NULL))
		return false;
	if (argc == 0)
		return true;
	for (int i = 0; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	char err[256];
	int failed = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: sbx-hostile ADDR SERVER_PID SCRATCH_DIR [CASE...]\n");
		return 2;
	}
	if (addr_parse(argv[1], &agent, err, sizeof(err)) < 0) {
		fprintf(stderr, "sbx-hostile: %s\n", err);
		return 2;
	}
	server = (pid_t)atoi(argv[2]);
	scratch = argv[3];
	if (getenv("HOSTILE_SUITE"))
		suite = getenv("HOSTILE_SUITE");
	if (getenv("HOSTILE_TOKEN") && *getenv("HOSTILE_TOKEN")) {
		token = getenv("HOSTILE_TOKEN");
		proto_auth_key(token, auth_key);
	}
	if (getenv("HOSTILE_RSS_SLACK_KIB"))
		rss_slack_kib = atol(getenv("HOSTILE_RSS_SLACK_KIB"));
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Warm up, then take the baseline the server must come back to. */
	for (int i = 0; i < 20; i++)
		if (echo_works() < 0) {
			printf("not ok - %s: the agent serves before the table (%s)\n", suite, why);
			return 1;
		}
	usleep(200000);
	base_fds = fd_count(server);
	base_rss = rss_kib(server);
	if (base_fds < 0 || base_rss < 0) {
		printf("not ok - %s: cannot read /proc/%d of the server\n", suite, (int)server);
		return 1;
	}
	printf("# server %d: %d fds, %ld KiB RSS before the table (slack %ld KiB)\n", (int)server,
	       base_fds, base_rss, rss_slack_kib);
	/* The plan: tests/integration/hostile.sh checks that as many results
	 * as this came out, so a crash or a hang mid-table cannot pass. */
	{
		size_t planned = 0;

		for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
			planned += selected(cases[i].name, argc - 4, argv + 4);
		printf("# plan: %zu cases\n", planned);
	}
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t t0;
		int r;

		if (!selected(cases[i].name, argc - 4, argv + 4))
			continue;
		why[0] = '\0';
		t0 = now_ms();
		r = cases[i].fn();
		/* Whatever the answer was, the agent must recover from it. */
		{
			char answer[sizeof(why)];

			memcpy(answer, why, sizeof(answer));
			if (healthy() < 0) {
				char after[sizeof(why)];

				memcpy(after, why, sizeof(after));
				snprintf(why, sizeof(why), "%s%safterwards: %s", r ? answer : "",
					 r ? "; " : "", after);
				r = -1;
			} else {
				memcpy(why, answer, sizeof(why));
			}
		}
		printf("%s - %s: %s\n", r == 0 ? "ok" : "not ok", suite, cases[i].name);
		if (r != 0) {
			printf("#   %s\n", why);
			if (cases[i].bug)
				printf("#   known bug (reported): %s\n", cases[i].bug);
			failed++;
		}
		if (now_ms() - t0 > 3000)
			printf("#   (%.1f s)\n", (double)(now_ms() - t0) / 1000);
	}
	printf("# server %d: %d fds, %ld KiB RSS after the table; largest RSS left after a case: "
	       "+%ld KiB\n", (int)server, fd_count(server), rss_kib(server), worst_rss_delta);
	return failed ? 1 : 0;
}
