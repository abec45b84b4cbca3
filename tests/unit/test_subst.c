/* Unit tests for the request rewriting of secrets (gateway/subst.c): a
 * table of request streams and what must go upstream, each fed whole,
 * one byte at a time and in two halves at every split point (a stand-in
 * or a head cut anywhere comes out the same); malformed and oversized
 * requests and the errors they give. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/secrets.h"
#include "gateway/subst.h"
#include "lib/buf.h"

#define SI "sbxsecret_0123456789abcdef0123456789abcdef01234567"
#define SI2 "sbxsecret_fedcba9876543210fedcba9876543210fedcba98"

static struct secret_set set;
static unsigned done, kept;

static void on_standin(void *arg, const struct secret *s, const char *where, bool subst)
{
	(void)arg;
	(void)s;
	(void)where;
	if (subst)
		done++;
	else
		kept++;
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	memset(&set, 0, sizeof(set));
	assert_int_equal(secrets_add(&set, "KEY=api.test,*.w.test:VALUE-1", err, sizeof(err)), 0);
	assert_int_equal(secrets_add(&set, "OTHER=other.test:VALUE-2", err, sizeof(err)), 0);
	memcpy(set.s[0].standin, SI, SECRET_STANDIN_LEN);
	memcpy(set.s[1].standin, SI2, SECRET_STANDIN_LEN);
	return 0;
}

static const struct row {
	const char *host, *in, *out;
	unsigned done, kept;
} rows[] = {
	{ "api.test", "GET / HTTP/1.1\r\nAuthorization: Bearer " SI "\r\n\r\n",
	  "GET / HTTP/1.1\r\nAuthorization: Bearer VALUE-1\r\n\r\n", 1, 0 },
	{ "a.w.test", "GET /x?k=" SI "&j=" SI " HTTP/1.1\r\nHost: a.w.test\r\n\r\n",
	  "GET /x?k=VALUE-1&j=VALUE-1 HTTP/1.1\r\nHost: a.w.test\r\n\r\n", 2, 0 },
	/* Not the host of OTHER: left as is. */
	{ "api.test", "GET / HTTP/1.1\r\nX-A: " SI2 "\r\nX-B:" SI "\r\n\r\n",
	  "GET / HTTP/1.1\r\nX-A: " SI2 "\r\nX-B:VALUE-1\r\n\r\n", 1, 1 },
	/* A body is never rewritten; the next request is. */
	{ "api.test", "POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n" SI "GET /" SI " HTTP/1.1\r\n\r\n",
	  "POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n" SI "GET /VALUE-1 HTTP/1.1\r\n\r\n", 1, 0 },
	{ "api.test", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: " SI "\r\n\r\n"
	  "5\r\nhello\r\n0\r\nT: " SI "\r\n\r\nGET / HTTP/1.1\r\nY: " SI "\r\n\r\n",
	  "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: VALUE-1\r\n\r\n"
	  "5\r\nhello\r\n0\r\nT: " SI "\r\n\r\nGET / HTTP/1.1\r\nY: VALUE-1\r\n\r\n", 2, 0 },
	/* A prefix alone, a stand-in cut short, in a header name: as they are. */
	{ "api.test", "GET / HTTP/1.1\r\nX: sbxsecret_\r\nY: " "sbxsecret_0123\r\n" SI ": 1\r\n\r\n",
	  "GET / HTTP/1.1\r\nX: sbxsecret_\r\nY: " "sbxsecret_0123\r\n" SI ": 1\r\n\r\n", 0, 0 },
	/* After an upgrade, bytes pass as they are. */
	{ "api.test", "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" SI,
	  "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" SI, 0, 0 },
};

