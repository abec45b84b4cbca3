/* sbx-hostile: commands: EXEC fields, arguments and environments at their
 * limits, SIGNAL, PTY and RESIZE, STDIN, ACK and ATTACH, clients that
 * leave. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "tests/tools/hostile/hostile.h"

static int c_invalid_utf8_argv(void)
{
	char *argv[] = { "printf", "%s|%s", "\xff\xfe\xc0\x80", "\xed\xa0\x80 ok", NULL };

	/* Arguments are bytes, not UTF-8: they reach the command as sent. */
	return run_prints(argv, NULL, NULL, "\xff\xfe\xc0\x80|\xed\xa0\x80 ok");
}

static int c_invalid_utf8_env(void)
{
	char *argv[] = { "sh", "-c", "printf %s \"$BYTES\"", NULL };
	char *env[] = { "BYTES=\x80\xbf\xf8\x88\x80\x80\x80", NULL };

	return run_prints(argv, env, NULL, "\x80\xbf\xf8\x88\x80\x80\x80");
}

static int c_100k_argv(void)
{
	size_t n = 100000;
	char **argv = calloc(n + 1, sizeof(char *));
	int r;

	if (!argv)
		return fail("out of memory");
	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = "echo $#";
	argv[3] = "sh";
	for (size_t i = 4; i < n; i++)
		argv[i] = "x";
	r = run_prints(argv, NULL, NULL, "99996\n");
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

static int c_pty_9999(void)
{
	char *argv[] = { "stty", "size", NULL };
	struct exec_req r = { .argv = argv, .argc = 2, .pty = true, .rows = 9999, .cols = 9999 };
	struct peer p;
	int rc;

	/* The largest size is accepted and reaches the terminal. */
	if (open_exec(&p, &r) < 0)
		return -1;
	rc = exit_prints(&p, "9999 9999\r\n");
	peer_close(&p);
	return rc;
}

static int c_stdin_1m_frame(void)
{
	char *argv[] = { "wc", "-c", NULL };
	uint8_t *big = calloc(1, PROTO_FRAME_MAX);
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
	r = exit_prints(&p, "2097152\n");
	peer_close(&p);
	return r;
}

static int c_stdin_empty_frames(void)
{
	char *argv[] = { "wc", "-c", NULL };
	struct buf b;
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
	r = exit_prints(&p, "0\n");
	peer_close(&p);
	return r;
}

/* The agent reads a command's frames header first and splices STDIN
 * payloads into its pipe (conn/conn.c sink_read, rx_body): headers and
 * payloads that come a byte at a time still reach the command whole. */
static int c_stdin_dribbled(void)
{
	char *argv[] = { "wc", "-c", NULL };
	char chunk[100];
	struct buf b;
	struct peer p;
	int r = 0;

	memset(chunk, 'x', sizeof(chunk));
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, EXEC_F_STDIN);
	buf_init(&b, 4096);
	for (int i = 0; i < 3; i++)
		proto_put(&b, FT_STDIN, chunk, sizeof(chunk));
	proto_put(&b, FT_STDIN_EOF, NULL, 0);
	for (size_t i = 0; i < buf_len(&b) && r == 0; i++) {
		if ((r = send_raw(&p, buf_head(&b) + i, 1)) < 0)
			r = fail("byte %zu of the STDIN frames: %s", i, strerror(-r));
		usleep(300);
	}
	buf_free(&b);
	if (r == 0)
		r = exit_prints(&p, "300\n");
	peer_close(&p);
	return r;
}

/* A STDIN frame announces 1000 bytes, 500 come, and the client goes while
 * the payload is being spliced: the command is stopped as for any client
 * that leaves, and nothing of the connection stays (the harness counts
 * the server's fds). */
