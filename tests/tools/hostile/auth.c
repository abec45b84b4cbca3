/* sbx-hostile: a sandbox with a token (run with $HOSTILE_TOKEN): AUTH
 * missing, wrong, replayed, malformed, right, twice, never sent. */
#include <errno.h>
#include <string.h>

#include "tests/tools/hostile/hostile.h"

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

static const struct hostile_case cases[] = {
	{ .name = "auth: a request instead of AUTH: EACCES", .fn = c_auth_request_instead },
	{ .name = "auth: the proof of another token: EACCES", .fn = c_auth_wrong },
	{ .name = "auth: another connection's proof (replay): EACCES; nonces differ", .fn = c_auth_replay },
	{ .name = "auth: a 31-byte AUTH: EBADMSG",
	  .frame = { AFTER_NONCE, PAYLOAD, FT_AUTH,
		     .bytes = ZEROS_32,
		     .len = 31,
		     .code = EBADMSG, .text = "AUTH payload is 31 bytes, expected 32" } },
	{ .name = "auth: a 1 MiB AUTH header: refused before the payload",
	  .frame = { AFTER_NONCE, HEADER, FT_AUTH,
		     .claim = PROTO_FRAME_MAX,
		     .code = EBADMSG, .text = "AUTH payload is 1048576 bytes, expected 32" } },
	{ .name = "auth: OUTPUT instead of AUTH: EACCES (no id for an unproven client)",
	  .frame = { AFTER_NONCE, PAYLOAD, FT_OUTPUT,
		     .code = EACCES, .text = "authentication required" } },
	{ .name = "auth: AUTH before HELLO: EPROTO",
	  .frame = { NO_HELLO, PAYLOAD, FT_AUTH,
		     BYTES(ZEROS_32),
		     .code = EPROTO, .text = "expected HELLO, got frame type 0x0003 (AUTH)" } },
	{ .name = "auth: the right proof: served", .fn = c_auth_right },
	{ .name = "auth: AUTH twice: EOPNOTSUPP",
	  .frame = { AFTER_HELLO, PAYLOAD, FT_AUTH,
		     BYTES(ZEROS_32),
		     .code = EOPNOTSUPP, .text = "frame type 0x0003 (AUTH)" } },
	{ .name = "auth: asked for the token, silent: ETIMEDOUT after 10 s", .fn = c_auth_silent },
};

HOSTILE_AREA(hostile_auth, cases);
