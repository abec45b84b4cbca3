/* libFuzzer target: the EXEC request decoder (proto_exec_decode), the
 * largest request a client sends. The input is an EXEC payload. What is
 * accepted must satisfy docs/PROTOCOL.md ("EXEC"), and must survive a
 * round trip through the encoder unchanged. */
#include "tests/fuzz/fuzz.h"

static struct buf b;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	buf_init(&b, 2 * (PROTO_HDR_LEN + PROTO_FRAME_MAX));
	return 0;
}

static void check_valid(const struct exec_req *r)
{
	FUZZ_CHECK(r->argc >= 1 && r->argv[r->argc] == NULL && r->argv[0][0] != '\0');
	FUZZ_CHECK(r->env[r->envc] == NULL);
	for (size_t i = 0; i < r->envc; i++) {
		const char *eq = strchr(r->env[i], '=');

		FUZZ_CHECK(eq && eq != r->env[i]);
	}
	FUZZ_CHECK(!r->cwd || r->cwd[0]);
	FUZZ_CHECK(!r->user || r->user[0]);
	FUZZ_CHECK((r->flags & ~EXEC_F_ALL) == 0);
	if (r->out_conn)
		FUZZ_CHECK(!r->pty && !(r->flags & (EXEC_F_DETACH | EXEC_F_NO_STDOUT)));
	if (r->pty)
		FUZZ_CHECK(r->rows >= 1 && r->rows <= PROTO_WINSIZE_MAX && r->cols >= 1 &&
			   r->cols <= PROTO_WINSIZE_MAX);
}

static bool same_str(const char *a, const char *b2)
{
	return (!a && !b2) || (a && b2 && strcmp(a, b2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f, g;
	struct exec_req r, r2;
	struct proto_err e;
	long n;
	int rc;

	if (size > PROTO_FRAME_MAX)
		return 0;
	f = fuzz_frame_of(FT_EXEC, data, size);
	fuzz_err_reset(&e);
	rc = proto_exec_decode(&f, &r, &e);
	fuzz_check_rc(rc, &e);
	if (rc < 0) {
		FUZZ_CHECK(r.mem == NULL);
		return 0;
	}
	check_valid(&r);

	/* Encode what was decoded and decode it again: the same request. */
	buf_consume(&b, buf_len(&b));
	FUZZ_CHECK(proto_exec_put(&b, &r) == 0);
	fuzz_err_reset(&e);
	n = proto_frame_parse(buf_head(&b), buf_len(&b), &g, &e);
	FUZZ_CHECK(n == (long)buf_len(&b) && g.type == FT_EXEC);
	FUZZ_CHECK(g.len <= size); /* never larger than what came in */
	rc = proto_exec_decode(&g, &r2, &e);
	fuzz_check_rc(rc, &e);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(r2.argc == r.argc && r2.envc == r.envc);
	FUZZ_CHECK(r2.out_conn == r.out_conn && !memcmp(r2.out_id, r.out_id, sizeof(r.out_id)));
	for (size_t i = 0; i < r.argc; i++)
		FUZZ_CHECK(strcmp(r.argv[i], r2.argv[i]) == 0);
	for (size_t i = 0; i < r.envc; i++)
		FUZZ_CHECK(strcmp(r.env[i], r2.env[i]) == 0);
	FUZZ_CHECK(same_str(r.cwd, r2.cwd) && same_str(r.user, r2.user));
	FUZZ_CHECK(r.flags == r2.flags && r.pty == r2.pty && r.rows == r2.rows &&
		   r.cols == r2.cols);
	proto_exec_free(&r2);
	proto_exec_free(&r);
	return 0;
}
