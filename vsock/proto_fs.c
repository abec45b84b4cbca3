/* Codec for the file operations (docs/protocol/files.md). One request
 * decoder driven by a table of what each request accepts, so every
 * operation checks its input the same way; encoders for the replies and
 * streams; the relative-path rule for trees, which both ends enforce. */
#include "vsock/proto_fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const struct {
	uint16_t type;
	const char *name;
} names[] = {
	{ FT_FS_WRITE, "FS_WRITE" },
	{ FT_FS_READ, "FS_READ" },
	{ FT_FS_STAT, "FS_STAT" },
	{ FT_FS_READDIR, "FS_READDIR" },
	{ FT_FS_MKDIR, "FS_MKDIR" },
	{ FT_FS_REMOVE, "FS_REMOVE" },
	{ FT_FS_RENAME, "FS_RENAME" },
	{ FT_FS_COPY, "FS_COPY" },
	{ FT_FS_CHMOD, "FS_CHMOD" },
	{ FT_FS_CHOWN, "FS_CHOWN" },
	{ FT_FS_SYMLINK, "FS_SYMLINK" },
	{ FT_FS_LINK, "FS_LINK" },
	{ FT_FS_READLINK, "FS_READLINK" },
	{ FT_FS_REALPATH, "FS_REALPATH" },
	{ FT_FS_TRUNCATE, "FS_TRUNCATE" },
	{ FT_FS_UTIMES, "FS_UTIMES" },
	{ FT_FS_MKTEMP, "FS_MKTEMP" },
	{ FT_FS_TREE_READ, "FS_TREE_READ" },
	{ FT_FS_TREE_WRITE, "FS_TREE_WRITE" },
	{ FT_FS_LOCK, "FS_LOCK" },
	{ FT_FS_DATA, "FS_DATA" },
	{ FT_FS_END, "FS_END" },
	{ FT_FS_STAT_OK, "FS_STAT_OK" },
	{ FT_FS_PATH_OK, "FS_PATH_OK" },
	{ FT_FS_DIRENTS, "FS_DIRENTS" },
	{ FT_FS_ENTRY, "FS_ENTRY" },
	{ FT_FS_TREE_END, "FS_TREE_END" },
};

const char *proto_fs_type_name(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].type == type)
			return names[i].name;
	return "unknown";
}

/* ---- requests ---- */

#define H(tag) FS_HAVE(tag)
#define COMMON (H(FS_PATH) | H(FS_USER) | H(FS_FLAGS))