static int c_stdin_cut_mid_payload(void)
{
	char marker[64], script[128], *argv[] = { "sh", "-c", script, NULL };
	uint8_t hdr[PROTO_HDR_LEN], half[500];
	struct peer p;

	snprintf(marker, sizeof(marker), "sleep 8%d.", (int)getpid());
	snprintf(script, sizeof(script), "cat >/dev/null; %s1", marker);
	memset(half, 'y', sizeof(half));
	proto_hdr_put(hdr, FT_STDIN, 1000);
	if (peer_open(&p) < 0)
		return -1;
	send_hello(&p);
	send_exec(&p, argv, NULL, NULL, EXEC_F_STDIN);
	usleep(200000);
	send_raw(&p, hdr, sizeof(hdr));
	send_raw(&p, half, sizeof(half));
	usleep(200000);
	if (procs_with(marker) < 1) {
		peer_close(&p);
		return fail("wanted sh (waiting for cat) running, found %d", procs_with(marker));
	}
	peer_close(&p);
	return wait_procs_gone(marker, 5000);
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

/* An ACK to a detached command, and the ERROR it must get. The command
 * outlives its client: end it and collect it afterwards, so that nothing
 * of it stays in the agent. */
static int detached_ack_error(const struct ack *a, int code, const char *text)
{
	struct buf b;
	struct peer p;
	pid_t pid;
	int r;

	if (start_cmd(&p, false, EXEC_F_DETACH, &pid) < 0) {
		peer_close(&p);
		return -1;
	}
	buf_init(&b, 4096);
	proto_ack_put(&b, a);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, code, text);
	peer_close(&p);
	if (kill_and_collect(pid) < 0)
		return -1;
	return r;
}

static int c_ack_beyond_sent(void)
{
	struct ack a = { .out_off = 1000000 };

	return detached_ack_error(&a, EINVAL, "ACK of stdout offset 1000000, but 0-0 were sent");
}

static int c_ack_exit_not_sent(void)
{
	struct ack a = { .flags = ACK_F_EXIT };

	return detached_ack_error(&a, EPROTO, "ACK of an EXIT that was not sent");
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
	send_fields(&q, FT_ATTACH, (const struct field[]){ { ATTACH_PID, u32le((uint32_t)pid), 4 }, { 0 } });
	r = expect_error(&q, EBUSY, "belongs to the client that started it");
	peer_close(&q);
	peer_close(&p);
	return r;
}

