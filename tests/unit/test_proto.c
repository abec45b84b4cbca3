/* Unit tests for the protocol codec (vsock/proto.c): round trips of every
 * message, and truncated, oversized, unknown and mutated frames. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util.h"
#include "vsock/proto.h"
#include "tests/unit/codec.h"

static void test_header_fields(void **state)
{
	uint8_t hdr[PROTO_HDR_LEN];

	proto_hdr_put(hdr, FT_STDOUT, 0x01020304);
	assert_memory_equal(hdr, "\x04\x03\x02\x01\x11\x01\x00\x00", 8);
}

static void test_truncated_needs_more(void **state)
{
	struct frame f;
	struct proto_err e;

	assert_int_equal(proto_hello_put(&b, 1, 1), 0);
	/* Every strict prefix asks for more bytes, none is an error. */
	for (size_t i = 0; i < buf_len(&b); i++)
		assert_int_equal(proto_frame_parse(buf_head(&b), i, &f, &e), 0);
	assert_int_equal(proto_frame_parse(buf_head(&b), buf_len(&b), &f, &e), 16);
}

static void test_oversized_rejected_before_payload(void **state)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct frame f;
	struct proto_err e;

	proto_hdr_put(hdr, FT_STDIN, PROTO_FRAME_MAX + 1);
	/* The header alone is enough to refuse: nothing waits for 1 MiB. */
	assert_int_equal(proto_frame_parse(hdr, sizeof(hdr), &f, &e), -EMSGSIZE);
	assert_int_equal(e.code, EMSGSIZE);
	assert_non_null(strstr(e.msg, "exceeds"));
	put_le32(hdr, 0xffffffffu); /* 4 GiB */
	assert_int_equal(proto_frame_parse(hdr, sizeof(hdr), &f, &e), -EMSGSIZE);
	proto_hdr_put(hdr, FT_STDIN, PROTO_FRAME_MAX);
	assert_int_equal(proto_frame_parse(hdr, sizeof(hdr), &f, &e), 0);
}

static void test_flags_must_be_zero(void **state)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct frame f;
	struct proto_err e;

	proto_hdr_put(hdr, FT_INFO, 0);
	hdr[6] = 1;
	assert_int_equal(proto_frame_parse(hdr, sizeof(hdr), &f, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "reserved flags"));
}

static void test_hello(void **state)
{
	struct frame f;
	struct proto_err e;
	uint16_t lo, hi;

	assert_int_equal(proto_hello_put(&b, 1, 3), 0);
	one_frame(&f);
	assert_int_equal(proto_hello_decode(&f, &lo, &hi, &e), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 3);
}

static void test_hello_bad(void **state)
{
	uint8_t p[8] = "SBX";
	struct frame f = { .type = FT_HELLO, .len = 8, .payload = p };
	struct proto_err e;
	uint16_t lo, hi;

	put_le16(p + 4, 3);
	put_le16(p + 6, 2);
	assert_int_equal(proto_hello_decode(&f, &lo, &hi, &e), -EINVAL);
	memcpy(p, "GET ", 4);
	assert_int_equal(proto_hello_decode(&f, &lo, &hi, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "not an sbx peer"));
	f.len = 7;
	assert_int_equal(proto_hello_decode(&f, &lo, &hi, &e), -EBADMSG);
	f.len = 8;
	f.type = FT_EXEC;
	assert_int_equal(proto_hello_decode(&f, &lo, &hi, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "expected HELLO"));
}