/* What each request accepts and needs. */
static const struct req_rule {
	uint16_t type;
	uint32_t allowed;
	uint32_t required;
	uint32_t flags;
} rules[] = {
	{ FT_FS_WRITE, COMMON | H(FS_MODE) | H(FS_UID) | H(FS_GID) | H(FS_ATIME) | H(FS_MTIME) | H(FS_SIZE) |
			      H(FS_OFFSET),
	  H(FS_PATH),
	  FS_F_CREATE_NEW | FS_F_NO_CREATE | FS_F_APPEND | FS_F_IN_PLACE | FS_F_MKDIRS | FS_F_NO_VERIFY },
	{ FT_FS_READ, COMMON | H(FS_OFFSET) | H(FS_LENGTH), H(FS_PATH), FS_F_NO_VERIFY | FS_F_NOFOLLOW },
	{ FT_FS_STAT, COMMON, H(FS_PATH), FS_F_NOFOLLOW },
	{ FT_FS_READDIR, COMMON, H(FS_PATH), FS_F_STAT },
	{ FT_FS_MKDIR, COMMON | H(FS_MODE), H(FS_PATH), FS_F_MKDIRS },
	{ FT_FS_REMOVE, COMMON, H(FS_PATH), FS_F_RECURSIVE },
	{ FT_FS_RENAME, COMMON | H(FS_PATH2), H(FS_PATH) | H(FS_PATH2), FS_F_CREATE_NEW | FS_F_MKDIRS },
	{ FT_FS_COPY, COMMON | H(FS_PATH2), H(FS_PATH) | H(FS_PATH2), FS_F_CREATE_NEW | FS_F_MKDIRS },
	{ FT_FS_CHMOD, COMMON | H(FS_MODE), H(FS_PATH) | H(FS_MODE), 0 },
	{ FT_FS_CHOWN, COMMON | H(FS_UID) | H(FS_GID), H(FS_PATH), FS_F_NOFOLLOW },
	{ FT_FS_SYMLINK, COMMON | H(FS_TARGET), H(FS_PATH) | H(FS_TARGET), FS_F_MKDIRS },
	{ FT_FS_LINK, COMMON | H(FS_PATH2), H(FS_PATH) | H(FS_PATH2), FS_F_MKDIRS },
	{ FT_FS_READLINK, COMMON, H(FS_PATH), 0 },
	{ FT_FS_REALPATH, COMMON, H(FS_PATH), 0 },
	{ FT_FS_TRUNCATE, COMMON | H(FS_LENGTH), H(FS_PATH) | H(FS_LENGTH), 0 },
	{ FT_FS_UTIMES, COMMON | H(FS_ATIME) | H(FS_MTIME), H(FS_PATH), FS_F_NOFOLLOW },
	{ FT_FS_MKTEMP, COMMON | H(FS_PREFIX) | H(FS_SUFFIX) | H(FS_MODE), 0, FS_F_DIRECTORY },
	{ FT_FS_TREE_READ, COMMON, H(FS_PATH), FS_F_NO_VERIFY | FS_F_NOFOLLOW },
	{ FT_FS_TREE_WRITE, COMMON | H(FS_UID) | H(FS_GID), H(FS_PATH),
	  FS_F_CREATE_NEW | FS_F_MKDIRS | FS_F_NO_VERIFY },
	{ FT_FS_LOCK, COMMON, H(FS_PATH), FS_F_EXCLUSIVE },
};

static const char *const field_names[] = {
	[FS_PATH] = "PATH",	[FS_PATH2] = "PATH2",	[FS_USER] = "USER",
	[FS_FLAGS] = "FLAGS",	[FS_MODE] = "MODE",	[FS_UID] = "UID",
	[FS_GID] = "GID",	[FS_OFFSET] = "OFFSET", [FS_LENGTH] = "LENGTH",
	[FS_ATIME] = "ATIME",	[FS_MTIME] = "MTIME",	[FS_TARGET] = "TARGET",
	[FS_PREFIX] = "PREFIX", [FS_SUFFIX] = "SUFFIX", [FS_SIZE] = "SIZE",
};

static const struct req_rule *rule_for(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
		if (rules[i].type == type)
			return &rules[i];
	return NULL;
}

static bool is_string(uint16_t tag)
{
	return tag == FS_PATH || tag == FS_PATH2 || tag == FS_USER || tag == FS_TARGET ||
	       tag == FS_PREFIX || tag == FS_SUFFIX;
}

static char **string_slot(struct fs_req *r, uint16_t tag)
{
	switch (tag) {
	case FS_PATH:
		return &r->path;
	case FS_PATH2:
		return &r->path2;
	case FS_USER:
		return &r->user;
	case FS_TARGET:
		return &r->target;
	case FS_PREFIX:
		return &r->prefix;
	case FS_SUFFIX:
		return &r->suffix;
	}
	return NULL;
}

static void time_put(uint8_t p[FS_TIME_LEN], const struct fs_time *t)
{
	put_le64(p, (uint64_t)t->sec);
	put_le32(p + 8, t->nsec);
}

static void time_get(const uint8_t *p, struct fs_time *t)
{
	t->sec = (int64_t)get_le64(p);
	t->nsec = get_le32(p + 8);
}

static bool time_ok(const struct fs_time *t)
{
	return t->nsec < 1000000000u || t->nsec == FS_TIME_NOW || t->nsec == FS_TIME_OMIT;
}

