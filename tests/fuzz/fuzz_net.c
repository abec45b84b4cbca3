/* libFuzzer target: the port forwarding and SSH codec (vsock/proto_net.c):
 * FORWARD, SSH_START, SSH_KEY_ADD/REMOVE/LIST, SSH_SERVER, SSH_KEYS, and
 * the SSH public key parsers (strict, as a client sends a key, and
 * tolerant, as authorized_keys lines are read). The first byte chooses;
 * the rest is the payload or the key line. A key that parses is
 * formatted again and must parse to the same key. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/reencode.h"
#include "vsock/proto_net.h"

static void count_line(void *arg, const char *line)
{
	FUZZ_CHECK(strlen(line) <= SSH_KEY_LINE_MAX);
	(*(size_t *)arg)++;
}

/* A parsed key, formatted and parsed again, is the same key. */
static void key_round_trip(const struct ssh_pubkey *k)
{
	static char line[2 * SSH_KEY_LINE_MAX], comment[SSH_KEY_LINE_MAX + 1];
	static struct ssh_pubkey k2;
	char fp[SSH_FINGERPRINT_MAX + 1];
	struct proto_err e;
	int r;

	memcpy(comment, k->comment, k->comment_len);
	comment[k->comment_len] = '\0';
	r = ssh_key_format(k->type, k->blob, k->blob_len, comment, line, sizeof(line));
	FUZZ_CHECK(r == 0);
	fuzz_err_reset(&e);
	r = ssh_key_parse(line, strlen(line), &k2, &e);
	fuzz_check_rc(r, &e);
	if (strlen(line) > SSH_KEY_LINE_MAX)
		return; /* a long comment: the line no longer fits */
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(ssh_key_equal(k, &k2));
	FUZZ_CHECK(k2.comment_len == k->comment_len &&
		   memcmp(k2.comment, k->comment, k->comment_len) == 0);
	ssh_key_fingerprint(k->blob, k->blob_len, fp);
	FUZZ_CHECK(strncmp(fp, "SHA256:", 7) == 0 && strlen(fp) == 7 + 43);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ssh_key_req kr;
	static struct ssh_pubkey k;
	struct proto_err e;
	struct frame f;
	const uint8_t *p = data + 1;
	size_t len = size - 1, lines = 0;
	int r;

	if (size < 1 || len > PROTO_FRAME_MAX)
		return 0;
	buf_consume(&b, buf_len(&b));
	fuzz_err_reset(&e);
	switch (data[0] % N_COUNT) {
	case N_FORWARD: {
		uint16_t port, port2;

		f = fuzz_frame_of(FT_FORWARD, p, len);
		r = proto_forward_decode(&f, &port, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			break;
		FUZZ_CHECK(port >= 1);
		FUZZ_CHECK(proto_forward_put(&b, port) == 0);
		struct frame g = reencoded(FT_FORWARD);
		FUZZ_CHECK(proto_forward_decode(&g, &port2, &e) == 0 && port == port2);
		break;
	}
	case N_SSH_START:
		f = fuzz_frame_of(FT_SSH_START, p, len);
		r = proto_ssh_start_decode(&f, &e);
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(len == 0);
		break;
	case N_KEY_ADD:
	case N_KEY_REMOVE:
	case N_KEY_LIST: {
		uint16_t type = data[0] % N_COUNT == N_KEY_ADD ? FT_SSH_KEY_ADD :
				data[0] % N_COUNT == N_KEY_REMOVE ? FT_SSH_KEY_REMOVE : FT_SSH_KEY_LIST;
		static struct ssh_key_req kr2;

		f = fuzz_frame_of(type, p, len);
		r = proto_ssh_key_decode(&f, &kr, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			break;
		FUZZ_CHECK(strlen(kr.user) <= NET_USER_MAX && strlen(kr.key) == kr.key_len);
		FUZZ_CHECK(type == FT_SSH_KEY_LIST ? kr.key_len == 0 : kr.key_len > 0);
		FUZZ_CHECK(proto_ssh_key_put(&b, type, kr.user,
					     type == FT_SSH_KEY_LIST ? NULL : kr.key) == 0);
		struct frame g = reencoded(type);
		FUZZ_CHECK(proto_ssh_key_decode(&g, &kr2, &e) == 0);
		FUZZ_CHECK(strcmp(kr.user, kr2.user) == 0 && strcmp(kr.key, kr2.key) == 0);
		/* The agent then judges the key itself. */
		if (kr.key_len) {
			fuzz_err_reset(&e);
			r = ssh_key_parse(kr.key, kr.key_len, &k, &e);
			fuzz_check_rc(r, &e);
		}
		break;
	}
	case N_SERVER: {
		static struct ssh_server_info s, s2;

		f = fuzz_frame_of(FT_SSH_SERVER, p, len);
		r = proto_ssh_server_decode(&f, &s, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			break;
		FUZZ_CHECK(proto_ssh_server_put(&b, &s) == 0);
		struct frame g = reencoded(FT_SSH_SERVER);
		FUZZ_CHECK(proto_ssh_server_decode(&g, &s2, &e) == 0);
		/* (A field given twice: the last one counts, on both sides.) */
		FUZZ_CHECK(strcmp(s.host_key, s2.host_key) == 0 &&
			   strcmp(s.fingerprint, s2.fingerprint) == 0 && s.port == s2.port &&
			   strcmp(s.user, s2.user) == 0);
		break;
	}
	case N_KEYS:
		f = fuzz_frame_of(FT_SSH_KEYS, p, len);
		r = proto_ssh_keys_decode(&f, count_line, &lines, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			FUZZ_CHECK(lines == 0); /* nothing seen of a bad frame */
		break;
	case N_PARSE:
		r = ssh_key_parse((const char *)p, len, &k, &e);
		fuzz_check_rc(r, &e);
		if (r == 0) {
			FUZZ_CHECK(k.blob_len <= SSH_KEY_BLOB_MAX);
			FUZZ_CHECK(k.comment >= (const char *)p &&
				   k.comment + k.comment_len <= (const char *)p + len);
			key_round_trip(&k);
		}
		break;
	case N_FIND:
		r = ssh_key_find((const char *)p, len, &k);
		FUZZ_CHECK(r == 0 || r == 1);
		if (r == 1)
			key_round_trip(&k);
		break;
	}
	return 0;
}
