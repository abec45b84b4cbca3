/* libFuzzer target: the agent's side of a connection, end to end. The
 * input is what a client sends on one connection; it goes through a real
 * socket into conn/conn.c (frame reassembly, the hello, the handshake
 * state) and on to the real request handlers (ops.c, control.c: INFO,
 * SESSION, EXTEND, SET_TIME, SHUTDOWN, ENV; exec/exec.c: EXEC, ATTACH, PS),
 * with processes, files, ports and PID 1 stubbed (agent_stubs.c).
 *
 * The first byte sets how the rest is cut into writes (1-16 bytes, or
 * 256-61440), so frames arrive split at every point; values 0xf0 and up
 * give the sandbox a token, so the client must authenticate, and 0xee an
 * environment of 1.2 MiB (two 600 KiB variables), more than one frame
 * can list. What the agent sends
 * back must be a well-formed sequence of frames that a client can decode
 * (HELLO_OK or ERROR first, nothing after a final answer), the connection
 * must be freed once the client is gone, and no fd may be left open. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/loop.h"
#include "conn/conn.h"
#include "server/server.h"
#include "tests/fuzz/fuzz.h"
#include "vsock/proto_fs.h"
#include "vsock/proto_net.h"

extern struct config fuzz_cfg;
extern bool fuzz_auth;

#define OUT_MAX (16u << 20)
#define SETTLE_ROUNDS 2000

static bool verbose; /* FUZZ_VERBOSE=1: print what the agent answers */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	signal(SIGPIPE, SIG_IGN);
	FUZZ_CHECK(loop_init() == 0);
	config_init(&fuzz_cfg);
	server_devnull(); /* opened once, as in the server */
	return 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	FUZZ_CHECK(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static bool from_agent(uint16_t t)
{
	switch (t) {
	case FT_HELLO_OK: case FT_ERROR: case FT_OK: case FT_STARTED: case FT_STDOUT:
	case FT_STDERR: case FT_EXIT: case FT_ATTACHED: case FT_PS_ENTRY: case FT_ENV_LIST:
	case FT_LIFETIME: case FT_INFO_OK: case FT_SSH_SERVER: case FT_SSH_KEYS:
		return true;
	}
	return t >= FT_FS_STREAM_FIRST && t <= FT_FS_STREAM_LAST;
}

/* After one of these the agent has answered and closes. */
static bool final(uint16_t t)
{
	return t == FT_ERROR || t == FT_OK || t == FT_EXIT || t == FT_INFO_OK;
}

/* May `t` follow `last`? Nothing follows a final answer; a session's
 * LIFETIME is followed by nothing but an ERROR; lists (ENV_LIST,
 * PS_ENTRY) go on until OK (or an ERROR). */
static bool may_follow(uint16_t last, uint16_t t)
{
	if (final(last))
		return false;
	if (last == FT_LIFETIME)
		return t == FT_ERROR;
	if (last == FT_ENV_LIST || last == FT_PS_ENTRY)
		return t == last || t == FT_OK || t == FT_ERROR;
	return true;
}

static void dump_output(const uint8_t *p, size_t len)
{
	fprintf(stderr, "fuzz: the agent sent %zu bytes:", len);
	for (size_t i = 0; i < len && i < 256; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

/* What a client receives must decode, frame by frame. */
static void check_output(const uint8_t *p, size_t len)
{
	size_t used = 0, frames = 0;
	uint16_t last = 0;

	while (used < len) {
		struct proto_err e;
		struct frame f;
		long n = proto_frame_parse(p + used, len - used, &f, &e);

		if (n <= 0) {
			dump_output(p, len);
			fprintf(stderr, "fuzz: %s after %zu frames (offset %zu)\n",
				n == 0 ? "a partial frame" : e.msg, frames, used);
			abort();
		}
		if (!from_agent(f.type) || (frames == 0 && f.type != FT_HELLO_OK && f.type != FT_ERROR) ||
		    (frames > 0 && !may_follow(last, f.type))) {
			dump_output(p, len);
			fprintf(stderr, "fuzz: frame %zu is %s (0x%04x) after %s\n", frames,
				proto_type_name(f.type), f.type, frames ? proto_type_name(last) : "nothing");
			abort();
		}
		switch (f.type) {
		case FT_HELLO_OK: {
			struct hello_ok h;

			FUZZ_CHECK(frames == 0 && proto_hello_ok_decode(&f, &h, &e) == 0 &&
				   h.version >= PROTO_VERSION_MIN && h.version <= PROTO_VERSION);
			break;
		}
		case FT_ERROR: {
			char msg[PROTO_MSG_MAX + 1];
			int code;

			FUZZ_CHECK(proto_error_decode(&f, &code, msg, sizeof(msg), &e) == 0);
			FUZZ_CHECK(msg[0] != '\0');
			break;
		}
		case FT_EXIT: {
			static struct exit_status x;

			FUZZ_CHECK(proto_exit_decode(&f, &x, &e) == 0);
			/* Nothing is ever started here: a failed start, with a reason. */
			FUZZ_CHECK(x.how == EXIT_NOT_STARTED && (x.value == 126 || x.value == 127) &&
				   x.msg[0] != '\0');
			break;
		}
		case FT_LIFETIME: {
			struct lifetime l;

			FUZZ_CHECK(proto_lifetime_decode(&f, &l, &e) == 0);
			break;
		}
		case FT_INFO_OK: {
			struct info i;

			FUZZ_CHECK(proto_info_ok_decode(&f, &i, &e) == 0);
			break;
		}
		case FT_OK:
			FUZZ_CHECK(f.len == 0);
			break;
		case FT_ENV_LIST: {
			struct field_iter it;
			const uint8_t *v;
			uint16_t tag;
			uint32_t vl;
			int r;

			proto_fields(&it, &f);
			while ((r = proto_field_next(&it, &tag, &v, &vl, &e)) > 0)
				FUZZ_CHECK(tag == ENV_ENTRY && memchr(v, '=', vl) != NULL);
			FUZZ_CHECK(r == 0);
			break;
		}
		}
		if (verbose)
			fprintf(stderr, "fuzz: agent sent %s (%u bytes)%s%.*s\n", proto_type_name(f.type),
				f.len, f.type == FT_ERROR || f.type == FT_EXIT ? ": " : "",
				f.type == FT_ERROR ? (int)f.len - 4 : f.type == FT_EXIT ? (int)f.len - 8 : 0,
				(const char *)f.payload + (f.type == FT_ERROR ? 4 : 8));
		last = f.type;
		frames++;
		used += (size_t)n;
	}
}

static bool drain(int fd, struct buf *out)
{
	for (;;) {
		ssize_t n;

		FUZZ_CHECK(buf_reserve(out, 65536) == 0);
		n = recv(fd, buf_tail(out), buf_room(out), MSG_DONTWAIT);
		if (n > 0) {
			buf_commit(out, (size_t)n);
			continue;
		}
		return n == 0 || (errno != EAGAIN && errno != EINTR);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	size_t chunk, written = 0;
	bool writing = true, eof = false;
	int sv[2], fds_before, settle = 0;
	unsigned long rounds = 0;
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	chunk = mode < 16 ? (size_t)mode + 1 : (size_t)(mode - 15) * 256;
	data++;
	size--;
	config_free(&fuzz_cfg);
	config_init(&fuzz_cfg);
	config_set(&fuzz_cfg, "env.FUZZ", "1", NULL, 0);
	if (mode == 0xee) {
		static char *big;

		if (!big && (big = malloc(600 * 1024 + 1))) {
			memset(big, 'v', 600 * 1024);
			big[600 * 1024] = '\0';
		}
		FUZZ_CHECK(big);
		config_env_set(&fuzz_cfg.env, &fuzz_cfg.envc, "BIG_A", big);
		config_env_set(&fuzz_cfg.env, &fuzz_cfg.envc, "BIG_B", big);
	}
	fuzz_auth = mode >= 0xf0;
	fds_before = count_fds();
	buf_init(&out, OUT_MAX);

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(conn_start(sv[0], false) == 0);
	FUZZ_CHECK(conn_count() == 1);
	while (!(eof && conn_count() == 0)) {
		if (writing && written < size) {
			ssize_t n = send(sv[1], data + written, MIN(chunk, size - written),
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n > 0)
				written += (size_t)n;
			else if (errno != EAGAIN && errno != EINTR)
				writing = false; /* the agent closed: it said why */
		}
		if (writing && written == size) {
			shutdown(sv[1], SHUT_WR);
			writing = false;
		}
		loop_run_once(0);
		if (!eof)
			eof = drain(sv[1], &out);
		if (++rounds > 50000000ul) {
			fprintf(stderr, "fuzz: the agent stopped reading a client that still writes\n");
			abort();
		}
		if (!writing && ++settle == SETTLE_ROUNDS) {
			/* Gone quiet after the client half-closed: hang up for good. */
			close(sv[1]);
			sv[1] = -1;
			eof = true;
			for (int i = 0; i < 10; i++)
				loop_run_once(0);
			if (conn_count() != 0) {
				fprintf(stderr, "fuzz: the connection outlived its client\n");
				abort();
			}
		}
	}
	loop_run_once(0); /* frees what was queued for freeing */
	if (sv[1] >= 0)
		close(sv[1]);
	check_output(buf_head(&out), buf_len(&out));
	buf_free(&out);
	config_free(&fuzz_cfg);
	config_init(&fuzz_cfg);
	if (count_fds() != fds_before) {
		fprintf(stderr, "fuzz: %d fds open before, %d after\n", fds_before, count_fds());
		abort();
	}
	return 0;
}