int proto_fs_req_put(struct buf *b, const struct fs_req *r)
{
	uint8_t t[FS_TIME_LEN];
	size_t mark;
	int rc;

	if ((rc = proto_begin(b, r->type, &mark)) < 0)
		return rc;
	for (uint16_t tag = 1; rc == 0 && tag <= FS_FIELD_MAX; tag++) {
		char *const *s = string_slot((struct fs_req *)r, tag);

		if (s) {
			if (*s)
				rc = proto_field_put_str(b, tag, *s);
			continue;
		}
		if (!fs_req_has(r, tag))
			continue;
		switch (tag) {
		case FS_FLAGS:
			rc = proto_field_put_u32(b, tag, r->flags);
			break;
		case FS_MODE:
			rc = proto_field_put_u32(b, tag, r->mode);
			break;
		case FS_UID:
			rc = proto_field_put_u32(b, tag, r->uid);
			break;
		case FS_GID:
			rc = proto_field_put_u32(b, tag, r->gid);
			break;
		case FS_OFFSET:
			rc = proto_field_put_u64(b, tag, r->offset);
			break;
		case FS_LENGTH:
			rc = proto_field_put_u64(b, tag, r->length);
			break;
		case FS_SIZE:
			rc = proto_field_put_u64(b, tag, r->size);
			break;
		case FS_ATIME:
		case FS_MTIME:
			time_put(t, tag == FS_ATIME ? &r->atime : &r->mtime);
			rc = proto_field_put(b, tag, t, sizeof(t));
			break;
		}
	}
	return rc < 0 ? rc : proto_end(b, mark);
}

/* Checks one string field; the limits depend on what it names. */
static int check_string(const char *op, uint16_t tag, const uint8_t *v, uint32_t len,
			struct proto_err *e)
{
	const char *what = field_names[tag];
	size_t max = FS_PATH_MAX;

	if (tag == FS_USER)
		max = FS_USER_MAX;
	else if (tag == FS_PREFIX || tag == FS_SUFFIX)
		max = FS_AFFIX_MAX;
	if (len == 0 && tag != FS_PREFIX && tag != FS_SUFFIX)
		return proto_fail(e, EINVAL, "%s: %s is empty", op,
				  tag == FS_PATH || tag == FS_PATH2 ? "the path" : what);
	if (memchr(v, '\0', len))
		return proto_fail(e, EINVAL, "%s: %s contains a NUL byte", op,
				  tag == FS_PATH || tag == FS_PATH2 ? "the path" : what);
	if (len > max)
		return proto_fail(e, ENAMETOOLONG, "%s: %s is %u bytes long (at most %zu)", op,
				  tag == FS_PATH || tag == FS_PATH2 ? "the path" : what, len, max);
	if ((tag == FS_PREFIX || tag == FS_SUFFIX) && memchr(v, '/', len))
		return proto_fail(e, EINVAL, "%s: %s contains a '/'", op, what);
	return 0;
}

static int check_number(const char *op, uint16_t tag, const uint8_t *v, uint32_t len,
			struct fs_req *r, struct proto_err *e)
{
	size_t want = tag == FS_ATIME || tag == FS_MTIME ? FS_TIME_LEN :
		      tag == FS_OFFSET || tag == FS_LENGTH || tag == FS_SIZE ? 8 : 4;

