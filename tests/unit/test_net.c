/* Unit tests for the port forwarding and SSH codec (vsock/proto_net.c):
 * round trips of every message, bad ports, missing, repeated, unknown and
 * truncated fields, every truncation and byte mutation of a request; and
 * the SSH public key validator on real keys (made by ssh-keygen) and on
 * broken ones, with fingerprints checked against ssh-keygen -l. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "lib/util.h"
#include "vsock/proto_net.h"
#include "tests/unit/codec.h"

/* A frame of `type` with the given raw payload. */
static void raw_frame(struct frame *f, uint16_t type, const void *payload, size_t len)
{
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_put(&b, type, payload, len), 0);
	one_frame(f);
}

/* ---- keys made by ssh-keygen, with `ssh-keygen -l` fingerprints ---- */

#define ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdBeNZehEFCXBkQdDGJKEEORyQnhllycQmc9gIYLgQL"
#define ED25519_FP "SHA256:im5m4rtSmoNlkT2J4r/KNR8o8vsG8UiaigvkC0hMEjs"
#define RSA2048 "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC1zvLTNpkaDHp5HZx/jbTOYUn2yKx+OuiJ5Wf0TdH7Uy9iCk" \
	"7JlZnb/YcukiOr9KvTGUDToklhx16beIyAs0H5tOUYybgq+ovY+IbVoIINycXFYUUrpaRjaSijRGFuamN3Em5XYjM1V" \
	"/vSCAwwQ0ogBEdFjpo+a7rbzJADrPUQNR7PjccW2bfXfI8/nlv1H4l4CsQ2GjeFYyRUl081O0Tw8syhNiPVBQHqxMEL" \
	"PQsfEQm4yznEMXxWR2Ar6brzXpQaEYwceR2OdWp8tbxq1JCn06CKPO+nnqsptjluqCSjR4EUMa92DKKJFCo5HszCJyFv" \
	"igbWVMuxgmSg4bvrakw5"
#define RSA2048_FP "SHA256:m8lwehMDTvW8kwPYDux2u70xLtZOrnXdOh4bD9rxRwE"
#define RSA1024 "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDHaHE49P3UvSnUgGY/GAzGdnvblvNurAgMrxfs9PfxsW+h" \
	"6gZ7kdxXqG65YInquq+qIuT0vzEWXrBNn3/e/kwuCn0+vCBbcxkLkrMWE1DV1tnuuZY+1C1Qwj6YklpOMVUGP6UWlaa" \
	"sWMurQSTRdI0UxNQJ/i53ht/NU1UFMP3NLw=="
#define P256 "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOufrGDrhcby" \
	"RWquRRt4hyHnqTcQnCMhsxTRlz9XdkLu7XmLco9RdHjUt81zf0tdxdgabFHnX/uGB8Hadq+Tho8="
#define P256_FP "SHA256:NobHfr4tJU4Wyz8lNirdugtVm4ox//jO9/3I/HjAIvc"
#define P384 "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBGYAAXuNzr8L" \
	"wWDReQB4fthW2UJU2sTT8sMqU88M3dSMfB0sKeKfdTjf4sHSWiYe8KUfPnbEVdapccwIf/H4KXFWDIwl+qF85V/fW2H" \
	"GCbAzG3qpxcLxtEr6JyOCayhMIQ=="
#define P521 "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAC2H1PW0C6O" \
	"/p8kn5hJN8vfTL8aNIkfJeLFNYXP7we4UkvsixEod+XGm0kWfUYVgl/uC3N203qCvijR0w9VdGPO7wBi2qfwFYL8Pq4r" \
	"07SEvQxvvdgcLCMrQoFFBR2Y0YcCES+WxqzpvtveW+7wEddQDMCdIzI35UzDZddEXuS7vPqoaw=="
#define P521_FP "SHA256:k0SlXtxlwWU5kxWFX68t7j6UzbO4p3pUKG6B2HjEZJ8"

/* ---- FORWARD ---- */