static void test_hello_ok(void **state)
{
	struct hello_ok in = { .version = 1, .flags = HELLO_F_AUTH }, out;
	struct frame f;
	struct proto_err e;

	memset(in.nonce, 0xab, sizeof(in.nonce));
	assert_int_equal(proto_hello_ok_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(f.len, 40);
	assert_int_equal(proto_hello_ok_decode(&f, &out, &e), 0);
	assert_memory_equal(&in, &out, sizeof(in));
}

static void test_error(void **state)
{
	struct frame f;
	struct proto_err e;
	char msg[64];
	int code;

	assert_int_equal(proto_error_put(&b, -ENOENT, "no such file or directory: %s", "/x"), 0);
	one_frame(&f);
	assert_int_equal(proto_error_decode(&f, &code, msg, sizeof(msg), &e), 0);
	assert_int_equal(code, ENOENT);
	assert_string_equal(msg, "no such file or directory: /x");
	/* Too short for a message; a code that is not an errno. */
	f.len = 4;
	assert_int_equal(proto_error_decode(&f, &code, msg, sizeof(msg), &e), -EBADMSG);
	f.len = 6;
	put_le32((uint8_t *)f.payload, 0);
	assert_int_equal(proto_error_decode(&f, &code, msg, sizeof(msg), &e), -EBADMSG);
}

static void test_error_message_capped(void **state)
{
	char big[8000];
	struct frame f;
	struct proto_err e;
	char msg[PROTO_MSG_MAX + 1];
	int code;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(proto_error_put(&b, EIO, "%s", big), 0);
	one_frame(&f);
	assert_int_equal(f.len, 4 + PROTO_MSG_MAX);
	assert_int_equal(proto_error_decode(&f, &code, msg, sizeof(msg), &e), 0);
	assert_int_equal(strlen(msg), PROTO_MSG_MAX);
}

static void test_exec_round_trip(void **state)
{
	char *argv[] = { "sh", "-c", "echo \"$X\"", NULL };
	char *env[] = { "X=1=2", "EMPTY=", NULL };
	struct exec_req in = { .argv = argv, .argc = 3, .env = env, .envc = 2, .cwd = "/tmp",
			       .user = "1000", .flags = EXEC_F_STDIN | EXEC_F_CLEAR_ENV,
			       .pty = true, .rows = 40, .cols = 100 }, out;
	struct frame f;
	struct proto_err e;

	assert_int_equal(proto_exec_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_exec_decode(&f, &out, &e), 0);
	assert_int_equal(out.argc, 3);
	assert_string_equal(out.argv[2], "echo \"$X\"");
	assert_null(out.argv[3]);
	assert_int_equal(out.envc, 2);
	assert_string_equal(out.env[0], "X=1=2");
	assert_string_equal(out.env[1], "EMPTY=");
	assert_null(out.env[2]);
	assert_string_equal(out.cwd, "/tmp");
	assert_string_equal(out.user, "1000");
	assert_int_equal(out.flags, EXEC_F_STDIN | EXEC_F_CLEAR_ENV);
	assert_true(out.pty);
	assert_int_equal(out.rows, 40);
	assert_int_equal(out.cols, 100);
	proto_exec_free(&out);
}

/* Builds an EXEC frame from raw fields: (tag, value) pairs. */
static void exec_fields(struct frame *f, int n, ...)
{
	size_t mark;
	va_list ap;

	buf_free(&b);
	buf_init(&b, 4 * PROTO_FRAME_MAX);
	assert_int_equal(proto_begin(&b, FT_EXEC, &mark), 0);
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		int tag = va_arg(ap, int);
		const char *v = va_arg(ap, const char *);
		int len = va_arg(ap, int);

		assert_int_equal(proto_field_put(&b, (uint16_t)tag, v, (size_t)len), 0);
	}
	va_end(ap);
	assert_int_equal(proto_end(&b, mark), 0);
	one_frame(f);
}

static void expect_exec_error(struct frame *f, int code, const char *needle)
{
	struct exec_req r;
	struct proto_err e;

	assert_int_equal(proto_exec_decode(f, &r, &e), -code);
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_exec_bad_requests(void **state)
{
	struct frame f;

	exec_fields(&f, 0);
	expect_exec_error(&f, EINVAL, "field ARG is missing");
	exec_fields(&f, 1, EXEC_ARG, "", 0);
	expect_exec_error(&f, EINVAL, "program name is empty");
	exec_fields(&f, 1, EXEC_ARG, "a\0b", 3);
	expect_exec_error(&f, EINVAL, "ARG contains a NUL");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, 99, "x", 1);
	expect_exec_error(&f, EINVAL, "unknown field 99");
	exec_fields(&f, 3, EXEC_ARG, "ls", 2, EXEC_CWD, "/", 1, EXEC_CWD, "/tmp", 4);
	expect_exec_error(&f, EINVAL, "CWD given twice");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_ENV, "NOEQUALS", 8);
	expect_exec_error(&f, EINVAL, "not NAME=value");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_ENV, "=v", 2);
	expect_exec_error(&f, EINVAL, "not NAME=value");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_FLAGS, "\x01\x00", 2);
	expect_exec_error(&f, EINVAL, "FLAGS is 2 bytes");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_FLAGS, "\x00\x01\x00\x00", 4);
	expect_exec_error(&f, EINVAL, "unknown flags 0x100");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_PTY, "\x00\x00\x50\x00", 4);
	expect_exec_error(&f, EINVAL, "terminal size 0x80");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_PTY, "\xff\xff\x50\x00", 4);
	expect_exec_error(&f, EINVAL, "out of range");
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_CWD, "", 0);
	expect_exec_error(&f, EINVAL, "CWD is empty");
}