	if (len != want)
		return proto_fail(e, EINVAL, "%s: field %s is %u bytes, expected %zu", op,
				  field_names[tag], len, want);
	switch (tag) {
	case FS_FLAGS:
		r->flags = get_le32(v);
		break;
	case FS_MODE:
		r->mode = get_le32(v);
		if (r->mode & ~07777u)
			return proto_fail(e, EINVAL, "%s: mode 0%o has bits beyond 07777", op,
					  r->mode);
		break;
	case FS_UID:
	case FS_GID:
		*(tag == FS_UID ? &r->uid : &r->gid) = get_le32(v);
		if (get_le32(v) == UINT32_MAX)
			return proto_fail(e, EINVAL, "%s: %s 4294967295 is not a valid id", op,
					  field_names[tag]);
		break;
	case FS_OFFSET:
		r->offset = get_le64(v);
		if (r->offset > INT64_MAX)
			return proto_fail(e, EINVAL, "%s: offset %llu is too large", op,
					  (unsigned long long)r->offset);
		break;
	case FS_LENGTH:
		r->length = get_le64(v);
		if (r->length > INT64_MAX)
			return proto_fail(e, EINVAL, "%s: length %llu is too large", op,
					  (unsigned long long)r->length);
		break;
	case FS_SIZE:
		r->size = get_le64(v);
		break;
	case FS_ATIME:
	case FS_MTIME: {
		struct fs_time *t = tag == FS_ATIME ? &r->atime : &r->mtime;

		time_get(v, t);
		if (!time_ok(t))
			return proto_fail(e, EINVAL, "%s: %s has %u nanoseconds", op,
					  field_names[tag], t->nsec);
		break;
	}
	}
	return 0;
}

static int check_flags(const char *op, const struct req_rule *rule, struct fs_req *r,
		       struct proto_err *e)
{
	uint32_t f = r->flags;

	if (f & ~rule->flags)
		return proto_fail(e, EINVAL, "%s: flags 0x%x are not allowed here", op,
				  f & ~rule->flags);
	if ((f & FS_F_CREATE_NEW) && (f & FS_F_NO_CREATE))
		return proto_fail(e, EINVAL, "%s: CREATE_NEW and NO_CREATE contradict each other",
				  op);
	if ((f & FS_F_APPEND) && (f & FS_F_IN_PLACE))
		return proto_fail(e, EINVAL, "%s: APPEND and IN_PLACE contradict each other", op);
	if (r->type == FT_FS_CHOWN && !fs_req_has(r, FS_UID) && !fs_req_has(r, FS_GID))
		return proto_fail(e, EINVAL, "%s: neither UID nor GID given", op);
	return 0;
}

int proto_fs_req_decode(const struct frame *f, struct fs_req *r, struct proto_err *e)
{
	const struct req_rule *rule = rule_for(f->type);
	const char *op = proto_fs_type_name(f->type);
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	size_t strbytes = 0;
	char *arena;
	int rc;

	memset(r, 0, sizeof(*r));
	r->type = f->type;
	if (!rule)
		return proto_fail(e, EOPNOTSUPP, "unknown file operation 0x%04x", f->type);
	/* Pass 1: check everything, so one allocation bounded by the frame
	 * size holds the strings. */
	proto_fields(&it, f);
	while ((rc = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag < 1 || tag > FS_FIELD_MAX || !(rule->allowed & H(tag)))
			return proto_fail(e, EINVAL, "%s: field %s is not allowed", op,
					  tag >= 1 && tag <= FS_FIELD_MAX ? field_names[tag] : "unknown");
		if (r->have & H(tag))
			return proto_fail(e, EINVAL, "%s: field %s given twice", op, field_names[tag]);
		r->have |= H(tag);
		if (is_string(tag)) {
			if ((rc = check_string(op, tag, v, len, e)) < 0)
				return rc;
			strbytes += len + 1;
		} else if ((rc = check_number(op, tag, v, len, r, e)) < 0) {
			return rc;
		}
	}
	if (rc < 0)
		return rc;
	if ((rule->required & r->have) != rule->required) {
		uint32_t missing = rule->required & ~r->have;

		for (tag = 1; !(missing & H(tag)); tag++)
			;
		return proto_fail(e, EINVAL, "%s: field %s is missing", op, field_names[tag]);
	}
	if ((rc = check_flags(op, rule, r, e)) < 0)
		return rc;
	if (strbytes == 0)
		return 0;
	r->mem = malloc(strbytes);
	if (!r->mem)
		return proto_fail(e, ENOMEM, "%s: out of memory decoding %u bytes", op, f->len);
	arena = r->mem;
	/* Pass 2: copy out the strings; the frame was checked above. */
	proto_fields(&it, f);
	while (proto_field_next(&it, &tag, &v, &len, NULL) > 0) {
		char **slot = string_slot(r, tag);

		if (!slot)
			continue;
		memcpy(arena, v, len);
		arena[len] = '\0';
		*slot = arena;
		arena += len + 1;
	}
	return 0;
}