static void test_forward_round_trip(void **state)
{
	static const uint32_t ports[] = { 1, 22, 8080, 65535 };
	struct proto_err e;
	struct frame f;
	uint16_t port;

	for (size_t i = 0; i < ARRAY_SIZE(ports); i++) {
		buf_consume(&b, buf_len(&b));
		assert_int_equal(proto_forward_put(&b, ports[i]), 0);
		one_frame(&f);
		assert_int_equal(f.type, FT_FORWARD);
		assert_string_equal(proto_type_name(f.type), "FORWARD");
		assert_int_equal(proto_forward_decode(&f, &port, &e), 0);
		assert_int_equal(port, ports[i]);
	}
}

static void test_forward_bad_ports(void **state)
{
	static const uint32_t bad[] = { 0, 65536, 70000, 0xffffffffu };
	struct proto_err e;
	struct frame f;
	uint16_t port;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		buf_consume(&b, buf_len(&b));
		assert_int_equal(proto_forward_put(&b, bad[i]), 0);
		one_frame(&f);
		assert_int_equal(proto_forward_decode(&f, &port, &e), -EINVAL);
		assert_int_equal(e.code, EINVAL);
		assert_non_null(strstr(e.msg, "out of range (1-65535)"));
	}
}

static void test_forward_bad_fields(void **state)
{
	static const struct {
		const char *payload;
		size_t len;
		const char *why;
	} cases[] = {
		{ "", 0, "field PORT is missing" },
		{ "\x01\x00\x02\x00\x00\x00\x50\x00", 8, "PORT is 2 bytes" },
		{ "\x01\x00\x04\x00\x00\x00\x50\x00\x00\x00\x01\x00\x04\x00\x00\x00\x50\x00\x00\x00",
		  20, "given twice" },
		{ "\x02\x00\x04\x00\x00\x00\x50\x00\x00\x00", 10, "unknown field 2" },
		{ "\x01\x00\x04\x00\x00\x00\x50\x00", 8, "claims 4 bytes" },
		{ "\x01\x00\x04", 3, "trailing bytes" },
	};
	struct proto_err e;
	struct frame f;
	uint16_t port;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		raw_frame(&f, FT_FORWARD, cases[i].payload, cases[i].len);
		assert_true(proto_forward_decode(&f, &port, &e) < 0);
		if (!strstr(e.msg, cases[i].why))
			fail_msg("case %zu: '%s' does not say '%s'", i, e.msg, cases[i].why);
	}
}

/* Every prefix of the payload and every byte value at every offset:
 * decoded or refused, never a crash or an out-of-range port. */
static void test_forward_mutations(void **state)
{
	uint8_t payload[64];
	struct proto_err e;
	struct frame f;
	uint16_t port;
	size_t len;

	assert_int_equal(proto_forward_put(&b, 8080), 0);
	len = buf_len(&b) - PROTO_HDR_LEN;
	memcpy(payload, buf_head(&b) + PROTO_HDR_LEN, len);
	for (size_t cut = 0; cut < len; cut++) {
		raw_frame(&f, FT_FORWARD, payload, cut);
		assert_true(proto_forward_decode(&f, &port, &e) < 0);
	}
	for (size_t at = 0; at < len; at++)
		for (int v = 0; v < 256; v++) {
			uint8_t m[64];

			memcpy(m, payload, len);
			m[at] = (uint8_t)v;
			raw_frame(&f, FT_FORWARD, m, len);
			port = 0;
			if (proto_forward_decode(&f, &port, &e) == 0)
				assert_true(port >= 1);
		}
}

/* ---- SSH_START ---- */

static void test_ssh_start(void **state)
{
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_ssh_start_put(&b), 0);
	one_frame(&f);
	assert_int_equal(f.type, FT_SSH_START);
	assert_int_equal(proto_ssh_start_decode(&f, &e), 0);
	raw_frame(&f, FT_SSH_START, "\x07\x00\x00\x00\x00\x00", 6);
	assert_int_equal(proto_ssh_start_decode(&f, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "unknown field 7"));
}

