/* Unit tests for the request rewriting of secrets (gateway/subst.c): a
 * table of request streams and what must go upstream, each fed whole,
 * one byte at a time and in two halves at every split point (a stand-in
 * or a head cut anywhere comes out the same); URL-encoded and JSON bodies
 * rewritten with their Content-Length, other bodies not; malformed and
 * oversized requests and the errors they give. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "gateway/secrets.h"
#include "gateway/subst.h"
#include "gateway/tls.h"
#include "lib/buf.h"
#include "lib/util.h"

#define SI "sbxsecret_0123456789abcdef0123456789abcdef01234567"
#define SI2 "sbxsecret_fedcba9876543210fedcba9876543210fedcba98"
#define SI3 "sbxsecret_00112233445566778899aabbccddeeff00112233"

static struct secret_set set;
static unsigned done, kept, noted;

static void on_standin(void *arg, const struct secret *s, const char *where, bool subst)
{
	(void)arg;
	(void)where;
	if (!s)
		noted++;
	else if (subst)
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
	assert_int_equal(secrets_add(&set, "ODD=api.test:a b&c=\"d\\/+", err, sizeof(err)), 0);
	memcpy(set.s[0].standin, SI, SECRET_STANDIN_LEN);
	memcpy(set.s[1].standin, SI2, SECRET_STANDIN_LEN);
	memcpy(set.s[2].standin, SI3, SECRET_STANDIN_LEN);
	return 0;
}

static const struct row {
	const char *host, *in, *out;
	unsigned done, kept, noted;
} rows[] = {
	{ "api.test", "GET / HTTP/1.1\r\nAuthorization: Bearer " SI "\r\n\r\n",
	  "GET / HTTP/1.1\r\nAuthorization: Bearer VALUE-1\r\n\r\n", 1, 0, 0 },
	{ "a.w.test", "GET /x?k=" SI "&j=" SI " HTTP/1.1\r\nHost: a.w.test\r\n\r\n",
	  "GET /x?k=VALUE-1&j=VALUE-1 HTTP/1.1\r\nHost: a.w.test\r\n\r\n", 2, 0, 0 },
	/* Not the host of OTHER: left as is. */
	{ "api.test", "GET / HTTP/1.1\r\nX-A: " SI2 "\r\nX-B:" SI "\r\n\r\n",
	  "GET / HTTP/1.1\r\nX-A: " SI2 "\r\nX-B:VALUE-1\r\n\r\n", 1, 1, 0 },
	/* A body of another type is not rewritten; the next request is. */
	{ "api.test", "POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n" SI "GET /" SI " HTTP/1.1\r\n\r\n",
	  "POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n" SI "GET /VALUE-1 HTTP/1.1\r\n\r\n", 1, 0, 0 },
	{ "api.test", "PUT / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\n" SI,
	  "PUT / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\n" SI, 0, 0, 0 },
	/* JSON and URL-encoded bodies are, with Content-Length recomputed;
	 * the value escaped as a JSON string or percent-encoded. */
	{ "api.test", "POST /v1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 58"
	  "\r\nX: 1\r\n\r\n{\"k\":\"" SI "\"}GET /" SI " HTTP/1.1\r\n\r\n",
	  "POST /v1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 15"
	  "\r\nX: 1\r\n\r\n{\"k\":\"VALUE-1\"}GET /VALUE-1 HTTP/1.1\r\n\r\n", 2, 0, 0 },
	{ "api.test", "POST / HTTP/1.1\r\ncontent-length:120\r\nContent-Type: Application/JSON; "
	  "charset=utf-8\r\n\r\n[\"" SI3 "\",\"" SI2 "\",\"sbxsecret_\"]",
	  "POST / HTTP/1.1\r\ncontent-length:83\r\nContent-Type: Application/JSON; "
	  "charset=utf-8\r\n\r\n[\"a b&c=\\\"d\\\\/+\",\"" SI2 "\",\"sbxsecret_\"]", 1, 1, 0 },
	{ "api.test", "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	  "Content-Length: 105\r\n\r\na=" SI "&b=" SI3,
	  "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	  "Content-Length: 37\r\n\r\na=VALUE-1&b=a%20b%26c%3D%22d%5C%2F%2B", 2, 0, 0 },
	{ "api.test", "POST /x?" SI3 " HTTP/1.1\r\nContent-Type: application/vnd.api+json\r\n"
	  "Content-Length: 52\r\n\r\n\"" SI "\"",
	  "POST /x?a%20b%26c%3D%22d%5C%2F%2B HTTP/1.1\r\nContent-Type: application/vnd.api+json\r\n"
	  "Content-Length: 9\r\n\r\n\"VALUE-1\"", 2, 0, 0 },
	/* Not rewritten, and said so: chunked, compressed, after Expect. */
	{ "api.test", "POST / HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: "
	  "chunked\r\n\r\n32\r\n" SI "\r\n0\r\n\r\n",
	  "POST / HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: "
	  "chunked\r\n\r\n32\r\n" SI "\r\n0\r\n\r\n", 0, 0, 1 },
	{ "api.test", "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip"
	  "\r\nContent-Length: 50\r\n\r\n" SI,
	  "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip"
	  "\r\nContent-Length: 50\r\n\r\n" SI, 0, 0, 1 },
	{ "api.test", "POST / HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 100-continue"
	  "\r\nContent-Length: 50\r\n\r\n" SI,
	  "POST / HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 100-continue"
	  "\r\nContent-Length: 50\r\n\r\n" SI, 0, 0, 1 },
	{ "api.test", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: " SI "\r\n\r\n"
	  "5\r\nhello\r\n0\r\nT: " SI "\r\n\r\nGET / HTTP/1.1\r\nY: " SI "\r\n\r\n",
	  "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: VALUE-1\r\n\r\n"
	  "5\r\nhello\r\n0\r\nT: " SI "\r\n\r\nGET / HTTP/1.1\r\nY: VALUE-1\r\n\r\n", 2, 0, 0 },
	/* A prefix alone, a stand-in cut short, in a header name: as they are. */
	{ "api.test", "GET / HTTP/1.1\r\nX: sbxsecret_\r\nY: " "sbxsecret_0123\r\n" SI ": 1\r\n\r\n",
	  "GET / HTTP/1.1\r\nX: sbxsecret_\r\nY: " "sbxsecret_0123\r\n" SI ": 1\r\n\r\n", 0, 0, 0 },
	/* After an upgrade, bytes pass as they are. */
	{ "api.test", "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" SI,
	  "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" SI, 0, 0, 0 },
};