void proto_fs_req_free(struct fs_req *r)
{
	free(r->mem);
	memset(r, 0, sizeof(*r));
}

/* ---- stat record ---- */

void proto_fs_stat_put(uint8_t p[FS_STAT_LEN], const struct fs_stat *st)
{
	put_le32(p, st->mode);
	put_le32(p + 4, st->uid);
	put_le32(p + 8, st->gid);
	put_le32(p + 12, 0); /* reserved */
	put_le64(p + 16, st->size);
	put_le64(p + 24, st->nlink);
	put_le64(p + 32, st->ino);
	put_le64(p + 40, st->dev);
	put_le64(p + 48, st->rdev);
	put_le64(p + 56, st->blocks);
	time_put(p + 64, &st->atime);
	time_put(p + 76, &st->mtime);
	time_put(p + 88, &st->ctime);
}

int proto_fs_stat_get(const uint8_t *p, size_t len, struct fs_stat *st, struct proto_err *e)
{
	if (len != FS_STAT_LEN)
		return proto_fail(e, EBADMSG, "stat record is %zu bytes, expected %d", len,
				  FS_STAT_LEN);
	st->mode = get_le32(p);
	st->uid = get_le32(p + 4);
	st->gid = get_le32(p + 8);
	st->size = get_le64(p + 16);
	st->nlink = get_le64(p + 24);
	st->ino = get_le64(p + 32);
	st->dev = get_le64(p + 40);
	st->rdev = get_le64(p + 48);
	st->blocks = get_le64(p + 56);
	time_get(p + 64, &st->atime);
	time_get(p + 76, &st->mtime);
	time_get(p + 88, &st->ctime);
	if (st->atime.nsec >= 1000000000u || st->mtime.nsec >= 1000000000u ||
	    st->ctime.nsec >= 1000000000u)
		return proto_fail(e, EBADMSG, "stat record has a time with too many nanoseconds");
	return 0;
}

int proto_fs_stat_ok_put(struct buf *b, const struct fs_stat *st, const char *target,
			 size_t target_len)
{
	uint8_t p[FS_STAT_LEN];
	size_t mark;
	int r;

	proto_fs_stat_put(p, st);
	if ((r = proto_begin(b, FT_FS_STAT_OK, &mark)) < 0 ||
	    (r = proto_field_put(b, FS_OK_STAT, p, sizeof(p))) < 0)
		return r;
	if (target && (r = proto_field_put(b, FS_OK_TARGET, target, target_len)) < 0)
		return r;
	return proto_end(b, mark);
}

/* Copies a string field out, refusing NUL bytes and what does not fit. */
static int str_field(const char *what, const uint8_t *v, uint32_t len, char *out, size_t n,
		     struct proto_err *e)
{
	if (memchr(v, '\0', len))
		return proto_fail(e, EBADMSG, "%s contains a NUL byte", what);
	if (len >= n)
		return proto_fail(e, EBADMSG, "%s is %u bytes long (at most %zu)", what, len, n - 1);
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

int proto_fs_stat_ok_decode(const struct frame *f, struct fs_stat *st, char *target,
			    size_t target_size, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	bool have_stat = false;
	int r;

	if (f->type != FT_FS_STAT_OK)
		return proto_fail(e, EPROTO, "expected FS_STAT_OK, got %s", proto_type_name(f->type));
	if (target && target_size)
		target[0] = '\0';
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag == FS_OK_STAT) {
			if ((r = proto_fs_stat_get(v, len, st, e)) < 0)
				return r;
			have_stat = true;
		} else if (tag == FS_OK_TARGET && target && target_size) {
			if ((r = str_field("FS_STAT_OK: TARGET", v, len, target, target_size, e)) < 0)
				return r;
		}
		/* other fields: newer agents may add them */
	}
	if (r < 0)
		return r;
	if (!have_stat)
		return proto_fail(e, EBADMSG, "FS_STAT_OK without a stat record");
	return 0;
}

