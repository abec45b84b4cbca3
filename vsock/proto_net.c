/* Codec for port forwarding and SSH access (docs/protocol/net.md), and the
 * SSH public key format (RFC 4253 section 6.6, OpenSSH's authorized_keys
 * lines) that its KEY fields carry. Shared by the agent and libsbx. */
#include "vsock/proto_net.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "lib/util.h"

static const struct {
	uint16_t type;
	const char *name;
} names[] = {
	{ FT_FORWARD, "FORWARD" },
	{ FT_SSH_START, "SSH_START" },
	{ FT_SSH_KEY_ADD, "SSH_KEY_ADD" },
	{ FT_SSH_KEY_REMOVE, "SSH_KEY_REMOVE" },
	{ FT_SSH_KEY_LIST, "SSH_KEY_LIST" },
	{ FT_SSH_SERVER, "SSH_SERVER" },
	{ FT_SSH_KEYS, "SSH_KEYS" },
};

const char *proto_net_type_name(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].type == type)
			return names[i].name;
	return "unknown";
}

/* A string field: no NUL, at most max bytes, copied NUL-terminated. */
static int get_str(const struct frame *f, const char *field, const uint8_t *v, uint32_t len,
		   char *out, size_t max, bool empty_ok, struct proto_err *e)
{
	if (len > max)
		return proto_fail(e, EINVAL, "%s: field %s is %u bytes, at most %zu allowed",
				  proto_type_name(f->type), field, len, max);
	if (len == 0 && !empty_ok)
		return proto_fail(e, EINVAL, "%s: field %s is empty", proto_type_name(f->type),
				  field);
	if (memchr(v, '\0', len))
		return proto_fail(e, EINVAL, "%s: field %s contains a NUL byte",
				  proto_type_name(f->type), field);
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

/* ---- FORWARD ---- */

int proto_forward_put(struct buf *b, uint32_t port)
{
	size_t mark;
	int r;

	if ((r = proto_begin(b, FT_FORWARD, &mark)) < 0 ||
	    (r = proto_field_put_u32(b, FORWARD_PORT, port)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_forward_decode(const struct frame *f, uint16_t *port, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len, p = 0;
	bool seen = false;
	int r;

	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag != FORWARD_PORT)
			return proto_fail(e, EINVAL, "FORWARD: unknown field %u", tag);
		if (seen)
			return proto_fail(e, EINVAL, "FORWARD: field PORT given twice");
		if (len != 4)
			return proto_fail(e, EINVAL, "FORWARD: field PORT is %u bytes, expected 4",
					  len);
		seen = true;
		p = get_le32(v);
	}
	if (r < 0)
		return r;
	if (!seen)
		return proto_fail(e, EINVAL, "FORWARD: no port given (field PORT is missing)");
	if (p < 1 || p > 65535)
		return proto_fail(e, EINVAL, "FORWARD: port %u is out of range (1-65535)", p);
	*port = (uint16_t)p;
	return 0;
}

/* ---- SSH_START ---- */

int proto_ssh_start_put(struct buf *b)
{
	return proto_put(b, FT_SSH_START, NULL, 0);
}

int proto_ssh_start_decode(const struct frame *f, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	int r;

	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0)
		return proto_fail(e, EINVAL, "SSH_START: unknown field %u", tag);
	return r;
}

/* ---- SSH_KEY_ADD, SSH_KEY_REMOVE, SSH_KEY_LIST ---- */

int proto_ssh_key_put(struct buf *b, uint16_t type, const char *user, const char *key)
{
	size_t mark;
	int r;

	if ((r = proto_begin(b, type, &mark)) < 0)
		return r;
	if (user && *user && (r = proto_field_put_str(b, SSH_KEY_USER, user)) < 0)
		return r;
	if (key && (r = proto_field_put_str(b, SSH_KEY_KEY, key)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_ssh_key_decode(const struct frame *f, struct ssh_key_req *r, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	bool have_user = false, have_key = false;
	int rc;

	r->user[0] = '\0';
	r->key[0] = '\0';
	r->key_len = 0;
	proto_fields(&it, f);
	while ((rc = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		switch (tag) {
		case SSH_KEY_USER:
			if (have_user)
				return proto_fail(e, EINVAL, "%s: field USER given twice",
						  proto_type_name(f->type));
			have_user = true;
			rc = get_str(f, "USER", v, len, r->user, NET_USER_MAX, false, e);
			break;
		case SSH_KEY_KEY:
			if (f->type == FT_SSH_KEY_LIST)
				return proto_fail(e, EINVAL, "SSH_KEY_LIST: field KEY is not allowed");
			if (have_key)
				return proto_fail(e, EINVAL, "%s: field KEY given twice",
						  proto_type_name(f->type));
			have_key = true;
			rc = get_str(f, "KEY", v, len, r->key, SSH_KEY_LINE_MAX, false, e);
			r->key_len = len;
			break;
		default:
			return proto_fail(e, EINVAL, "%s: unknown field %u", proto_type_name(f->type),
					  tag);
		}
		if (rc < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	if (f->type != FT_SSH_KEY_LIST && !have_key)
		return proto_fail(e, EINVAL, "%s: no key given (field KEY is missing)",
				  proto_type_name(f->type));
	return 0;
}

/* ---- SSH_SERVER ---- */

int proto_ssh_server_put(struct buf *b, const struct ssh_server_info *s)
{
	size_t mark;
	int r;

	if ((r = proto_begin(b, FT_SSH_SERVER, &mark)) < 0 ||
	    (r = proto_field_put_str(b, SSH_SERVER_HOST_KEY, s->host_key)) < 0 ||
	    (r = proto_field_put_str(b, SSH_SERVER_FINGERPRINT, s->fingerprint)) < 0 ||
	    (r = proto_field_put_u32(b, SSH_SERVER_PORT, s->port)) < 0 ||
	    (r = proto_field_put_str(b, SSH_SERVER_USER, s->user)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_ssh_server_decode(const struct frame *f, struct ssh_server_info *s, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	unsigned seen = 0;
	int r = 0;

	memset(s, 0, sizeof(*s));
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag < 32 && (seen & (1u << tag)))
			return proto_fail(e, EINVAL, "SSH_SERVER: field %u given twice", tag);
		switch (tag) {
		case SSH_SERVER_HOST_KEY:
			r = get_str(f, "HOST_KEY", v, len, s->host_key, SSH_HOST_KEY_MAX, false, e);
			break;
		case SSH_SERVER_FINGERPRINT:
			r = get_str(f, "FINGERPRINT", v, len, s->fingerprint, SSH_FINGERPRINT_MAX,
				    false, e);
			break;
		case SSH_SERVER_PORT:
			if (len != 4)
				return proto_fail(e, EBADMSG, "SSH_SERVER: field PORT is %u bytes", len);
			s->port = get_le32(v);
			break;
		case SSH_SERVER_USER:
			r = get_str(f, "USER", v, len, s->user, NET_USER_MAX, false, e);
			break;
		default:
			continue; /* newer agents may add fields */
		}
		if (r < 0)
			return r;
		seen |= 1u << tag;
	}
	if (r < 0)
		return r;
	if (seen != (1u << SSH_SERVER_HOST_KEY | 1u << SSH_SERVER_FINGERPRINT |
		     1u << SSH_SERVER_PORT | 1u << SSH_SERVER_USER))
		return proto_fail(e, EBADMSG, "SSH_SERVER: a field is missing");
	return 0;
}

/* ---- SSH_KEYS ---- */

int proto_ssh_keys_decode(const struct frame *f, void (*fn)(void *arg, const char *line),
			  void *arg, struct proto_err *e)
{
	char line[SSH_KEY_LINE_MAX + 1];
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	int r;

	/* Check everything first, so fn never sees part of a bad frame. */
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0)
		if (tag == SSH_KEY_KEY &&
		    (r = get_str(f, "KEY", v, len, line, SSH_KEY_LINE_MAX, true, e)) < 0)
			return r;
	if (r < 0)
		return r;
	proto_fields(&it, f);
	while (proto_field_next(&it, &tag, &v, &len, NULL) > 0)
		if (tag == SSH_KEY_KEY) {
			memcpy(line, v, len);
			line[len] = '\0';
			fn(arg, line);
		}
	return 0;
}

/* ---- SSH public keys ---- */

/* Reads one RFC 4251 "string" from the key data. */
static bool wire_str(const uint8_t **p, size_t *left, const uint8_t **s, size_t *len)
{
	uint32_t n;

	if (*left < 4)
		return false;
	n = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 | (*p)[3];
	if (n > *left - 4)
		return false;
	*s = *p + 4;
	*len = n;
	*p += 4 + n;
	*left -= 4 + n;
	return true;
}

static bool wire_str_is(const uint8_t **p, size_t *left, const char *want)
{
	const uint8_t *s;
	size_t len;

	return wire_str(p, left, &s, &len) && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* A positive mpint in its shortest form (RFC 4251 section 5); its size
 * in bits. */
static bool wire_mpint(const uint8_t **p, size_t *left, size_t *bits)
{
	const uint8_t *s;
	size_t len;

	if (!wire_str(p, left, &s, &len) || len == 0 || (s[0] & 0x80))
		return false;
	if (s[0] == 0) {
		if (len < 2 || !(s[1] & 0x80))
			return false; /* a needless leading zero */
		s++;
		len--;
	}
	*bits = len * 8;
	for (uint8_t top = s[0]; !(top & 0x80); top <<= 1)
		(*bits)--;
	return true;
}

enum key_kind { K_ED25519, K_SK_ED25519, K_RSA, K_ECDSA, K_SK_ECDSA };

static const struct key_type {
	const char *name;
	enum key_kind kind;
	const char *curve; /* ECDSA */
	size_t point_len;  /* ECDSA: an uncompressed point */
} key_types[] = {
	{ "ssh-ed25519", K_ED25519, NULL, 0 },
	{ "ecdsa-sha2-nistp256", K_ECDSA, "nistp256", 65 },
	{ "ecdsa-sha2-nistp384", K_ECDSA, "nistp384", 97 },
	{ "ecdsa-sha2-nistp521", K_ECDSA, "nistp521", 133 },
	{ "ssh-rsa", K_RSA, NULL, 0 },
	{ "sk-ssh-ed25519@openssh.com", K_SK_ED25519, NULL, 0 },
	{ "sk-ecdsa-sha2-nistp256@openssh.com", K_SK_ECDSA, "nistp256", 65 },
};

#define KEY_TYPES_TEXT "ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa, or a security key type"

static const struct key_type *key_type_find(const char *s, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(key_types); i++)
		if (strlen(key_types[i].name) == len && memcmp(key_types[i].name, s, len) == 0)
			return &key_types[i];
	return NULL;
}

/* The shape of the key data after its type string; "" when good, else
 * what is wrong. */
static const char *key_data_check(const struct key_type *t, const uint8_t *p, size_t left)
{
	const uint8_t *s;
	size_t len, bits;

	switch (t->kind) {
	case K_ED25519:
	case K_SK_ED25519:
		if (!wire_str(&p, &left, &s, &len) || len != 32)
			return "the Ed25519 public key is not 32 bytes";
		if (t->kind == K_SK_ED25519 && !wire_str(&p, &left, &s, &len))
			return "the security key application is missing";
		break;
	case K_RSA:
		if (!wire_mpint(&p, &left, &bits) || bits < 2 || bits > 64)
			return "the RSA exponent is malformed";
		if (!wire_mpint(&p, &left, &bits))
			return "the RSA modulus is malformed";
		if (bits < 1024 || bits > 16384)
			return "the RSA modulus must have 1024 to 16384 bits";
		break;
	case K_ECDSA:
	case K_SK_ECDSA:
		if (!wire_str_is(&p, &left, t->curve))
			return "the curve name does not match the key type";
		if (!wire_str(&p, &left, &s, &len) || len != t->point_len || s[0] != 0x04)
			return "the curve point is malformed";
		if (t->kind == K_SK_ECDSA && !wire_str(&p, &left, &s, &len))
			return "the security key application is missing";
		break;
	}
	return left ? "there are trailing bytes after the key" : "";
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

int ssh_key_parse(const char *line, size_t len, struct ssh_pubkey *k, struct proto_err *e)
{
	const char *p = line, *end = line + len, *tok, *why;
	const struct key_type *t;
	const uint8_t *s, *q;
	size_t b64_len, slen, left;

	if (len > SSH_KEY_LINE_MAX)
		return proto_fail(e, EINVAL, "malformed key: longer than %d bytes", SSH_KEY_LINE_MAX);
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
			return proto_fail(e, EINVAL, "malformed key: it contains control characters "
					  "(one key per line)");
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	if (p == end)
		return proto_fail(e, EINVAL, "malformed key: the key is empty");
	tok = p;
	while (p < end && !is_space(*p))
		p++;
	t = key_type_find(tok, (size_t)(p - tok));
	if (!t) {
		if (p - tok == 7 && memcmp(tok, "ssh-dss", 7) == 0)
			return proto_fail(e, EINVAL, "malformed key: ssh-dss (DSA) keys are not "
					  "accepted; use " KEY_TYPES_TEXT);
		return proto_fail(e, EINVAL, "malformed key: unknown key type '%.*s' (expected "
				  KEY_TYPES_TEXT "; key options are not accepted)",
				  (int)MIN(p - tok, 40), tok);
	}
	while (p < end && is_space(*p))
		p++;
	tok = p;
	while (p < end && !is_space(*p))
		p++;
	b64_len = (size_t)(p - tok);
	if (b64_len == 0)
		return proto_fail(e, EINVAL, "malformed key: the key data is missing after %s",
				  t->name);
	if (sodium_base642bin(k->blob, sizeof(k->blob), tok, b64_len, NULL, &k->blob_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return proto_fail(e, EINVAL, "malformed key: the key data is not valid base64 (or "
				  "longer than %d bytes)", SSH_KEY_BLOB_MAX);
	q = k->blob;
	left = k->blob_len;
	if (!wire_str(&q, &left, &s, &slen))
		return proto_fail(e, EINVAL, "malformed key: the key data is too short");
	if (slen != strlen(t->name) || memcmp(s, t->name, slen) != 0)
		return proto_fail(e, EINVAL, "malformed key: the key data is a '%.*s' key but the "
				  "line says %s", (int)MIN(slen, 40), (const char *)s, t->name);
	why = key_data_check(t, q, left);
	if (*why)
		return proto_fail(e, EINVAL, "malformed key: %s: %s", t->name, why);
	while (p < end && is_space(*p))
		p++;
	str_copy(k->type, sizeof(k->type), t->name);
	k->comment = p;
	k->comment_len = (size_t)(end - p);
	return 0;
}

/* Skips an options field ("no-pty,command=\"a b\""): up to the first blank
 * outside double quotes. */
static const char *skip_options(const char *p, const char *end)
{
	bool quoted = false;

	for (; p < end; p++) {
		if (*p == '\\' && quoted && p + 1 < end)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (is_space(*p) && !quoted)
			break;
	}
	return p;
}

int ssh_key_find(const char *line, size_t len, struct ssh_pubkey *k)
{
	const char *p = line, *end = line + len;

	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#')
		return 0;
	if (ssh_key_parse(p, (size_t)(end - p), k, NULL) == 0)
		return 1;
	p = skip_options(p, end);
	while (p < end && is_space(*p))
		p++;
	return p < end && ssh_key_parse(p, (size_t)(end - p), k, NULL) == 0;
}

bool ssh_key_equal(const struct ssh_pubkey *a, const struct ssh_pubkey *b)
{
	return strcmp(a->type, b->type) == 0 && a->blob_len == b->blob_len &&
	       memcmp(a->blob, b->blob, a->blob_len) == 0;
}

void ssh_key_fingerprint(const uint8_t *blob, size_t len, char out[SSH_FINGERPRINT_MAX + 1])
{
	uint8_t h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, blob, len);
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, SSH_FINGERPRINT_MAX + 1 - 7, h, sizeof(h),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

int ssh_key_format(const char *type, const uint8_t *blob, size_t len, const char *comment,
		   char *out, size_t n)
{
	size_t tl = strlen(type), b64 = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	size_t cl = comment && *comment ? strlen(comment) + 1 : 0;

	/* b64 counts the terminating NUL. */
	if (tl + 1 + b64 + cl > n)
		return -ENAMETOOLONG;
	memcpy(out, type, tl);
	out[tl] = ' ';
	sodium_bin2base64(out + tl + 1, b64, blob, len, sodium_base64_VARIANT_ORIGINAL);
	if (cl) {
		size_t at = strlen(out);

		out[at] = ' ';
		memcpy(out + at + 1, comment, cl);
	}
	return 0;
}

void ssh_ed25519_blob(const uint8_t pk[32], uint8_t blob[SSH_ED25519_BLOB_LEN])
{
	static const uint8_t head[] = { 0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd',
					'2', '5', '5', '1', '9', 0, 0, 0, 32 };

	memcpy(blob, head, sizeof(head));
	memcpy(blob + sizeof(head), pk, 32);
}
