/* sbx-hostile: cases that hold connections open: many clients before
 * HELLO, silent and dribbling ones, more than the agent takes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/tools/hostile/hostile.h"

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

static const struct hostile_case cases[] = {
	{ .name = "256 clients with a 1 MiB HELLO, all but a byte: the memory they hold is small", .fn = c_preauth_memory,
	  .bug = "server/conn.c: before HELLO and AUTH, a frame may still be 1 MiB, "
	  "and the agent buffers it whole: 1,024 connections pin 1 GiB" },
	{ .name = "silent, HELLO-only and dribbling clients: ETIMEDOUT after 10 s", .fn = c_silent_connections },
	{ .name = "2,000 connections at once: 1,024 served, the rest EAGAIN", .fn = c_2000_connections },
};

HOSTILE_AREA(hostile_conns, cases);