/* ---- END ---- */

size_t proto_fs_digest_len(uint16_t version)
{
	return version >= 2 ? FS_DIGEST_XXH3_LEN : FS_DIGEST_BLAKE2B_LEN;
}

int proto_fs_end_put(struct buf *b, uint64_t count, const uint8_t *digest, size_t dlen)
{
	uint8_t p[8 + FS_DIGEST_LEN];

	if (digest && dlen > FS_DIGEST_LEN)
		return -EINVAL;
	put_le64(p, count);
	if (digest)
		memcpy(p + 8, digest, dlen);
	return proto_put(b, FT_FS_END, p, digest ? 8 + dlen : 8);
}

int proto_fs_end_decode(const struct frame *f, size_t dlen, uint64_t *count, uint8_t *digest,
			bool *has_digest, struct proto_err *e)
{
	if (f->type != FT_FS_END)
		return proto_fail(e, EPROTO, "expected FS_END, got %s", proto_type_name(f->type));
	if (dlen > FS_DIGEST_LEN || (f->len != 8 && f->len != 8 + dlen))
		return proto_fail(e, EBADMSG, "FS_END payload is %u bytes, expected 8 or %zu",
				  f->len, 8 + dlen);
	*count = get_le64(f->payload);
	*has_digest = f->len > 8;
	if (digest && *has_digest)
		memcpy(digest, f->payload + 8, dlen);
	return 0;
}

int proto_fs_path_ok_decode(const struct frame *f, char *out, size_t n, struct proto_err *e)
{
	if (f->type != FT_FS_PATH_OK)
		return proto_fail(e, EPROTO, "expected FS_PATH_OK, got %s", proto_type_name(f->type));
	if (f->len == 0 || f->len > FS_PATH_MAX)
		return proto_fail(e, EBADMSG, "FS_PATH_OK payload of %u bytes is out of range",
				  f->len);
	return str_field("FS_PATH_OK", f->payload, f->len, out, n, e);
}

/* ---- DIRENTS ---- */

int proto_fs_dirents_begin(struct buf *b, bool with_stat, size_t *mark)
{
	uint8_t flags = with_stat ? FS_DIRENTS_F_STAT : 0;
	int r = proto_begin(b, FT_FS_DIRENTS, mark);

	return r < 0 ? r : buf_append(b, &flags, 1);
}

size_t proto_fs_dirent_len(size_t namelen, bool with_stat)
{
	return 3 + namelen + (with_stat ? FS_STAT_LEN : 0);
}

int proto_fs_dirent_put(struct buf *b, const char *name, size_t namelen, uint8_t type,
			const struct fs_stat *st)
{
	int r;

	if (namelen == 0 || namelen > FS_NAME_MAX)
		return -EINVAL;
	r = buf_reserve(b, proto_fs_dirent_len(namelen, st != NULL));
	if (r < 0)
		return r;
	put_le16(buf_tail(b), (uint16_t)namelen);
	buf_tail(b)[2] = type;
	memcpy(buf_tail(b) + 3, name, namelen);
	if (st)
		proto_fs_stat_put(buf_tail(b) + 3 + namelen, st);
	buf_commit(b, proto_fs_dirent_len(namelen, st != NULL));
	return 0;
}