static int c_no_such_user(void)
{
	char *argv[] = { "true", NULL };
	struct exec_req r = { .argv = argv, .argc = 1, .user = "no-such-user-x" };
	struct peer p;
	int rc;

	if (open_exec(&p, &r) < 0)
		return -1;
	rc = expect_exit(&p, EXIT_NOT_STARTED, 126, "no such user: no-such-user-x", NULL);
	peer_close(&p);
	return rc;
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

/* ---- direct stdout: OUTPUT connections ---- */

/* An OUTPUT connection and its id. */
static int output_open(struct peer *o, uint8_t id[PROTO_OUTPUT_ID_LEN])
{
	struct frame f;

	if (peer_open(o) < 0)
		return -1;
	if (send_hello(o) < 0 || send_frame(o, FT_OUTPUT, NULL, 0) < 0)
		goto fail;
	if (recv_answer(o, &f, RECV_MS) != 1)
		goto fail;
	if (f.type != FT_OUTPUT_OK || f.len != PROTO_OUTPUT_ID_LEN) {
		fail("OUTPUT answered with %s of %u bytes", proto_type_name(f.type), f.len);
		goto fail;
	}
	memcpy(id, f.payload, PROTO_OUTPUT_ID_LEN);
	return 0;
fail:
	peer_close(o);
	return -1;
}

/* EXEC of argv with its stdout on the OUTPUT connection id. */
static int exec_direct(struct peer *p, char **argv, const uint8_t id[PROTO_OUTPUT_ID_LEN])
{
	struct exec_req r = { .argv = argv, .out_conn = true };

	while (argv[r.argc])
		r.argc++;
	memcpy(r.out_id, id, PROTO_OUTPUT_ID_LEN);
	return open_exec(p, &r);
}

/* Reads the OUTPUT connection to its end: what it carried. */
static int drain_raw(struct peer *o, struct buf *out)
{
	uint8_t b[65536];

	for (;;) {
		struct pollfd pfd = { .fd = o->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, RECV_MS) <= 0)
			return fail("the OUTPUT connection did not end within %d ms", RECV_MS);
		n = recv(o->fd, b, sizeof(b), 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return fail("recv on the OUTPUT connection: %s", strerror(errno));
		if (buf_append(out, b, (size_t)n) < 0)
			return fail("too much output");
	}
}

static int c_output_direct(void)
{
	char *argv[] = { "sh", "-c", "echo direct; echo apart >&2; exit 5", NULL };
	uint8_t id[PROTO_OUTPUT_ID_LEN];
	struct peer o, p;
	struct buf out, framed;
	int r;

	if (output_open(&o, id) < 0)
		return -1;
	if (exec_direct(&p, argv, id) < 0) {
		peer_close(&o);
		return -1;
	}
	buf_init(&out, 1 << 20);
	buf_init(&framed, 1 << 20);
	r = expect_exit(&p, EXIT_EXITED, 5, "", &framed);
	if (r == 0)
		r = drain_raw(&o, &out);
	if (r == 0 && buf_len(&framed))
		r = fail("STDOUT frames came on the EXEC connection: %zu bytes", buf_len(&framed));
	if (r == 0)
		r = out_is(&out, "direct\n");
	buf_free(&out);
	buf_free(&framed);
	peer_close(&p);
	peer_close(&o);
	return r;
}

static int c_output_twice(void)
{
	char *argv[] = { "true", NULL };
	uint8_t id[PROTO_OUTPUT_ID_LEN];
	struct peer o, p, q;
	int r;

	if (output_open(&o, id) < 0)
		return -1;
	if (exec_direct(&p, argv, id) < 0) {
		peer_close(&o);
		return -1;
	}
	r = expect_exit(&p, EXIT_EXITED, 0, "", NULL);
	if (r == 0 && (r = exec_direct(&q, argv, id)) == 0) {
		r = expect_error(&q, ENOENT, "no OUTPUT connection waits under that id");
		peer_close(&q);
	}
	peer_close(&p);
	peer_close(&o);
	return r;
}

/* The ERROR an EXEC naming an OUTPUT connection gets once the agent had
 * time to see what its client did to it while it waited: closed it
 * (gone: ENOENT; an EXEC faster than that would find a socket that fails
 * the command's writes), or sent a part of a frame, read but too short to
 * be one (EPROTO, as whole bytes behind the request). */
static int claim_after(bool close_it, int code, const char *text)
{
	char *argv[] = { "true", NULL };
	uint8_t id[PROTO_OUTPUT_ID_LEN], part[3] = { 0 };
	struct peer o, p;
	int r;

	if (output_open(&o, id) < 0)
		return -1;
	if (close_it)
		peer_close(&o);
	else
		send_raw(&o, part, sizeof(part));
	usleep(300000);
	if ((r = exec_direct(&p, argv, id)) == 0) {
		r = expect_error(&p, code, text);
		peer_close(&p);
	}
	if (!close_it)
		peer_close(&o);
	return r;
}

static int c_output_closed_while_waiting(void)
{
	return claim_after(true, ENOENT, "no OUTPUT connection waits under that id");
}

static int c_output_partial_frame(void)
{
	return claim_after(false, EPROTO, "the client sent bytes on its OUTPUT connection after OUTPUT");
}

/* An EXEC refused before it claims its OUTPUT connection (STDOUT_CONN
 * with PTY: EINVAL) leaves that connection waiting: a good EXEC can
 * still name it (docs/PROTOCOL.md). */
static int c_output_refused_exec(void)
{
	char *argv[] = { "sh", "-c", "echo still", NULL };
	uint8_t id[PROTO_OUTPUT_ID_LEN];
	struct exec_req bad = { .argv = argv, .argc = 3, .out_conn = true, .pty = true,
				.rows = 24, .cols = 80 };
	struct peer o, p, q;
	struct buf out;
	int r;

	if (output_open(&o, id) < 0)
		return -1;
	memcpy(bad.out_id, id, PROTO_OUTPUT_ID_LEN);
	if ((r = open_exec(&p, &bad)) == 0) {
		r = expect_error(&p, EINVAL, "field STDOUT_CONN does not go with");
		peer_close(&p);
	}
	buf_init(&out, 1 << 16);
	if (r == 0 && (r = exec_direct(&q, argv, id)) == 0) {
		r = expect_exit(&q, EXIT_EXITED, 0, "", NULL);
		if (r == 0)
			r = drain_raw(&o, &out);
		if (r == 0)
			r = out_is(&out, "still\n");
		peer_close(&q);
	}
	buf_free(&out);
	peer_close(&o);
	return r;
}

/* The ERROR on an OUTPUT connection that waits, after a frame sent on it
 * (EPROTO) or none (ETIMEDOUT after 10 s). */
static int waiting_error(bool send_ps, int code, const char *text)
{
	uint8_t id[PROTO_OUTPUT_ID_LEN];
	struct peer o;
	int r;

	if (output_open(&o, id) < 0)
		return -1;
	if (send_ps)
		send_frame(&o, FT_PS, NULL, 0);
	r = expect_error(&o, code, text);
	peer_close(&o);
	return r;
}

static int c_output_frame_while_waiting(void)
{
	return waiting_error(true, EPROTO, "waits to be a command's standard output");
}

static int c_output_unclaimed(void)
{
	return waiting_error(false, ETIMEDOUT, "no EXEC named this OUTPUT connection within 10 seconds");
}

/* The reader of a direct stdout goes, the EXEC connection stays: the
 * command's writes fail as at a pipe whose reader left (EPIPE and
 * SIGPIPE; a Unix socket closed with unread bytes says ECONNRESET
 * instead, and yes then exits 1), and its status still arrives. */
static int c_output_reader_leaves(void)
{
	char *argv[] = { "yes", NULL };
	uint8_t id[PROTO_OUTPUT_ID_LEN], b[4096];
	struct exit_status x;
	struct proto_err e;
	struct frame f;
	struct peer o, p;
	int r;

	if (output_open(&o, id) < 0)
		return -1;
	if (exec_direct(&p, argv, id) < 0) {
		peer_close(&o);
		return -1;
	}
	if (recv(o.fd, b, sizeof(b), 0) <= 0) {
		peer_close(&o);
		peer_close(&p);
		return fail("no output on the OUTPUT connection");
	}
	peer_close(&o);
	while ((r = recv_answer(&p, &f, RECV_MS)) == 1 && f.type != FT_EXIT)
		if (f.type != FT_STARTED && f.type != FT_STDERR)
			break;
	if (r != 1 || f.type != FT_EXIT)
		r = r < 0 ? -1 : fail("no EXIT after the reader left (got %s)",
				      r == 1 ? proto_type_name(f.type) : "the end");
	else if (proto_exit_decode(&f, &x, &e) < 0)
		r = fail("bad EXIT: %s", e.msg);
	else if (!(x.how == EXIT_SIGNALED && x.value == SIGPIPE) && !(x.how == EXIT_EXITED && x.value == 1))
		r = fail("EXIT how %d value %d: wanted SIGPIPE or a write error's status 1", x.how, x.value);
	else
		r = 0;
	peer_close(&p);
	return r;
}

/* Both connections of a direct-stdout command go mid-stream: the
 * command is stopped as any whose client left. */
static int c_output_client_vanishes(void)
{
	char marker[64], *argv[] = { "yes", marker, NULL };
	uint8_t id[PROTO_OUTPUT_ID_LEN], b[4096];
	struct peer o, p;

	snprintf(marker, sizeof(marker), "hostile-direct-%d", (int)getpid());
	if (output_open(&o, id) < 0)
		return -1;
	if (exec_direct(&p, argv, id) < 0) {
		peer_close(&o);
		return -1;
	}
	if (recv(o.fd, b, sizeof(b), 0) <= 0 || procs_with(marker) != 1) {
		peer_close(&o);
		peer_close(&p);
		return fail("the command does not write to its OUTPUT connection");
	}
	/* Not reading: the command blocks on a full socket; then both go. */
	usleep(300000);
	peer_close(&p);
	peer_close(&o);
	return wait_procs_gone(marker, 5000);
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

static const struct hostile_case cases[] = {
	{ .name = "EXEC without ARG: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_CWD, "/") },
		     .code = EINVAL,
		     .text = "EXEC: no program given (field ARG is missing)" } },
	{ .name = "EXEC with an empty program name: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, ""), FIELD(EXEC_ARG, "x") },
		     .code = EINVAL, .text = "EXEC: the program name is empty" } },
	{ .name = "EXEC with CWD twice: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_CWD, "/"), FIELD(EXEC_CWD, "/tmp") },
		     .code = EINVAL, .text = "EXEC: field CWD given twice" } },
	{ .name = "EXEC with an unknown field: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(99, "?") },
		     .code = EINVAL, .text = "EXEC: unknown field 99" } },
	{ .name = "EXEC with trailing bytes: EBADMSG",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_EXEC,
		     BYTES("\1\0" "\4\0\0\0" "true" "\1\0\5"),
		     .code = EBADMSG, .text = "EXEC: 3 trailing bytes do not form a field" } },
	{ .name = "EXEC with a field longer than the frame: EBADMSG",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_EXEC,
		     BYTES("\1\0" "\xff\xff\xff\x7f" "true"),
		     .code = EBADMSG,
		     .text = "EXEC: field 1 claims 2147483647 bytes but only 4 remain" } },
	{ .name = "EXEC with unknown flags: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_FLAGS, "\0\0\0\x80") },
		     .code = EINVAL, .text = "EXEC: unknown flags 0x80000000" } },
	{ .name = "a NUL byte in argv: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "echo"), FIELD(EXEC_ARG, "a\0b") },
		     .code = EINVAL, .text = "EXEC: field ARG contains a NUL byte" } },
	{ .name = "a NUL byte in the environment: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_ENV, "A=b\0c") },
		     .code = EINVAL, .text = "EXEC: field ENV contains a NUL byte" } },
	{ .name = "a NUL byte in the working directory: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_CWD, "/tmp\0/etc") },
		     .code = EINVAL, .text = "EXEC: field CWD contains a NUL byte" } },
	{ .name = "an environment entry without a name: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_ENV, "=value") },
		     .code = EINVAL, .text = "EXEC: environment entry 1 is not NAME=value" } },
	{ .name = "invalid UTF-8 in argv reaches the command as bytes", .fn = c_invalid_utf8_argv },
	{ .name = "invalid UTF-8 in the environment reaches the command", .fn = c_invalid_utf8_env },
	{ .name = "100,000 argv entries: run, $# is right", .fn = c_100k_argv },
	{ .name = "a 1 MiB environment value: EMSGSIZE (over the frame cap)", .fn = c_env_value_1m },
	{ .name = "a 1 MiB - 64 environment value: not started, E2BIG", .fn = c_env_value_1m_minus },
	{ .name = "a 10,000-byte working directory: not started (126)", .fn = c_path_10000_cwd },
	{ .name = "a 10,000-byte program path: not started (126)", .fn = c_path_10000_program,
	  .bug = "exec/exec.c spawn_failed: a long program name crowds the reason out of EXIT's message" },
	{ .name = "SIGNAL 0: EINVAL",
	  .frame = { IN_COMMAND, PAYLOAD, FT_SIGNAL,
		     BYTES("\0\0\0\0"),
		     .code = EINVAL, .text = "SIGNAL: signal 0 is out of range (1-64)" } },
	{ .name = "SIGNAL 65: EINVAL",
	  .frame = { IN_COMMAND, PAYLOAD, FT_SIGNAL,
		     BYTES("\x41\0\0\0"),
		     .code = EINVAL, .text = "SIGNAL: signal 65 is out of range (1-64)" } },
	{ .name = "SIGNAL 4294967295: EINVAL",
	  .frame = { IN_COMMAND, PAYLOAD, FT_SIGNAL,
		     BYTES("\xff\xff\xff\xff"),
		     .code = EINVAL,
		     .text = "SIGNAL: signal 4294967295 is out of range (1-64)" } },
	{ .name = "a 1-byte SIGNAL: EBADMSG",
	  .frame = { IN_COMMAND, PAYLOAD, FT_SIGNAL,
		     BYTES("\x09"),
		     .code = EBADMSG, .text = "SIGNAL payload is 1 bytes, expected 4" } },
	{ .name = "a PTY of 0x0: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_PTY, "\0\0\0\0") },
		     .code = EINVAL,
		     .text = "EXEC: terminal size 0x0 is out of range (1-9999)" } },
	{ .name = "a PTY of 65535x65535: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_PTY, "\xff\xff\xff\xff") },
		     .code = EINVAL,
		     .text = "EXEC: terminal size 65535x65535 is out of range (1-9999)" } },
	{ .name = "a PTY of 9999x9999 is what the command sees", .fn = c_pty_9999 },
	{ .name = "RESIZE to 0x0: EINVAL",
	  .frame = { IN_PTY_COMMAND, PAYLOAD, FT_RESIZE,
		     BYTES("\0\0\0\0"),
		     .code = EINVAL,
		     .text = "RESIZE: terminal size 0x0 is out of range (1-9999)" } },
	{ .name = "RESIZE to 65535x65535: EINVAL",
	  .frame = { IN_PTY_COMMAND, PAYLOAD, FT_RESIZE,
		     BYTES("\xff\xff\xff\xff"),
		     .code = EINVAL,
		     .text = "RESIZE: terminal size 65535x65535 is out of range (1-9999)" } },
	{ .name = "RESIZE without a terminal: EINVAL",
	  .frame = { IN_COMMAND, PAYLOAD, FT_RESIZE,
		     BYTES("\x18\0\x50\0"),
		     .code = EINVAL, .text = "RESIZE: the command has no terminal" } },
	{ .name = "two 1 MiB STDIN frames (the largest frame)", .fn = c_stdin_1m_frame },
	{ .name = "100,000 empty STDIN frames", .fn = c_stdin_empty_frames },
	{ .name = "STDIN after STDIN_EOF never reaches the command", .fn = c_stdin_after_eof },
	{ .name = "STDIN frames sent a byte at a time reach the command whole", .fn = c_stdin_dribbled },
	{ .name = "a client that leaves mid-STDIN payload: the command is stopped", .fn = c_stdin_cut_mid_payload },
	{ .name = "STDIN_EOF with a payload: EBADMSG",
	  .frame = { IN_COMMAND, PAYLOAD, FT_STDIN_EOF,
		     BYTES("x"),
		     .code = EBADMSG, .text = "STDIN_EOF payload is 1 bytes, expected 0" } },
	{ .name = "a request frame during a command: EPROTO",
	  .frame = { IN_COMMAND, PAYLOAD, FT_PS,
		     .code = EPROTO, .text = "unexpected PS frame during a command" } },
	{ .name = "ACK for an ordinary command: EPROTO",
	  .frame = { IN_COMMAND, PAYLOAD, FT_ACK,
		     BYTES(ZEROS_8 ZEROS_8 ZEROS_8),
		     .code = EPROTO, .text = "ACK is for detached commands" } },
	{ .name = "ACK beyond what was sent: EINVAL", .fn = c_ack_beyond_sent },
	{ .name = "ACK of an EXIT not sent: EPROTO", .fn = c_ack_exit_not_sent },
	{ .name = "ATTACH to a pid that does not exist: ESRCH",
	  .frame = { AFTER_HELLO, FIELDS, FT_ATTACH,
		     .fields = { FIELD(ATTACH_PID, "\x3f\x42\x0f\0") },
		     .code = ESRCH, .text = "no command with pid 999999" } },
	{ .name = "ATTACH to pid 0: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_ATTACH,
		     .fields = { FIELD(ATTACH_PID, "\0\0\0\0") },
		     .code = EINVAL, .text = "ATTACH: field PID is missing" } },
	{ .name = "ATTACH with PID twice: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_ATTACH,
		     .fields = { FIELD(ATTACH_PID, "\1\0\0\0"), FIELD(ATTACH_PID, "\2\0\0\0") },
		     .code = EINVAL, .text = "ATTACH: expected one field PID of 4 bytes" } },
	{ .name = "ATTACH to an ordinary command: EBUSY", .fn = c_attach_ordinary },
	{ .name = "OUTPUT with a payload: EBADMSG",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_OUTPUT,
		     BYTES("x"),
		     .code = EBADMSG, .text = "OUTPUT payload is 1 bytes, expected 0" } },
	{ .name = "EXEC naming an OUTPUT id nobody offered: ENOENT",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_STDOUT_CONN, ZEROS_8 ZEROS_8) },
		     .code = ENOENT, .text = "no OUTPUT connection waits under that id" } },
	{ .name = "a 15-byte STDOUT_CONN: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_STDOUT_CONN, "0123456789abcde") },
		     .code = EINVAL, .text = "EXEC: field STDOUT_CONN is 15 bytes, expected 16" } },
	{ .name = "STDOUT_CONN with DETACH: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_FLAGS, "\x10\0\0\0"),
				 FIELD(EXEC_STDOUT_CONN, ZEROS_8 ZEROS_8) },
		     .code = EINVAL, .text = "EXEC: field STDOUT_CONN does not go with DETACH" } },
	{ .name = "STDOUT_CONN with a PTY: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_EXEC,
		     .fields = { FIELD(EXEC_ARG, "true"), FIELD(EXEC_PTY, "\x18\0\x50\0"),
				 FIELD(EXEC_STDOUT_CONN, ZEROS_8 ZEROS_8) },
		     .code = EINVAL, .text = "EXEC: field STDOUT_CONN does not go with PTY" } },
	{ .name = "direct stdout: raw bytes on the OUTPUT connection, status and stderr on EXEC's", .fn = c_output_direct },
	{ .name = "an OUTPUT id used twice: the second EXEC gets ENOENT", .fn = c_output_twice },
	{ .name = "a frame on an OUTPUT connection that waits: EPROTO", .fn = c_output_frame_while_waiting },
	{ .name = "an OUTPUT connection closed while it waits: EXEC naming it gets ENOENT", .fn = c_output_closed_while_waiting },
	{ .name = "part of a frame behind OUTPUT: EXEC naming it gets EPROTO", .fn = c_output_partial_frame },
	{ .name = "an EXEC refused before its claim leaves the OUTPUT connection waiting", .fn = c_output_refused_exec },
	{ .name = "an OUTPUT connection no EXEC claims: ETIMEDOUT after 10 s", .fn = c_output_unclaimed },
	{ .name = "the reader of a direct stdout leaves: the command's writes fail, EXIT says so", .fn = c_output_reader_leaves },
	{ .name = "a direct-stdout client that leaves mid-stream: the command is stopped", .fn = c_output_client_vanishes },
	{ .name = "256 detached commands, then one more: EAGAIN", .fn = c_detached_limit },
	{ .name = "EXEC as a user that does not exist: not started (126)", .fn = c_no_such_user },
	{ .name = "a client that never reads (yes), then leaves: bounded, the command is stopped", .fn = c_client_never_reads },
	{ .name = "a client that leaves mid-command: the command and its child are stopped", .fn = c_client_vanishes },
	{ .name = "1 MiB STDIN frames to a command that never reads: the agent stops taking them", .fn = c_stdin_flood,
	  .bug = "server/conn.c update_events: a paused connection with nothing to send "
	  "leaves epoll, so its hang-up goes unseen: the command is never hung up on, and its "
	  "connection, pipes and queued input stay until it ends by itself" },
};

HOSTILE_AREA(hostile_exec, cases);