/* ---- SSH_KEY_* ---- */

static void test_key_requests(void **state)
{
	static struct ssh_key_req r;
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_ssh_key_put(&b, FT_SSH_KEY_ADD, "user", ED25519 " me"), 0);
	one_frame(&f);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), 0);
	assert_string_equal(r.user, "user");
	assert_string_equal(r.key, ED25519 " me");
	assert_int_equal(r.key_len, strlen(ED25519 " me"));

	/* No user: the sandbox's default. */
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_ssh_key_put(&b, FT_SSH_KEY_REMOVE, NULL, ED25519), 0);
	one_frame(&f);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), 0);
	assert_string_equal(r.user, "");

	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_ssh_key_put(&b, FT_SSH_KEY_LIST, "root", NULL), 0);
	one_frame(&f);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), 0);
	assert_string_equal(r.user, "root");
}

static void test_key_request_errors(void **state)
{
	static struct ssh_key_req r;
	char longuser[NET_USER_MAX + 2];
	struct proto_err e;
	struct frame f;

	/* ADD and REMOVE need a key; LIST takes none. */
	assert_int_equal(proto_ssh_key_put(&b, FT_SSH_KEY_ADD, "root", NULL), 0);
	one_frame(&f);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "field KEY is missing"));
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_ssh_key_put(&b, FT_SSH_KEY_LIST, NULL, ED25519), 0);
	one_frame(&f);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "KEY is not allowed"));

	memset(longuser, 'u', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = '\0';
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_ssh_key_put(&b, FT_SSH_KEY_ADD, longuser, ED25519), 0);
	one_frame(&f);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "USER is 33 bytes"));

	raw_frame(&f, FT_SSH_KEY_ADD, "\x02\x00\x03\x00\x00\x00" "a\0b", 9);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "NUL byte"));
	raw_frame(&f, FT_SSH_KEY_ADD, "\x02\x00\x01\x00\x00\x00" "a\x02\x00\x01\x00\x00\x00" "b",
		  14);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "KEY given twice"));
	raw_frame(&f, FT_SSH_KEY_ADD, "\x01\x00\x00\x00\x00\x00", 6);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "USER is empty"));
	raw_frame(&f, FT_SSH_KEY_ADD, "\x09\x00\x00\x00\x00\x00", 6);
	assert_int_equal(proto_ssh_key_decode(&f, &r, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "unknown field 9"));
}

/* ---- replies ---- */

static void test_ssh_server_round_trip(void **state)
{
	struct ssh_server_info in = { .host_key = ED25519, .fingerprint = ED25519_FP, .port = 22,
				      .user = "root" }, out;
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_ssh_server_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(f.type, FT_SSH_SERVER);
	assert_int_equal(proto_ssh_server_decode(&f, &out, &e), 0);
	assert_string_equal(out.host_key, ED25519);
	assert_string_equal(out.fingerprint, ED25519_FP);
	assert_int_equal(out.port, 22);
	assert_string_equal(out.user, "root");

	/* Unknown fields are for newer agents: skipped. */
	buf_consume(&b, buf_len(&b));
	{
		size_t mark;

		proto_begin(&b, FT_SSH_SERVER, &mark);
		proto_field_put_str(&b, 99, "future");
		proto_field_put_str(&b, SSH_SERVER_HOST_KEY, ED25519);
		proto_field_put_str(&b, SSH_SERVER_FINGERPRINT, ED25519_FP);
		proto_field_put_u32(&b, SSH_SERVER_PORT, 22);
		proto_field_put_str(&b, SSH_SERVER_USER, "user");
		proto_end(&b, mark);
	}
	one_frame(&f);
	assert_int_equal(proto_ssh_server_decode(&f, &out, &e), 0);
	assert_string_equal(out.user, "user");

	/* A missing field is an error. */
	buf_consume(&b, buf_len(&b));
	{
		size_t mark;

		proto_begin(&b, FT_SSH_SERVER, &mark);
		proto_field_put_str(&b, SSH_SERVER_HOST_KEY, ED25519);
		proto_end(&b, mark);
	}
	one_frame(&f);
	assert_int_equal(proto_ssh_server_decode(&f, &out, &e), -EBADMSG);
}