int proto_fs_dirents_iter(struct fs_dirent_iter *it, const struct frame *f, struct proto_err *e)
{
	if (f->type != FT_FS_DIRENTS)
		return proto_fail(e, EPROTO, "expected FS_DIRENTS, got %s", proto_type_name(f->type));
	if (f->len < 1)
		return proto_fail(e, EBADMSG, "FS_DIRENTS is empty");
	if (f->payload[0] & ~FS_DIRENTS_F_STAT)
		return proto_fail(e, EBADMSG, "FS_DIRENTS has unknown flags 0x%x", f->payload[0]);
	it->with_stat = f->payload[0] & FS_DIRENTS_F_STAT;
	it->p = f->payload + 1;
	it->left = f->len - 1;
	return 0;
}

static bool name_ok(const uint8_t *p, size_t len)
{
	if (len == 0 || len > FS_NAME_MAX || memchr(p, '\0', len) || memchr(p, '/', len))
		return false;
	return !(len == 1 && p[0] == '.') && !(len == 2 && p[0] == '.' && p[1] == '.');
}

int proto_fs_dirent_next(struct fs_dirent_iter *it, struct fs_dirent *d, struct proto_err *e)
{
	size_t len, need;
	int r;

	if (it->left == 0)
		return 0;
	if (it->left < 3)
		return proto_fail(e, EBADMSG, "FS_DIRENTS: %zu trailing bytes", it->left);
	len = get_le16(it->p);
	need = proto_fs_dirent_len(len, it->with_stat);
	if (need > it->left)
		return proto_fail(e, EBADMSG, "FS_DIRENTS: an entry of %zu bytes but %zu remain",
				  need, it->left);
	if (!name_ok(it->p + 3, len))
		return proto_fail(e, EBADMSG, "FS_DIRENTS: an entry has an invalid name");
	d->type = it->p[2];
	memcpy(d->name, it->p + 3, len);
	d->name[len] = '\0';
	d->has_stat = it->with_stat;
	if (it->with_stat && (r = proto_fs_stat_get(it->p + 3 + len, FS_STAT_LEN, &d->st, e)) < 0)
		return r;
	it->p += need;
	it->left -= need;
	return 1;
}

/* ---- error wording ---- */

static const struct {
	int code;
	const char *text;
} wording[] = {
	{ ENOENT, "no such file or directory" },
	{ EACCES, "permission denied" },
	{ EPERM, "operation not permitted" },
	{ EISDIR, "is a directory" },
	{ ENOTDIR, "not a directory" },
	{ EEXIST, "file exists" },
	{ ENOSPC, "no space left on device" },
	{ EDQUOT, "disk quota exceeded" },
	{ ELOOP, "too many levels of symbolic links" },
	{ ENAMETOOLONG, "file name too long" },
	{ ENOTEMPTY, "directory not empty" },
	{ EROFS, "read-only file system" },
	{ EXDEV, "not on the same file system" },
	{ EIO, "input/output error" },
	{ EBUSY, "device or resource busy" },
	{ ETXTBSY, "text file busy" },
	{ EMLINK, "too many links" },
	{ EFBIG, "file too large" },
	{ EINVAL, "invalid argument" },
	{ EMFILE, "too many open files" },
	{ ENFILE, "too many open files in the system" },
	{ ENOMEM, "out of memory" },
	{ EBADMSG, "bad message" },
	{ EPROTO, "protocol error" },
};

const char *proto_fs_strerror(int err, char *buf, size_t n)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < ARRAY_SIZE(wording); i++)
		if (wording[i].code == err) {
			str_copy(buf, n, wording[i].text);
			return buf;
		}
	str_copy(buf, n, strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* ---- trees ---- */

int proto_fs_relpath_check(const char *p, size_t len, struct proto_err *e)
{
	size_t start = 0;

	if (len == 0)
		return 0;
	if (len > FS_PATH_MAX)
		return proto_fail(e, ENAMETOOLONG, "tree entry path is %zu bytes long (at most %d)",
				  len, FS_PATH_MAX);
	if (memchr(p, '\0', len))
		return proto_fail(e, EINVAL, "tree entry path contains a NUL byte");
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		if (!name_ok((const uint8_t *)p + start, i - start))
			return proto_fail(e, EINVAL,
					  "tree entry path '%.*s' is not a plain relative path",
					  (int)MIN(len, 256), p);
		start = i + 1;
	}
	return 0;
}

