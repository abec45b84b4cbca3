/* sbx-hostile: framing and the handshake: bytes that are not frames,
 * lengths and flags out of range, unknown types, HELLO done wrong, and how
 * the agent reads what comes after an answer. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "tests/tools/hostile/hostile.h"

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
	struct buf b;
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
	rc = exit_prints(&p, "bytewise\n");
	peer_close(&p);
	return rc;
}

static const struct hostile_case cases[] = {
	{ .name = "garbage before HELLO (an HTTP request): EMSGSIZE",
	  .frame = { NO_HELLO, RAW, 0,
		     BYTES("GET / HTTP/1.1\r\nHost: sandbox\r\n\r\n"),
		     .code = EMSGSIZE,
		     .text = "frame of 542393671 bytes exceeds the 1048576-byte limit" } },
	{ .name = "garbage before HELLO (a frame of unknown type): EPROTO",
	  .frame = { NO_HELLO, PAYLOAD, 0x7777,
		     BYTES("junk"),
		     .code = EPROTO, .text = "expected HELLO, got frame type 0x7777" } },
	{ .name = "garbage before HELLO (3000 bytes under HELLO's type): EBADMSG", .fn = c_garbage_random },
	{ .name = "a request before HELLO: EPROTO",
	  .frame = { NO_HELLO, PAYLOAD, FT_INFO,
		     .code = EPROTO, .text = "expected HELLO, got frame type 0x0070 (INFO)" } },
	{ .name = "a truncated HELLO, a torn header, then close", .fn = c_truncated_close },
	{ .name = "a truncated 1 MiB request, then close", .fn = c_truncated_request_close },
	{ .name = "a length of 4 GiB: EMSGSIZE",
	  .frame = { NO_HELLO, HEADER, FT_HELLO,
		     .claim = 0xffffffffu,
		     .code = EMSGSIZE,
		     .text = "frame of 4294967295 bytes exceeds the 1048576-byte limit" } },
	{ .name = "a length of 4 GiB after HELLO: EMSGSIZE",
	  .frame = { AFTER_HELLO, HEADER, FT_EXEC,
		     .claim = 0xffffffffu,
		     .code = EMSGSIZE, .text = "frame of 4294967295 bytes exceeds" } },
	{ .name = "a length of 1 MiB + 1: EMSGSIZE",
	  .frame = { AFTER_HELLO, HEADER, FT_EXEC,
		     .claim = PROTO_FRAME_MAX + 1,
		     .code = EMSGSIZE,
		     .text = "frame of 1048577 bytes exceeds the 1048576-byte limit" } },
	{ .name = "reserved header flags: EPROTO",
	  .frame = { AFTER_HELLO, HEADER, FT_INFO,
		     .hdr_flags = 0x80,
		     .code = EPROTO, .text = "frame INFO has reserved flags 0x80 set" } },
	{ .name = "an unknown frame type: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, 0x7777,
		     .code = EOPNOTSUPP,
		     .text = "unknown operation: frame type 0x7777 (unknown)" } },
	{ .name = "an unknown type in the file range: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, 0x003f,
		     .code = EOPNOTSUPP, .text = "unknown file operation 0x003f" } },
	{ .name = "an unknown type in the network range: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, 0x005f,
		     .code = EOPNOTSUPP, .text = "is not implemented by this agent" } },
	{ .name = "an agent-to-client type (EXIT) as a request: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_EXIT,
		     BYTES(ZEROS_8),
		     .code = EOPNOTSUPP, .text = "frame type 0x0113 (EXIT)" } },
	{ .name = "STDIN before any request: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_STDIN,
		     BYTES("data"),
		     .code = EOPNOTSUPP, .text = "frame type 0x0100 (STDIN)" } },
	{ .name = "wrong version (HELLO 3-4): EPROTONOSUPPORT",
	  .frame = { NO_HELLO, PAYLOAD, FT_HELLO,
		     BYTES("SBX\0" "\3\0" "\4\0"),
		     .code = EPROTONOSUPPORT,
		     .text = "no common protocol version: client 3-4, agent 1-2" } },
	{ .name = "version 0: EPROTONOSUPPORT",
	  .frame = { NO_HELLO, PAYLOAD, FT_HELLO,
		     BYTES("SBX\0" "\0\0" "\0\0"),
		     .code = EPROTONOSUPPORT, .text = "client 0-0, agent 1-2" } },
	{ .name = "an empty version range (3-1): EINVAL",
	  .frame = { NO_HELLO, PAYLOAD, FT_HELLO,
		     BYTES("SBX\0" "\3\0" "\1\0"),
		     .code = EINVAL, .text = "HELLO version range 3-1 is empty" } },
	{ .name = "a bad magic number: EPROTO",
	  .frame = { NO_HELLO, PAYLOAD, FT_HELLO,
		     BYTES("SSH-" "\1\0" "\1\0"),
		     .code = EPROTO, .text = "bad magic number: not an sbx peer" } },
	{ .name = "a 7-byte HELLO: EBADMSG",
	  .frame = { NO_HELLO, PAYLOAD, FT_HELLO,
		     BYTES("SBX\0" "\1\0" "\1"),
		     .code = EBADMSG, .text = "HELLO payload is 7 bytes, expected 8" } },
	{ .name = "HELLO twice: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_HELLO,
		     BYTES("SBX\0" "\1\0" "\1\0"),
		     .code = EOPNOTSUPP, .text = "frame type 0x0001 (HELLO)" } },
	{ .name = "AUTH to an agent without a token: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_AUTH,
		     BYTES(ZEROS_32),
		     .code = EOPNOTSUPP, .text = "frame type 0x0003 (AUTH)" } },
	{ .name = "frames after EXIT: ignored, the connection ends", .fn = c_frames_after_exit },
	{ .name = "frames after an ERROR: ignored", .fn = c_frames_after_error },
	{ .name = "1000 pipelined requests: one answer", .fn = c_pipelined_requests },
	{ .name = "HELLO and EXEC one byte per write", .fn = c_one_byte_writes },
};

HOSTILE_AREA(hostile_frames, cases);
