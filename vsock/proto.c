/* The sbx wire protocol codec: frame headers, fields, and every message of
 * docs/PROTOCOL.md. Used unchanged by the agent and by libsbx. */
#include "vsock/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lib/util.h"
#include "vsock/proto_fs.h"
#include "vsock/proto_net.h"

#define FIELD_HDR_LEN 6

static const struct {
	uint16_t type;
	const char *name;
} type_names[] = {
	{ FT_HELLO, "HELLO" },	       { FT_HELLO_OK, "HELLO_OK" }, { FT_AUTH, "AUTH" },
	{ FT_ERROR, "ERROR" },	       { FT_OK, "OK" },	    { FT_SHUTDOWN, "SHUTDOWN" },
	{ FT_READY, "READY" },	       { FT_EXEC, "EXEC" },	    { FT_INFO, "INFO" },
	{ FT_INFO_OK, "INFO_OK" },     { FT_STDIN, "STDIN" },	    { FT_STDIN_EOF, "STDIN_EOF" },
	{ FT_SIGNAL, "SIGNAL" },       { FT_RESIZE, "RESIZE" },	    { FT_STARTED, "STARTED" },
	{ FT_STDOUT, "STDOUT" },       { FT_STDERR, "STDERR" },	    { FT_EXIT, "EXIT" },
	{ FT_ATTACH, "ATTACH" },       { FT_PS, "PS" },		    { FT_SESSION, "SESSION" },
	{ FT_EXTEND, "EXTEND" },       { FT_ENV, "ENV" },	    { FT_ENV_LIST, "ENV_LIST" },
	{ FT_LIFETIME, "LIFETIME" },   { FT_SET_TIME, "SET_TIME" }, { FT_ACK, "ACK" },
	{ FT_ATTACHED, "ATTACHED" },   { FT_PS_ENTRY, "PS_ENTRY" },  { FT_FREEZE, "FREEZE" },
	{ FT_IDENTITY, "IDENTITY" },   { FT_OUTPUT, "OUTPUT" },	    { FT_OUTPUT_OK, "OUTPUT_OK" },
};

const char *proto_type_name(uint16_t type)
{
	if ((type >= FT_FS_FIRST && type <= FT_FS_LAST) ||
	    (type >= FT_FS_STREAM_FIRST && type <= FT_FS_STREAM_LAST))
		return proto_fs_type_name(type);
	if ((type >= FT_NET_FIRST && type <= FT_NET_LAST) ||
	    (type >= FT_NET_STREAM_FIRST && type <= FT_NET_STREAM_LAST))
		return proto_net_type_name(type);
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return "unknown";
}