struct lines {
	int n;
	char seen[4][128];
};

static void collect(void *arg, const char *line)
{
	struct lines *l = arg;

	if (l->n < 4)
		snprintf(l->seen[l->n], sizeof(l->seen[0]), "%s", line);
	l->n++;
}

static void test_ssh_keys_decode(void **state)
{
	struct lines l = { 0 };
	struct proto_err e;
	struct frame f;
	size_t mark;

	proto_begin(&b, FT_SSH_KEYS, &mark);
	proto_field_put_str(&b, SSH_KEY_KEY, "ssh-ed25519 AAAA one");
	proto_field_put_str(&b, SSH_KEY_KEY, "no-pty ssh-rsa BBBB two");
	proto_end(&b, mark);
	one_frame(&f);
	assert_int_equal(proto_ssh_keys_decode(&f, collect, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.seen[0], "ssh-ed25519 AAAA one");
	assert_string_equal(l.seen[1], "no-pty ssh-rsa BBBB two");

	/* A bad field anywhere: nothing is delivered. */
	memset(&l, 0, sizeof(l));
	raw_frame(&f, FT_SSH_KEYS, "\x02\x00\x01\x00\x00\x00" "a\x02\x00\x02\x00\x00\x00" "b\0",
		  15);
	assert_int_equal(proto_ssh_keys_decode(&f, collect, &l, &e), -EINVAL);
	assert_int_equal(l.n, 0);
}

static void test_type_names(void **state)
{
	assert_string_equal(proto_type_name(FT_SSH_START), "SSH_START");
	assert_string_equal(proto_type_name(FT_SSH_KEY_ADD), "SSH_KEY_ADD");
	assert_string_equal(proto_type_name(FT_SSH_KEY_REMOVE), "SSH_KEY_REMOVE");
	assert_string_equal(proto_type_name(FT_SSH_KEY_LIST), "SSH_KEY_LIST");
	assert_string_equal(proto_type_name(FT_SSH_SERVER), "SSH_SERVER");
	assert_string_equal(proto_type_name(FT_SSH_KEYS), "SSH_KEYS");
	assert_string_equal(proto_type_name(0x005f), "unknown");
}

/* ---- keys ---- */

static struct ssh_pubkey k1, k2;

static void test_key_parse_good(void **state)
{
	static const struct {
		const char *line, *type, *fp, *comment;
	} good[] = {
		{ ED25519, "ssh-ed25519", ED25519_FP, "" },
		{ ED25519 " test ed25519", "ssh-ed25519", ED25519_FP, "test ed25519" },
		{ "  " ED25519 "\tuser@host  ", "ssh-ed25519", ED25519_FP, "user@host" },
		{ RSA2048 " a", "ssh-rsa", RSA2048_FP, "a" },
		{ RSA1024, "ssh-rsa", NULL, "" },
		{ P256, "ecdsa-sha2-nistp256", P256_FP, "" },
		{ P384, "ecdsa-sha2-nistp384", NULL, "" },
		{ P521 " é", "ecdsa-sha2-nistp521", P521_FP, "é" },
	};
	char fp[SSH_FINGERPRINT_MAX + 1];
	struct proto_err e;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		if (ssh_key_parse(good[i].line, strlen(good[i].line), &k1, &e) != 0)
			fail_msg("case %zu refused: %s", i, e.msg);
		assert_string_equal(k1.type, good[i].type);
		assert_int_equal(k1.comment_len, strlen(good[i].comment));
		assert_memory_equal(k1.comment, good[i].comment, k1.comment_len);
		if (good[i].fp) {
			ssh_key_fingerprint(k1.blob, k1.blob_len, fp);
			assert_string_equal(fp, good[i].fp);
		}
	}
}