int proto_fs_entry_put(struct buf *b, const char *path, const struct fs_stat *st,
		       const char *target)
{
	uint8_t p[FS_STAT_LEN];
	size_t mark;
	int r;

	proto_fs_stat_put(p, st);
	if ((r = proto_begin(b, FT_FS_ENTRY, &mark)) < 0 ||
	    (r = proto_field_put_str(b, FS_ENTRY_PATH, path)) < 0 ||
	    (r = proto_field_put(b, FS_ENTRY_STAT, p, sizeof(p))) < 0)
		return r;
	if (target && (r = proto_field_put_str(b, FS_ENTRY_TARGET, target)) < 0)
		return r;
	return proto_end(b, mark);
}

int proto_fs_entry_decode(const struct frame *f, struct fs_entry *en, struct proto_err *e)
{
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	unsigned seen = 0;
	int r;

	if (f->type != FT_FS_ENTRY)
		return proto_fail(e, EPROTO, "expected FS_ENTRY, got %s", proto_type_name(f->type));
	en->path[0] = en->target[0] = '\0';
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, e)) > 0) {
		if (tag < FS_ENTRY_PATH || tag > FS_ENTRY_TARGET)
			return proto_fail(e, EINVAL, "FS_ENTRY: unknown field %u", tag);
		if (seen & (1u << tag))
			return proto_fail(e, EINVAL, "FS_ENTRY: field %u given twice", tag);
		seen |= 1u << tag;
		switch (tag) {
		case FS_ENTRY_PATH:
			if ((r = proto_fs_relpath_check((const char *)v, len, e)) < 0)
				return r;
			memcpy(en->path, v, len);
			en->path[len] = '\0';
			break;
		case FS_ENTRY_STAT:
			if ((r = proto_fs_stat_get(v, len, &en->st, e)) < 0)
				return r;
			break;
		case FS_ENTRY_TARGET:
			if (len == 0)
				return proto_fail(e, EINVAL, "FS_ENTRY: empty symbolic link target");
			if ((r = str_field("FS_ENTRY: TARGET", v, len, en->target,
					   sizeof(en->target), e)) < 0)
				return r;
			break;
		}
	}
	if (r < 0)
		return r;
	if (!(seen & (1u << FS_ENTRY_PATH)) || !(seen & (1u << FS_ENTRY_STAT)))
		return proto_fail(e, EINVAL, "FS_ENTRY: PATH or STAT is missing");
	if ((en->st.mode & 0170000) == 0120000 && !en->target[0])
		return proto_fail(e, EINVAL, "FS_ENTRY: symbolic link '%s' without a target",
				  en->path);
	return 0;
}

int proto_fs_tree_end_put(struct buf *b, const struct fs_tree_end *t)
{
	uint8_t p[FS_TREE_END_LEN];

	put_le64(p, t->entries);
	put_le64(p + 8, t->bytes);
	put_le64(p + 16, t->skipped);
	return proto_put(b, FT_FS_TREE_END, p, sizeof(p));
}

int proto_fs_tree_end_decode(const struct frame *f, struct fs_tree_end *t, struct proto_err *e)
{
	int r;

	if (f->type != FT_FS_TREE_END)
		return proto_fail(e, EPROTO, "expected FS_TREE_END, got %s",
				  proto_type_name(f->type));
	if ((r = proto_want_len(f, FS_TREE_END_LEN, e)) < 0)
		return r;
	t->entries = get_le64(f->payload);
	t->bytes = get_le64(f->payload + 8);
	t->skipped = get_le64(f->payload + 16);
	return 0;
}