int proto_fail(struct proto_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

long proto_frame_parse(const uint8_t *p, size_t avail, struct frame *f, struct proto_err *e)
{
	uint32_t len;
	uint16_t flags;

	if (avail < PROTO_HDR_LEN)
		return 0;
	len = get_le32(p);
	f->type = get_le16(p + 4);
	flags = get_le16(p + 6);
	if (len > PROTO_FRAME_MAX)
		return proto_fail(e, EMSGSIZE, "frame of %u bytes exceeds the %u-byte limit", len,
				  PROTO_FRAME_MAX);
	if (flags != 0)
		return proto_fail(e, EPROTO, "frame %s has reserved flags 0x%x set",
				  proto_type_name(f->type), flags);
	if (avail - PROTO_HDR_LEN < len)
		return 0;
	f->len = len;
	f->payload = p + PROTO_HDR_LEN;
	return (long)(PROTO_HDR_LEN + len);
}

void proto_hdr_put(uint8_t hdr[PROTO_HDR_LEN], uint16_t type, uint32_t len)
{
	put_le32(hdr, len);
	put_le16(hdr + 4, type);
	put_le16(hdr + 6, 0);
}

int proto_put(struct buf *b, uint16_t type, const void *payload, size_t len)
{
	int r;

	if (len > PROTO_FRAME_MAX)
		return -EMSGSIZE;
	r = buf_reserve(b, PROTO_HDR_LEN + len);
	if (r < 0)
		return r;
	proto_hdr_put(buf_tail(b), type, (uint32_t)len);
	if (len)
		memcpy(buf_tail(b) + PROTO_HDR_LEN, payload, len);
	buf_commit(b, PROTO_HDR_LEN + len);
	return 0;
}

int proto_begin(struct buf *b, uint16_t type, size_t *mark)
{
	int r = buf_reserve(b, PROTO_HDR_LEN);

	if (r < 0)
		return r;
	*mark = buf_len(b);
	proto_hdr_put(buf_tail(b), type, 0);
	buf_commit(b, PROTO_HDR_LEN);
	return 0;
}

int proto_end(struct buf *b, size_t mark)
{
	size_t len = buf_len(b) - mark - PROTO_HDR_LEN;

	if (len > PROTO_FRAME_MAX)
		return -EMSGSIZE;
	put_le32(buf_head(b) + mark, (uint32_t)len);
	return 0;
}

int proto_field_put(struct buf *b, uint16_t tag, const void *val, size_t len)
{
	int r;

	if (len > PROTO_FRAME_MAX)
		return -EMSGSIZE;
	r = buf_reserve(b, FIELD_HDR_LEN + len);
	if (r < 0)
		return r;
	put_le16(buf_tail(b), tag);
	put_le32(buf_tail(b) + 2, (uint32_t)len);
	if (len)
		memcpy(buf_tail(b) + FIELD_HDR_LEN, val, len);
	buf_commit(b, FIELD_HDR_LEN + len);
	return 0;
}

int proto_field_put_str(struct buf *b, uint16_t tag, const char *s)
{
	return proto_field_put(b, tag, s, strlen(s));
}

int proto_field_put_u32(struct buf *b, uint16_t tag, uint32_t v)
{
	uint8_t p[4];

	put_le32(p, v);
	return proto_field_put(b, tag, p, sizeof(p));
}

int proto_field_put_u64(struct buf *b, uint16_t tag, uint64_t v)
{
	uint8_t p[8];

	put_le64(p, v);
	return proto_field_put(b, tag, p, sizeof(p));
}

void proto_fields(struct field_iter *it, const struct frame *f)
{
	it->p = f->payload;
	it->left = f->len;
	it->frame_type = f->type;
}

int proto_field_next(struct field_iter *it, uint16_t *tag, const uint8_t **val,
		     uint32_t *len, struct proto_err *e)
{
	if (it->left == 0)
		return 0;
	if (it->left < FIELD_HDR_LEN)
		return proto_fail(e, EBADMSG, "%s: %zu trailing bytes do not form a field",
				  proto_type_name(it->frame_type), it->left);
	*tag = get_le16(it->p);
	*len = get_le32(it->p + 2);
	if (*len > it->left - FIELD_HDR_LEN)
		return proto_fail(e, EBADMSG, "%s: field %u claims %u bytes but only %zu remain",
				  proto_type_name(it->frame_type), *tag, *len,
				  it->left - FIELD_HDR_LEN);
	*val = it->p + FIELD_HDR_LEN;
	it->p += FIELD_HDR_LEN + *len;
	it->left -= FIELD_HDR_LEN + *len;
	return 1;
}

int proto_want_len(const struct frame *f, size_t len, struct proto_err *e)
{
	if (f->len != len)
		return proto_fail(e, EBADMSG, "%s payload is %u bytes, expected %zu",
				  proto_type_name(f->type), f->len, len);
	return 0;
}

/* ---- hello ---- */

int proto_hello_put(struct buf *b, uint16_t vmin, uint16_t vmax)
{
	uint8_t p[8];

	memcpy(p, PROTO_MAGIC, 4);
	put_le16(p + 4, vmin);
	put_le16(p + 6, vmax);
	return proto_put(b, FT_HELLO, p, sizeof(p));
}

static int check_magic(const struct frame *f, struct proto_err *e)
{
	if (memcmp(f->payload, PROTO_MAGIC, 4) != 0)
		return proto_fail(e, EPROTO, "%s has a bad magic number: not an sbx peer",
				  proto_type_name(f->type));
	return 0;
}

int proto_hello_decode(const struct frame *f, uint16_t *vmin, uint16_t *vmax, struct proto_err *e)
{
	int r;

	if (f->type != FT_HELLO)
		return proto_fail(e, EPROTO, "expected HELLO, got frame type 0x%04x (%s)", f->type,
				  proto_type_name(f->type));
	if ((r = proto_want_len(f, 8, e)) < 0 || (r = check_magic(f, e)) < 0)
		return r;
	*vmin = get_le16(f->payload + 4);
	*vmax = get_le16(f->payload + 6);
	if (*vmin > *vmax)
		return proto_fail(e, EINVAL, "HELLO version range %u-%u is empty", *vmin, *vmax);
	return 0;
}

#define AUTH_CONTEXT "sbx-auth-v1"

void proto_auth_key(const char *token, uint8_t key[32])
{
	crypto_generichash_state st;

	/* A context string keeps this key apart from any other use of the
	 * same token. */
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)AUTH_CONTEXT, sizeof(AUTH_CONTEXT));
	crypto_generichash_update(&st, (const uint8_t *)token, strlen(token));
	crypto_generichash_final(&st, key, 32);
}