/* Key data: a type string and then the given wire bytes, in base64. */
static void craft(char *out, size_t n, const char *line_type, const char *blob_type,
		  const void *rest, size_t rest_len)
{
	uint8_t blob[2048];
	size_t tl = strlen(blob_type), len;
	size_t at;

	blob[0] = blob[1] = blob[2] = 0;
	blob[3] = (uint8_t)tl;
	memcpy(blob + 4, blob_type, tl);
	memcpy(blob + 4 + tl, rest, rest_len);
	len = 4 + tl + rest_len;
	at = (size_t)snprintf(out, n, "%s ", line_type);
	sodium_bin2base64(out + at, n - at, blob, len, sodium_base64_VARIANT_ORIGINAL);
}

static void test_key_parse_bad(void **state)
{
	static char line[8192];
	struct proto_err e;
	uint8_t rest[600] = { 0 };
	char longline[SSH_KEY_LINE_MAX + 8];
	static const struct {
		const char *line;
		const char *why;
	} bad[] = {
		{ "", "the key is empty" },
		{ "   ", "the key is empty" },
		{ "ssh-dss AAAAB3NzaC1kc3M=", "ssh-dss (DSA) keys are not accepted" },
		{ "ssh-foo AAAA", "unknown key type 'ssh-foo'" },
		{ "no-pty " ED25519, "key options are not accepted" },
		{ "ssh-ed25519", "the key data is missing" },
		{ "ssh-ed25519 not*base64", "not valid base64" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdBeNZehEFCXBkQdDGJKEEORyQnhllycQmc9gIYLgQ",
		  "not valid base64" },
		{ "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKdBeNZehEFCXBkQdDGJKEEORyQnhllycQmc9gIYLgQL",
		  "is a 'ssh-ed25519' key but the line says ssh-rsa" },
		{ ED25519 "\nssh-ed25519 AAAA", "control characters" },
		{ ED25519 " a\rb", "control characters" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (ssh_key_parse(bad[i].line, strlen(bad[i].line), &k1, &e) != -EINVAL)
			fail_msg("case %zu accepted", i);
		if (!strstr(e.msg, bad[i].why) || strncmp(e.msg, "malformed key: ", 15) != 0)
			fail_msg("case %zu: '%s' does not say '%s'", i, e.msg, bad[i].why);
	}

	/* Shapes of the key data, crafted. */
	craft(line, sizeof(line), "ssh-ed25519", "ssh-ed25519", "\0\0\0\x1f", 4 + 31);
	assert_int_equal(ssh_key_parse(line, strlen(line), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not 32 bytes"));
	memcpy(rest, "\0\0\0\x20", 4);
	craft(line, sizeof(line), "ssh-ed25519", "ssh-ed25519", rest, 4 + 32 + 1);
	assert_int_equal(ssh_key_parse(line, strlen(line), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "trailing bytes"));
	/* RSA: a 512-bit modulus, and a negative one. */
	memcpy(rest, "\0\0\0\x03\x01\x00\x01\0\0\0\x41\x00\xc0", 13);
	craft(line, sizeof(line), "ssh-rsa", "ssh-rsa", rest, 7 + 4 + 65);
	assert_int_equal(ssh_key_parse(line, strlen(line), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "1024 to 16384 bits"));
	memcpy(rest, "\0\0\0\x03\x01\x00\x01\0\0\0\x80\xc0", 12);
	craft(line, sizeof(line), "ssh-rsa", "ssh-rsa", rest, 7 + 4 + 128);
	assert_int_equal(ssh_key_parse(line, strlen(line), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "modulus is malformed"));
	/* ECDSA: the wrong curve for the type, a compressed point. */
	memcpy(rest, "\0\0\0\x08nistp384\0\0\0\x41\x04", 17);
	craft(line, sizeof(line), "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", rest, 16 + 65);
	assert_int_equal(ssh_key_parse(line, strlen(line), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "curve name does not match"));
	memcpy(rest, "\0\0\0\x08nistp256\0\0\0\x41\x02", 17);
	craft(line, sizeof(line), "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", rest, 16 + 65);
	assert_int_equal(ssh_key_parse(line, strlen(line), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "curve point is malformed"));

	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(ssh_key_parse(longline, strlen(longline), &k1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "longer than 8192 bytes"));
}

/* Every truncation of a good key line's data is refused cleanly. */
static void test_key_parse_truncations(void **state)
{
	static const char *lines[] = { ED25519, RSA2048, P256, P521 };
	struct proto_err e;

	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		size_t sp = (size_t)(strchr(lines[i], ' ') - lines[i]) + 1;

		for (size_t cut = sp; cut < strlen(lines[i]); cut++)
			assert_int_equal(ssh_key_parse(lines[i], cut, &k1, &e), -EINVAL);
	}
}

static void test_key_find(void **state)
{
	static const char *with_options[] = {
		"no-pty " ED25519,
		"command=\"echo a b\",no-pty " ED25519 " c",
		"environment=\"X=\\\"q r\\\"\" " ED25519,
		"\t" ED25519,
	};

	assert_int_equal(ssh_key_find("", 0, &k1), 0);
	assert_int_equal(ssh_key_find("# " ED25519, strlen("# " ED25519), &k1), 0);
	assert_int_equal(ssh_key_find("garbage here", 12, &k1), 0);
	assert_int_equal(ssh_key_parse(ED25519, strlen(ED25519), &k2, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(with_options); i++) {
		assert_int_equal(ssh_key_find(with_options[i], strlen(with_options[i]), &k1), 1);
		assert_true(ssh_key_equal(&k1, &k2));
	}
}

static void test_key_equal_ignores_comment(void **state)
{
	assert_int_equal(ssh_key_parse(ED25519 " one", strlen(ED25519 " one"), &k1, NULL), 0);
	assert_int_equal(ssh_key_parse(ED25519 " two", strlen(ED25519 " two"), &k2, NULL), 0);
	assert_true(ssh_key_equal(&k1, &k2));
	assert_int_equal(ssh_key_parse(P256, strlen(P256), &k2, NULL), 0);
	assert_false(ssh_key_equal(&k1, &k2));
}

static void test_key_format(void **state)
{
	char out[SSH_KEY_LINE_MAX + 1];

	assert_int_equal(ssh_key_parse("  " ED25519 "\tme  ", strlen("  " ED25519 "\tme  "), &k1,
				       NULL), 0);
	assert_int_equal(ssh_key_format(k1.type, k1.blob, k1.blob_len, "me", out, sizeof(out)), 0);
	assert_string_equal(out, ED25519 " me");
	assert_int_equal(ssh_key_format(k1.type, k1.blob, k1.blob_len, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, ED25519);
	/* Exactly enough room, and one byte less. */
	assert_int_equal(ssh_key_format(k1.type, k1.blob, k1.blob_len, "me", out,
					strlen(ED25519 " me") + 1), 0);
	assert_int_equal(ssh_key_format(k1.type, k1.blob, k1.blob_len, "me", out,
					strlen(ED25519 " me")), -ENAMETOOLONG);
}

static void test_ed25519_blob(void **state)
{
	uint8_t blob[SSH_ED25519_BLOB_LEN];

	assert_int_equal(ssh_key_parse(ED25519, strlen(ED25519), &k1, NULL), 0);
	ssh_ed25519_blob(k1.blob + k1.blob_len - 32, blob);
	assert_int_equal(k1.blob_len, SSH_ED25519_BLOB_LEN);
	assert_memory_equal(blob, k1.blob, SSH_ED25519_BLOB_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forward_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_bad_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_mutations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_request_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_server_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_keys_decode, setup, teardown),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_key_parse_good),
		cmocka_unit_test(test_key_parse_bad),
		cmocka_unit_test(test_key_parse_truncations),
		cmocka_unit_test(test_key_find),
		cmocka_unit_test(test_key_equal_ignores_comment),
		cmocka_unit_test(test_key_format),
		cmocka_unit_test(test_ed25519_blob),
	};

	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