/* A direct stdout: STDOUT_CONN carries the OUTPUT connection's id; it
 * goes with nothing that takes stdout elsewhere. */
static void test_exec_stdout_conn(void **state)
{
	char *argv[] = { "dd", NULL };
	struct exec_req in = { .argv = argv, .argc = 1, .out_conn = true }, out;
	const char id[] = "0123456789abcdef";
	struct frame f;
	struct proto_err e;

	memcpy(in.out_id, id, PROTO_OUTPUT_ID_LEN);
	assert_int_equal(proto_exec_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_exec_decode(&f, &out, &e), 0);
	assert_true(out.out_conn);
	assert_memory_equal(out.out_id, id, PROTO_OUTPUT_ID_LEN);
	proto_exec_free(&out);
	exec_fields(&f, 1, EXEC_ARG, "ls", 2);
	assert_int_equal(proto_exec_decode(&f, &out, &e), 0);
	assert_false(out.out_conn);
	proto_exec_free(&out);
	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_STDOUT_CONN, id, 15);
	expect_exec_error(&f, EINVAL, "STDOUT_CONN is 15 bytes, expected 16");
	exec_fields(&f, 3, EXEC_ARG, "ls", 2, EXEC_STDOUT_CONN, id, 16, EXEC_STDOUT_CONN, id, 16);
	expect_exec_error(&f, EINVAL, "STDOUT_CONN given twice");
	exec_fields(&f, 3, EXEC_ARG, "ls", 2, EXEC_FLAGS, "\x04\0\0\0", 4, EXEC_STDOUT_CONN, id, 16);
	expect_exec_error(&f, EINVAL, "STDOUT_CONN does not go with NO_STDOUT");
	exec_fields(&f, 3, EXEC_ARG, "ls", 2, EXEC_FLAGS, "\x10\0\0\0", 4, EXEC_STDOUT_CONN, id, 16);
	expect_exec_error(&f, EINVAL, "STDOUT_CONN does not go with DETACH");
	exec_fields(&f, 3, EXEC_ARG, "ls", 2, EXEC_PTY, "\x18\0\x50\0", 4, EXEC_STDOUT_CONN, id, 16);
	expect_exec_error(&f, EINVAL, "STDOUT_CONN does not go with PTY");
}

static void test_exec_truncated_field(void **state)
{
	struct frame f;
	struct exec_req r;
	struct proto_err e;

	exec_fields(&f, 2, EXEC_ARG, "ls", 2, EXEC_ARG, "-l", 2);
	/* Cut the payload anywhere inside the second field. */
	for (uint32_t len = 9; len < f.len; len++) {
		struct frame g = f;

		g.len = len;
		assert_int_equal(proto_exec_decode(&g, &r, &e), -EBADMSG);
	}
	/* A field that claims more than the frame holds. */
	put_le32((uint8_t *)f.payload + 2, 1000);
	assert_int_equal(proto_exec_decode(&f, &r, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "claims 1000 bytes"));
}

static void test_exec_many_args(void **state)
{
	char **argv = calloc(100001, sizeof(char *));
	struct exec_req in = { .argv = argv, .argc = 100000 }, out;
	struct frame f;
	struct proto_err e;

	for (int i = 0; i < 100000; i++)
		argv[i] = "a";
	assert_int_equal(proto_exec_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_exec_decode(&f, &out, &e), 0);
	assert_int_equal(out.argc, 100000);
	assert_string_equal(out.argv[99999], "a");
	proto_exec_free(&out);
	free(argv);
}

static void test_exec_too_big_to_encode(void **state)
{
	size_t n = PROTO_FRAME_MAX;
	char *big = malloc(n + 1);
	char *argv[] = { big, NULL };
	struct exec_req in = { .argv = argv, .argc = 1 };

	memset(big, 'a', n);
	big[n] = '\0';
	assert_int_equal(proto_exec_put(&b, &in), -EMSGSIZE);
	free(big);
}