void proto_auth_mac(const uint8_t key[32], const uint8_t nonce[PROTO_NONCE_LEN],
		    uint8_t mac[PROTO_AUTH_LEN])
{
	crypto_auth(mac, nonce, PROTO_NONCE_LEN, key);
}

bool proto_auth_check(const uint8_t key[32], const uint8_t nonce[PROTO_NONCE_LEN],
		      const uint8_t mac[PROTO_AUTH_LEN])
{
	return crypto_auth_verify(mac, nonce, PROTO_NONCE_LEN, key) == 0;
}

int proto_hello_ok_put(struct buf *b, const struct hello_ok *h)
{
	uint8_t p[8 + PROTO_NONCE_LEN];

	memcpy(p, PROTO_MAGIC, 4);
	put_le16(p + 4, h->version);
	put_le16(p + 6, h->flags);
	memcpy(p + 8, h->nonce, PROTO_NONCE_LEN);
	return proto_put(b, FT_HELLO_OK, p, sizeof(p));
}

int proto_hello_ok_decode(const struct frame *f, struct hello_ok *h, struct proto_err *e)
{
	int r;

	if ((r = proto_want_len(f, 8 + PROTO_NONCE_LEN, e)) < 0 || (r = check_magic(f, e)) < 0)
		return r;
	h->version = get_le16(f->payload + 4);
	h->flags = get_le16(f->payload + 6);
	memcpy(h->nonce, f->payload + 8, PROTO_NONCE_LEN);
	return 0;
}

/* ---- error ---- */

int proto_error_put(struct buf *b, int code, const char *fmt, ...)
{
	uint8_t p[4 + PROTO_MSG_MAX + 1];
	va_list ap;
	int n;

	put_le32(p, (uint32_t)(code < 0 ? -code : code));
	va_start(ap, fmt);
	n = vsnprintf((char *)p + 4, PROTO_MSG_MAX + 1, fmt, ap);
	va_end(ap);
	if (n <= 0) {
		memcpy(p + 4, "error", 5);
		n = 5;
	}
	if (n > PROTO_MSG_MAX)
		n = PROTO_MSG_MAX;
	return proto_put(b, FT_ERROR, p, 4 + (size_t)n);
}