/* feed ROW split at the given points (0: whole; 1: byte by byte; else at k). */
static void run(const struct row *r, size_t split)
{
	static struct subst s;
	struct buf out;
	char err[256];
	size_t n = strlen(r->in);

	done = kept = noted = 0;
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
	assert_int_equal(noted, r->noted);
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

/* A JSON body over SUBST_BODY_MAX passes as it came, said once; a body
 * of exactly SUBST_BODY_MAX is rewritten. */
static void test_large_body(void **state)
{
	static struct subst s;
	static char in[SUBST_BODY_MAX + 256];
	struct buf out;
	char err[256];

	(void)state;
	for (size_t len = SUBST_BODY_MAX + 1; len >= SUBST_BODY_MAX; len--) {
		int at = snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nContent-Type: application/json"
				  "\r\nContent-Length: %zu\r\n\r\n", len);

		memset(in + at, ' ', len);
		memcpy(in + at + 1, "\"" SI "\"", 52);
		done = kept = noted = 0;
		buf_init(&out, 1 << 20);
		subst_init(&s, &set, "api.test", on_standin, NULL);
		for (size_t k = 0; k < (size_t)at + len; k += 1000)
			assert_int_equal(subst_feed(&s, in + k, MIN(1000, (size_t)at + len - k), &out,
						    err, sizeof(err)), 0);
		if (len > SUBST_BODY_MAX) {
			assert_int_equal(noted, 1);
			assert_int_equal(done, 0);
			assert_int_equal(buf_len(&out), (size_t)at + len);
			assert_memory_equal(buf_head(&out), in, (size_t)at + len);
		} else {
			assert_int_equal(noted, 0);
			assert_int_equal(done, 1);
			assert_int_equal(buf_len(&out), (size_t)at + len - 43);
			assert_non_null(memmem(buf_head(&out), 200, "Content-Length: 65493\r\n", 23));
			assert_non_null(memmem(buf_head(&out), buf_len(&out), "\"VALUE-1\"", 9));
		}
		buf_free(&out);
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

/* The sandbox's CA: its leaves verify for the secrets' hosts only (name
 * constraints) and only until the end it was given. */
static int verify_at(X509 *ca, X509 *leaf, time_t t)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r;

	assert_true(st && ctx && X509_STORE_add_cert(st, ca));
	assert_true(X509_STORE_CTX_init(ctx, st, leaf, NULL));
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), t);
	r = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return r;
}

static void test_ca(void **state)
{
	static const char *const ok[] = { "api.test", "x.w.test", "w.test", "other.test" };
	EVP_PKEY *key = EVP_EC_gen("P-256");
	time_t now = time(NULL);
	char err[256], when[64];
	BIO *b;
	X509 *ca, *leaf;
	int day;

	(void)state;
	assert_int_equal(secrets_make_ca(&set, "t1", 600, err, sizeof(err)), 0);
	assert_int_equal(ca_load(&set, err, sizeof(err)), 0);
	b = BIO_new_mem_buf(set.ca_cert, -1);
	ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(ca);
	assert_true(X509_cmp_time(X509_get0_notBefore(ca), &(time_t){ now - 290 }) < 0);
	assert_true(X509_cmp_time(X509_get0_notBefore(ca), &(time_t){ now - 310 }) > 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(ca), &(time_t){ now + 590 }) > 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(ca), &(time_t){ now + 610 }) < 0);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		leaf = ca_leaf(ok[i], key);
		assert_non_null(leaf);
		assert_int_equal(verify_at(ca, leaf, now), X509_V_OK);
		assert_int_equal(verify_at(ca, leaf, now + 615), X509_V_ERR_CERT_HAS_EXPIRED);
		X509_free(leaf);
	}
	leaf = ca_leaf("evil.test", key);
	assert_int_equal(verify_at(ca, leaf, now), X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(leaf);
	assert_int_equal(ASN1_TIME_diff(&day, NULL, X509_get0_notBefore(ca),
					X509_get0_notAfter(ca)), 1);
	assert_int_equal(day, 0);
	X509_free(ca);
	EVP_PKEY_free(key);
	/* Past its end (a sandbox extended): the gateway can tell. */
	assert_false(ca_expired(when, sizeof(when)));
	assert_non_null(strstr(when, "GMT"));
	assert_int_equal(secrets_make_ca(&set, "t2", 0, err, sizeof(err)), 0);
	assert_int_equal(ca_load(&set, err, sizeof(err)), 0);
	assert_true(ca_expired(when, sizeof(when)));
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
		cmocka_unit_test_setup(test_large_body, setup),
		cmocka_unit_test_setup(test_ca, setup),
		cmocka_unit_test(test_bad_specs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