/* feed ROW split at the given points (0: whole; 1: byte by byte; else at k). */
static void run(const struct row *r, size_t split)
{
	static struct subst s;
	struct buf out;
	char err[256];
	size_t n = strlen(r->in);

	done = kept = 0;
	buf_init(&out, 1 << 20);
	subst_init(&s, &set, r->host, on_standin, NULL);
	if (split == 1) {
		for (size_t i = 0; i < n; i++)
			if (subst_feed(&s, r->in + i, 1, &out, err, sizeof(err)) != 0)
				fail_msg("byte %zu: %s", i, err);
	} else if (split > 1 && split < n) {
		assert_int_equal(subst_feed(&s, r->in, split, &out, err, sizeof(err)), 0);
		assert_int_equal(subst_feed(&s, r->in + split, n - split, &out, err, sizeof(err)), 0);
	} else {
		assert_int_equal(subst_feed(&s, r->in, n, &out, err, sizeof(err)), 0);
	}
	assert_int_equal(buf_len(&out), strlen(r->out));
	assert_memory_equal(buf_head(&out), r->out, strlen(r->out));
	assert_int_equal(done, r->done);
	assert_int_equal(kept, r->kept);
	buf_free(&out);
}

static void test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("row %zu\n", i);
		run(&rows[i], 0);
		run(&rows[i], 1);
		for (size_t k = 2; k < strlen(rows[i].in); k++)
			run(&rows[i], k);
	}
}

static void expect_error(const char *in, size_t n, int code, const char *words)
{
	static struct subst s;
	struct buf out;
	char err[256] = "";

	buf_init(&out, 1 << 20);
	subst_init(&s, &set, "api.test", NULL, NULL);
	assert_int_equal(subst_feed(&s, in, n, &out, err, sizeof(err)), code);
	assert_non_null(strstr(err, words));
	/* The stream is over: more bytes are refused too. */
	assert_int_equal(subst_feed(&s, "GET / HTTP/1.1\r\n\r\n", 18, &out, err, sizeof(err)),
			 -EPROTO);
	buf_free(&out);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_error("BLAH\r\n\r\n", 8, -EPROTO, "malformed HTTP request");
	expect_error("GET / HTTP/1.1\r\nNo colon\r\n\r\n", 28, -EPROTO, "malformed");
	expect_error("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 38, -EPROTO, "malformed");
	expect_error("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 50, -EPROTO,
		     "malformed HTTP request body");
}

static void test_oversized(void **state)
{
	static char big[40000], many[128 * 8 + 64];
	size_t at;

	(void)state;
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	expect_error(big, sizeof(big), -E2BIG, "more than 32768 bytes");
	at = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 129; i++)
		at += (size_t)snprintf(many + at, sizeof(many) - at, "X%d: 1\r\n", i % 10);
	at += (size_t)snprintf(many + at, sizeof(many) - at, "\r\n");
	expect_error(many, at, -E2BIG, "more than 128 headers");
}

static void test_bad_specs(void **state)
{
	static struct secret_set s2;
	char err[256];

	(void)state;
	assert_int_equal(secrets_add(&s2, "1K=api.test:v", err, sizeof(err)), -EINVAL);
	assert_int_equal(secrets_add(&s2, "K=api.test", err, sizeof(err)), -EINVAL);
	assert_int_equal(secrets_add(&s2, "K=:v", err, sizeof(err)), -EINVAL);
	assert_int_equal(secrets_add(&s2, "K=1.2.3.4:v", err, sizeof(err)), -EINVAL);
	assert_int_equal(secrets_add(&s2, "K=api.test:", err, sizeof(err)), -EINVAL);
	assert_int_equal(secrets_add(&s2, "K=api.test:a\nb", err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "a\nb"));
	assert_int_equal(secrets_add(&s2, "K=api.test:v", err, sizeof(err)), 0);
	assert_int_equal(secrets_add(&s2, "K=b.test:v", err, sizeof(err)), -EINVAL);
	assert_int_equal(s2.n, 1);
	assert_true(strncmp(s2.s[0].standin, "sbxsecret_", 10) == 0);
	assert_int_equal(strlen(s2.s[0].standin), SECRET_STANDIN_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rows, setup),
		cmocka_unit_test_setup(test_malformed, setup),
		cmocka_unit_test_setup(test_oversized, setup),
		cmocka_unit_test(test_bad_specs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