static void test_small_frames(void **state)
{
	struct frame f;
	struct proto_err e;
	uint16_t rows, cols;
	uint32_t v;
	int sig;

	assert_int_equal(proto_u32_put(&b, FT_SIGNAL, 15), 0);
	one_frame(&f);
	assert_int_equal(proto_signal_decode(&f, &sig, &e), 0);
	assert_int_equal(sig, 15);
	put_le32((uint8_t *)f.payload, 0);
	assert_int_equal(proto_signal_decode(&f, &sig, &e), -EINVAL);
	put_le32((uint8_t *)f.payload, 65);
	assert_int_equal(proto_signal_decode(&f, &sig, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "signal 65 is out of range"));
	f.len = 3;
	assert_int_equal(proto_u32_decode(&f, &v, &e), -EBADMSG);

	buf_free(&b);
	assert_int_equal(proto_resize_put(&b, 50, 120), 0);
	one_frame(&f);
	assert_int_equal(proto_resize_decode(&f, &rows, &cols, &e), 0);
	assert_int_equal(rows, 50);
	assert_int_equal(cols, 120);
	put_le16((uint8_t *)f.payload, 0);
	assert_int_equal(proto_resize_decode(&f, &rows, &cols, &e), -EINVAL);
	put_le16((uint8_t *)f.payload, 65535);
	assert_int_equal(proto_resize_decode(&f, &rows, &cols, &e), -EINVAL);
}

static void test_exit(void **state)
{
	struct exit_status in = { .how = EXIT_NOT_STARTED, .value = 127 }, out;
	struct frame f;
	struct proto_err e;

	strcpy(in.msg, "command not found: x");
	assert_int_equal(proto_exit_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_exit_decode(&f, &out, &e), 0);
	assert_int_equal(out.how, EXIT_NOT_STARTED);
	assert_int_equal(out.value, 127);
	assert_string_equal(out.msg, "command not found: x");
	((uint8_t *)f.payload)[0] = 9;
	assert_int_equal(proto_exit_decode(&f, &out, &e), -EBADMSG);
	f.len = 7;
	assert_int_equal(proto_exit_decode(&f, &out, &e), -EBADMSG);
}

static void test_info(void **state)
{
	struct info in = { .version = "sbx-init 1", .hostname = "h", .kernel = "6.1",
			   .uptime_ns = 123456789012ULL, .pid1 = true }, out;
	struct frame f;
	struct proto_err e;

	assert_int_equal(proto_info_ok_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_info_ok_decode(&f, &out, &e), 0);
	assert_string_equal(out.version, in.version);
	assert_string_equal(out.hostname, in.hostname);
	assert_string_equal(out.kernel, in.kernel);
	assert_true(out.uptime_ns == in.uptime_ns);
	assert_true(out.pid1);
}

/* Random corruption of valid frames never crashes a decoder, and a
 * decoder that accepts a frame returns consistent results. */
static void test_mutations(void **state)
{
	char *argv[] = { "ls", "-l", "/", NULL };
	char *env[] = { "A=1", NULL };
	struct exec_req in = { .argv = argv, .argc = 3, .env = env, .envc = 1, .cwd = "/",
			       .flags = EXEC_F_STDIN, .pty = true, .rows = 1, .cols = 1 };
	uint8_t copy[512];
	unsigned seed = 1;

	assert_int_equal(proto_exec_put(&b, &in), 0);
	assert_true(buf_len(&b) < sizeof(copy));
	for (int round = 0; round < 20000; round++) {
		struct frame f;
		struct proto_err e;
		struct exec_req r;
		struct exit_status x;
		struct info info;
		size_t len = buf_len(&b);
		long n;

		memcpy(copy, buf_head(&b), len);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			copy[PROTO_HDR_LEN + (seed >> 8) % (len - PROTO_HDR_LEN)] ^=
				(uint8_t)(1u << ((seed >> 4) % 8));
		}
		seed = seed * 1103515245 + 12345;
		len -= (seed >> 8) % 3; /* sometimes truncate */
		n = proto_frame_parse(copy, len, &f, &e);
		if (n <= 0) {
			struct frame g = { .type = FT_EXEC, .len = (uint32_t)(len - PROTO_HDR_LEN),
					   .payload = copy + PROTO_HDR_LEN };
			f = g;
		}
		if (proto_exec_decode(&f, &r, &e) == 0) {
			assert_true(r.argc >= 1);
			assert_null(r.argv[r.argc]);
			assert_null(r.env[r.envc]);
			proto_exec_free(&r);
		} else {
			assert_true(e.code > 0);
			assert_true(strlen(e.msg) > 0);
		}
		proto_exit_decode(&f, &x, &e);
		proto_info_ok_decode(&f, &info, &e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_needs_more, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_rejected_before_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_must_be_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_message_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_stdout_conn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_truncated_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_many_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_too_big_to_encode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