static void copy_msg(char *dst, size_t dstlen, const uint8_t *src, size_t len)
{
	if (dstlen == 0)
		return;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int proto_error_decode(const struct frame *f, int *code, char *msg, size_t msglen,
		       struct proto_err *e)
{
	if (f->len < 5 || f->len > 4 + PROTO_MSG_MAX)
		return proto_fail(e, EBADMSG, "ERROR payload of %u bytes is out of range", f->len);
	*code = (int)get_le32(f->payload);
	if (*code <= 0 || *code > 4095)
		return proto_fail(e, EBADMSG, "ERROR code %d is not an errno value", *code);
	copy_msg(msg, msglen, f->payload + 4, f->len - 4);
	return 0;
}

/* ---- exec ---- */

int proto_exec_put(struct buf *b, const struct exec_req *r)
{
	size_t mark;
	int rc;

	if ((rc = proto_begin(b, FT_EXEC, &mark)) < 0)
		return rc;
	for (size_t i = 0; i < r->argc && rc == 0; i++)
		rc = proto_field_put_str(b, EXEC_ARG, r->argv[i]);
	for (size_t i = 0; i < r->envc && rc == 0; i++)
		rc = proto_field_put_str(b, EXEC_ENV, r->env[i]);
	if (rc == 0 && r->cwd)
		rc = proto_field_put_str(b, EXEC_CWD, r->cwd);
	if (rc == 0 && r->user)
		rc = proto_field_put_str(b, EXEC_USER, r->user);
	if (rc == 0 && r->flags)
		rc = proto_field_put_u32(b, EXEC_FLAGS, r->flags);
	if (rc == 0 && r->pty) {
		uint8_t p[4];

		put_le16(p, r->rows);
		put_le16(p + 2, r->cols);
		rc = proto_field_put(b, EXEC_PTY, p, sizeof(p));
	}
	if (rc == 0 && r->out_conn)
		rc = proto_field_put(b, EXEC_STDOUT_CONN, r->out_id, sizeof(r->out_id));
	return rc < 0 ? rc : proto_end(b, mark);
}

static const char *const exec_field_name[] = {
	[EXEC_ARG] = "ARG", [EXEC_ENV] = "ENV",	    [EXEC_CWD] = "CWD",
	[EXEC_USER] = "USER", [EXEC_FLAGS] = "FLAGS", [EXEC_PTY] = "PTY",
	[EXEC_STDOUT_CONN] = "STDOUT_CONN",
};

static int check_str(const uint8_t *v, uint32_t len, uint16_t tag, struct proto_err *e)
{
	if (memchr(v, '\0', len))
		return proto_fail(e, EINVAL, "EXEC: field %s contains a NUL byte",
				  exec_field_name[tag]);
	return 0;
}

/* Copies a field into the string arena and NUL-terminates it. */
static char *arena_str(char **arena, const uint8_t *v, uint32_t len)
{
	char *s = *arena;

	memcpy(s, v, len);
	s[len] = '\0';
	*arena += len + 1;
	return s;
}

int proto_exec_decode(const struct frame *f, struct exec_req *r, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	size_t nargs = 0, nenv = 0, strbytes = 0;
	unsigned seen = 0;
	char *arena;
	int rc;

	memset(r, 0, sizeof(*r));
	/* Pass 1: validate and count, so one allocation bounded by the frame
	 * size holds the result. */
	proto_fields(&it, f);
	while ((rc = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag < EXEC_ARG || tag > EXEC_STDOUT_CONN)
			return proto_fail(e, EINVAL, "EXEC: unknown field %u", tag);
		if (tag != EXEC_ARG && tag != EXEC_ENV) {
			if (seen & (1u << tag))
				return proto_fail(e, EINVAL, "EXEC: field %s given twice",
						  exec_field_name[tag]);
			seen |= 1u << tag;
		}
		switch (tag) {
		case EXEC_ARG:
			nargs++;
			break;
		case EXEC_ENV: {
			const uint8_t *eq = memchr(v, '=', len);

			if (!eq || eq == v)
				return proto_fail(e, EINVAL,
						  "EXEC: environment entry %zu is not NAME=value",
						  nenv + 1);
			nenv++;
			break;
		}
		case EXEC_CWD:
		case EXEC_USER:
			if (len == 0)
				return proto_fail(e, EINVAL, "EXEC: field %s is empty",
						  exec_field_name[tag]);
			break;
		case EXEC_FLAGS:
			if (len != 4)
				return proto_fail(e, EINVAL, "EXEC: field FLAGS is %u bytes, expected 4", len);
			r->flags = get_le32(v);
			if (r->flags & ~EXEC_F_ALL)
				return proto_fail(e, EINVAL, "EXEC: unknown flags 0x%x",
						  r->flags & ~EXEC_F_ALL);
			break;
		case EXEC_PTY:
			if (len != 4)
				return proto_fail(e, EINVAL, "EXEC: field PTY is %u bytes, expected 4", len);
			r->pty = true;
			r->rows = get_le16(v);
			r->cols = get_le16(v + 2);
			if (r->rows < 1 || r->rows > PROTO_WINSIZE_MAX || r->cols < 1 ||
			    r->cols > PROTO_WINSIZE_MAX)
				return proto_fail(e, EINVAL,
						  "EXEC: terminal size %ux%u is out of range (1-%u)",
						  r->rows, r->cols, PROTO_WINSIZE_MAX);
			break;
		case EXEC_STDOUT_CONN:
			if (len != PROTO_OUTPUT_ID_LEN)
				return proto_fail(e, EINVAL, "EXEC: field STDOUT_CONN is %u bytes, expected %d",
						  len, PROTO_OUTPUT_ID_LEN);
			r->out_conn = true;
			memcpy(r->out_id, v, len);
			break;
		}
		if (tag != EXEC_FLAGS && tag != EXEC_PTY && tag != EXEC_STDOUT_CONN) {
			if ((rc = check_str(v, len, tag, e)) < 0)
				return rc;
			strbytes += len + 1;
		}
	}
	if (rc < 0)
		return rc;
	if (nargs == 0)
		return proto_fail(e, EINVAL, "EXEC: no program given (field ARG is missing)");
	if (r->out_conn && (r->pty || (r->flags & (EXEC_F_DETACH | EXEC_F_NO_STDOUT))))
		return proto_fail(e, EINVAL, "EXEC: field STDOUT_CONN does not go with %s",
				  r->pty ? "PTY" : r->flags & EXEC_F_DETACH ? "DETACH" : "NO_STDOUT");

	r->mem = malloc((nargs + 1 + nenv + 1) * sizeof(char *) + strbytes);
	if (!r->mem)
		return proto_fail(e, ENOMEM, "EXEC: out of memory decoding %u bytes", f->len);
	r->argv = r->mem;
	r->env = r->argv + nargs + 1;
	arena = (char *)(r->env + nenv + 1);

	/* Pass 2: copy out; the frame was fully validated above. */
	proto_fields(&it, f);
	while (proto_field_next(&it, &tag, &v, &len, NULL) > 0) {
		switch (tag) {
		case EXEC_ARG:
			r->argv[r->argc++] = arena_str(&arena, v, len);
			break;
		case EXEC_ENV:
			r->env[r->envc++] = arena_str(&arena, v, len);
			break;
		case EXEC_CWD:
			r->cwd = arena_str(&arena, v, len);
			break;
		case EXEC_USER:
			r->user = arena_str(&arena, v, len);
			break;
		}
	}
	r->argv[r->argc] = NULL;
	r->env[r->envc] = NULL;
	if (r->argv[0][0] == '\0') {
		proto_exec_free(r);
		return proto_fail(e, EINVAL, "EXEC: the program name is empty");
	}
	return 0;
}

void proto_exec_free(struct exec_req *r)
{
	free(r->mem);
	memset(r, 0, sizeof(*r));
}

/* ---- small fixed frames ---- */

int proto_u32_put(struct buf *b, uint16_t type, uint32_t v)
{
	uint8_t p[4];

	put_le32(p, v);
	return proto_put(b, type, p, sizeof(p));
}

int proto_u32_decode(const struct frame *f, uint32_t *v, struct proto_err *e)
{
	int r = proto_want_len(f, 4, e);

	if (r == 0)
		*v = get_le32(f->payload);
	return r;
}

int proto_signal_decode(const struct frame *f, int *sig, struct proto_err *e)
{
	uint32_t v = 0;
	int r = proto_u32_decode(f, &v, e);

	if (r < 0)
		return r;
	if (v < 1 || v > PROTO_SIG_MAX)
		return proto_fail(e, EINVAL, "SIGNAL: signal %u is out of range (1-%u)", v,
				  PROTO_SIG_MAX);
	*sig = (int)v;
	return 0;
}

int proto_resize_put(struct buf *b, uint16_t rows, uint16_t cols)
{
	uint8_t p[4];

	put_le16(p, rows);
	put_le16(p + 2, cols);
	return proto_put(b, FT_RESIZE, p, sizeof(p));
}

int proto_resize_decode(const struct frame *f, uint16_t *rows, uint16_t *cols, struct proto_err *e)
{
	int r = proto_want_len(f, 4, e);

	if (r < 0)
		return r;
	*rows = get_le16(f->payload);
	*cols = get_le16(f->payload + 2);
	if (*rows < 1 || *rows > PROTO_WINSIZE_MAX || *cols < 1 || *cols > PROTO_WINSIZE_MAX)
		return proto_fail(e, EINVAL, "RESIZE: terminal size %ux%u is out of range (1-%u)",
				  *rows, *cols, PROTO_WINSIZE_MAX);
	return 0;
}

/* ---- exit ---- */

int proto_exit_put(struct buf *b, const struct exit_status *x)
{
	uint8_t p[8 + PROTO_MSG_MAX];
	size_t n = strnlen(x->msg, PROTO_MSG_MAX);

	p[0] = x->how;
	p[1] = x->flags;
	put_le16(p + 2, 0);
	put_le32(p + 4, (uint32_t)x->value);
	memcpy(p + 8, x->msg, n);
	return proto_put(b, FT_EXIT, p, 8 + n);
}

int proto_exit_decode(const struct frame *f, struct exit_status *x, struct proto_err *e)
{
	if (f->len < 8 || f->len > 8 + PROTO_MSG_MAX)
		return proto_fail(e, EBADMSG, "EXIT payload of %u bytes is out of range", f->len);
	x->how = f->payload[0];
	x->flags = f->payload[1];
	x->value = (int32_t)get_le32(f->payload + 4);
	if (x->how > EXIT_NOT_STARTED)
		return proto_fail(e, EBADMSG, "EXIT: unknown kind %u", x->how);
	copy_msg(x->msg, sizeof(x->msg), f->payload + 8, f->len - 8);
	return 0;
}

/* ---- info ---- */

int proto_info_ok_put(struct buf *b, const struct info *i)
{
	size_t mark;
	int r;

	if ((r = proto_begin(b, FT_INFO_OK, &mark)) < 0 ||
	    (r = proto_field_put_str(b, INFO_VERSION, i->version)) < 0 ||
	    (r = proto_field_put_str(b, INFO_HOSTNAME, i->hostname)) < 0 ||
	    (r = proto_field_put_str(b, INFO_KERNEL, i->kernel)) < 0 ||
	    (r = proto_field_put_u64(b, INFO_UPTIME_NS, i->uptime_ns)) < 0 ||
	    (r = proto_field_put_u32(b, INFO_PID1, i->pid1)) < 0 ||
	    (r = proto_field_put_u32(b, INFO_LIFETIME_KIND, i->lifetime_kind)) < 0 ||
	    (r = proto_field_put_u64(b, INFO_LIFETIME_LEFT_NS, i->lifetime_left_ns)) < 0 ||
	    (r = proto_field_put_u32(b, INFO_SESSIONS, i->sessions)) < 0 ||
	    (r = proto_field_put_u32(b, INFO_JOBS, i->jobs)) < 0 ||
	    (r = proto_field_put_u64(b, INFO_GRACE_LEFT_NS, i->grace_left_ns)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_info_ok_decode(const struct frame *f, struct info *i, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	int r;

	memset(i, 0, sizeof(*i));
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		switch (tag) {
		case INFO_VERSION:
			copy_msg(i->version, sizeof(i->version), v, len);
			break;
		case INFO_HOSTNAME:
			copy_msg(i->hostname, sizeof(i->hostname), v, len);
			break;
		case INFO_KERNEL:
			copy_msg(i->kernel, sizeof(i->kernel), v, len);
			break;
		case INFO_UPTIME_NS:
			if (len != 8)
				return proto_fail(e, EBADMSG, "INFO_OK: UPTIME_NS is %u bytes", len);
			i->uptime_ns = get_le64(v);
			break;
		case INFO_PID1:
		case INFO_LIFETIME_KIND:
		case INFO_SESSIONS:
		case INFO_JOBS:
			if (len != 4)
				return proto_fail(e, EBADMSG, "INFO_OK: field %u is %u bytes", tag, len);
			if (tag == INFO_PID1)
				i->pid1 = get_le32(v) != 0;
			else
				*(tag == INFO_LIFETIME_KIND ? &i->lifetime_kind :
				  tag == INFO_SESSIONS ? &i->sessions : &i->jobs) = get_le32(v);
			break;
		case INFO_LIFETIME_LEFT_NS:
		case INFO_GRACE_LEFT_NS:
			if (len != 8)
				return proto_fail(e, EBADMSG, "INFO_OK: field %u is %u bytes", tag, len);
			*(tag == INFO_GRACE_LEFT_NS ? &i->grace_left_ns : &i->lifetime_left_ns) =
				get_le64(v);
			break;
		default:
			break; /* newer agents may add fields */
		}
	}
	return r;
}

/* ---- ready ---- */

int proto_ready_put(struct buf *b, const struct ready_info *r)
{
	size_t mark;
	int rc;

	if ((rc = proto_begin(b, FT_READY, &mark)) < 0 ||
	    (rc = proto_field_put_u64(b, READY_UPTIME_NS, r->uptime_ns)) < 0 ||
	    (rc = proto_field_put_u64(b, READY_START_NS, r->start_ns)) < 0 ||
	    (rc = proto_field_put_u64(b, READY_LISTEN_NS, r->listen_ns)) < 0 ||
	    (rc = proto_field_put_u64(b, READY_MODULES_NS, r->modules_ns)) < 0)
		return rc;
	return proto_end(b, mark);
}

int proto_ready_decode(const struct frame *f, struct ready_info *r, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	if (f->type != FT_READY)
		return proto_fail(e, EPROTO, "expected READY, got %s", proto_type_name(f->type));
	proto_fields(&it, f);
	while ((rc = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		uint64_t *dst = tag == READY_UPTIME_NS ? &r->uptime_ns :
				tag == READY_START_NS  ? &r->start_ns :
				tag == READY_LISTEN_NS ? &r->listen_ns :
				tag == READY_MODULES_NS ? &r->modules_ns : NULL;

		if (!dst)
			continue; /* newer agents may add fields */
		if (len != 8)
			return proto_fail(e, EBADMSG, "READY: field %u is %u bytes, expected 8", tag, len);
		*dst = get_le64(v);
	}
	return rc;
}

/* ---- shutdown ---- */

int proto_shutdown_put(struct buf *b, const char *reason)
{
	size_t mark;
	int rc;

	if ((rc = proto_begin(b, FT_SHUTDOWN, &mark)) < 0)
		return rc;
	if (reason && (rc = proto_field_put_str(b, SHUTDOWN_REASON, reason)) < 0)
		return rc;
	return proto_end(b, mark);
}

int proto_shutdown_decode(const struct frame *f, char reason[PROTO_REASON_MAX + 1],
			  struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	bool seen = false;
	int rc;

	reason[0] = '\0';
	proto_fields(&it, f);
	while ((rc = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag != SHUTDOWN_REASON)
			return proto_fail(e, EINVAL, "SHUTDOWN: unknown field %u", tag);
		if (seen)
			return proto_fail(e, EINVAL, "SHUTDOWN: field REASON given twice");
		if (len > PROTO_REASON_MAX || memchr(v, '\0', len))
			return proto_fail(e, EINVAL,
					  "SHUTDOWN: REASON must be at most %d bytes without NUL",
					  PROTO_REASON_MAX);
		memcpy(reason, v, len);
		reason[len] = '\0';
		seen = true;
	}
	return rc;
}

/* ---- jobs ---- */

int proto_attached_put(struct buf *b, const struct attached *a)
{
	uint8_t p[24];

	put_le32(p, a->pid);
	put_le32(p + 4, a->flags);
	put_le64(p + 8, a->out_base);
	put_le64(p + 16, a->err_base);
	return proto_put(b, FT_ATTACHED, p, sizeof(p));
}

int proto_attached_decode(const struct frame *f, struct attached *a, struct proto_err *e)
{
	int r = proto_want_len(f, 24, e);

	if (r < 0)
		return r;
	a->pid = get_le32(f->payload);
	a->flags = get_le32(f->payload + 4);
	a->out_base = get_le64(f->payload + 8);
	a->err_base = get_le64(f->payload + 16);
	return 0;
}

int proto_ack_put(struct buf *b, const struct ack *a)
{
	uint8_t p[24];

	put_le64(p, a->out_off);
	put_le64(p + 8, a->err_off);
	put_le32(p + 16, a->flags);
	put_le32(p + 20, 0);
	return proto_put(b, FT_ACK, p, sizeof(p));
}

int proto_ack_decode(const struct frame *f, struct ack *a, struct proto_err *e)
{
	int r = proto_want_len(f, 24, e);

	if (r < 0)
		return r;
	a->out_off = get_le64(f->payload);
	a->err_off = get_le64(f->payload + 8);
	a->flags = get_le32(f->payload + 16);
	if (a->flags & ~ACK_F_EXIT || get_le32(f->payload + 20))
		return proto_fail(e, EINVAL, "ACK: unknown flags 0x%x", a->flags);
	return 0;
}

int proto_ps_entry_put(struct buf *b, const struct ps_entry *p)
{
	size_t mark;
	int r;

	if ((r = proto_begin(b, FT_PS_ENTRY, &mark)) < 0 ||
	    (r = proto_field_put_u32(b, PS_PID, p->pid)) < 0 ||
	    (r = proto_field_put_str(b, PS_ARGV, p->argv)) < 0 ||
	    (r = proto_field_put_u32(b, PS_STATE, p->state)) < 0 ||
	    (r = proto_field_put_u64(b, PS_STARTED_NS, p->started_ns)) < 0 ||
	    (r = proto_field_put_u32(b, PS_STATUS, (uint32_t)p->status)) < 0 ||
	    (r = proto_field_put_u32(b, PS_FLAGS, p->flags)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_ps_entry_decode(const struct frame *f, struct ps_entry *p, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	int r;

	memset(p, 0, sizeof(*p));
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag == PS_ARGV) {
			copy_msg(p->argv, sizeof(p->argv), v, len);
			continue;
		}
		if (tag == PS_STARTED_NS) {
			if (len != 8)
				return proto_fail(e, EBADMSG, "PS_ENTRY: STARTED_NS is %u bytes", len);
			p->started_ns = get_le64(v);
			continue;
		}
		if (tag < PS_PID || tag > PS_FLAGS)
			continue;
		if (len != 4)
			return proto_fail(e, EBADMSG, "PS_ENTRY: field %u is %u bytes", tag, len);
		switch (tag) {
		case PS_PID: p->pid = get_le32(v); break;
		case PS_STATE: p->state = get_le32(v); break;
		case PS_STATUS: p->status = (int32_t)get_le32(v); break;
		case PS_FLAGS: p->flags = get_le32(v); break;
		}
	}
	return r;
}

/* ---- lifetime ---- */

int proto_lifetime_put(struct buf *b, uint16_t type, const struct lifetime *l)
{
	size_t mark;
	int r;

	if ((r = proto_begin(b, type, &mark)) < 0 ||
	    (r = proto_field_put_u32(b, LIFE_KIND, l->kind)) < 0 ||
	    (r = proto_field_put_u64(b, LIFE_LEFT_NS, l->left_ns)) < 0 ||
	    (r = proto_field_put_u64(b, LIFE_REALTIME_NS, l->realtime_ns)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_lifetime_decode(const struct frame *f, struct lifetime *l, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	int r;

	memset(l, 0, sizeof(*l));
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag == LIFE_KIND) {
			if (len != 4)
				return proto_fail(e, EBADMSG, "%s: KIND is %u bytes",
						  proto_type_name(f->type), len);
			l->kind = get_le32(v);
		} else if (tag == LIFE_LEFT_NS || tag == LIFE_REALTIME_NS) {
			if (len != 8)
				return proto_fail(e, EBADMSG, "%s: field %u is %u bytes",
						  proto_type_name(f->type), tag, len);
			*(tag == LIFE_LEFT_NS ? &l->left_ns : &l->realtime_ns) = get_le64(v);
		} else {
			return proto_fail(e, EINVAL, "%s: unknown field %u", proto_type_name(f->type),
					  tag);
		}
	}
	return r;
}
