/* Unit tests for the file operations codec (vsock/proto_fs.c): round
 * trips of every request and reply, each rule of the request table, and
 * truncated, mutated and hostile frames (which must fail cleanly, never
 * crash or read past the payload). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util.h"
#include "vsock/proto_fs.h"
#include "tests/unit/codec.h"

/* A frame of type with a hand-made payload. */
static struct frame raw(uint16_t type, const void *p, size_t len)
{
	return (struct frame){ .type = type, .len = (uint32_t)len, .payload = p };
}

/* Appends one field to p at *n. */
static void add_field(uint8_t *p, size_t *n, uint16_t tag, const void *v, uint32_t len)
{
	put_le16(p + *n, tag);
	put_le32(p + *n + 2, len);
	memcpy(p + *n + 6, v, len);
	*n += 6 + len;
}

static int decode_raw(uint16_t type, const uint8_t *p, size_t n, struct proto_err *e)
{
	struct frame f = raw(type, p, n);
	struct fs_req r;
	int rc = proto_fs_req_decode(&f, &r, e);

	if (rc == 0)
		proto_fs_req_free(&r);
	return rc;
}

static void test_type_names(void **state)
{
	assert_string_equal(proto_fs_type_name(FT_FS_WRITE), "FS_WRITE");
	assert_string_equal(proto_fs_type_name(FT_FS_TREE_WRITE), "FS_TREE_WRITE");
	assert_string_equal(proto_fs_type_name(FT_FS_LOCK), "FS_LOCK");
	assert_string_equal(proto_fs_type_name(FT_FS_TREE_END), "FS_TREE_END");
	assert_string_equal(proto_fs_type_name(0x003f), "unknown");
	/* The shared codec routes the feature's ranges here. */
	assert_string_equal(proto_type_name(FT_FS_DATA), "FS_DATA");
	for (uint16_t t = FT_FS_WRITE; t <= FT_FS_LOCK; t++)
		assert_string_not_equal(proto_fs_type_name(t), "unknown");
}

static void test_write_round_trip(void **state)
{
	struct fs_req in = {
		.type = FT_FS_WRITE, .path = "/app/a file", .user = "nobody",
		.flags = FS_F_CREATE_NEW | FS_F_MKDIRS, .mode = 0640, .uid = 1000, .gid = 100,
		.atime = { -5, 7 }, .mtime = { 1700000000, FS_TIME_OMIT }, .size = 1ULL << 40,
		.have = FS_HAVE(FS_FLAGS) | FS_HAVE(FS_MODE) | FS_HAVE(FS_UID) | FS_HAVE(FS_GID) |
			FS_HAVE(FS_ATIME) | FS_HAVE(FS_MTIME) | FS_HAVE(FS_SIZE),
	};
	struct fs_req out;
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_fs_req_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(f.type, FT_FS_WRITE);
	assert_int_equal(proto_fs_req_decode(&f, &out, &e), 0);
	assert_string_equal(out.path, "/app/a file");
	assert_string_equal(out.user, "nobody");
	assert_null(out.path2);
	assert_int_equal(out.flags, FS_F_CREATE_NEW | FS_F_MKDIRS);
	assert_int_equal(out.mode, 0640);
	assert_int_equal(out.uid, 1000);
	assert_int_equal(out.gid, 100);
	assert_int_equal(out.atime.sec, -5);
	assert_int_equal(out.atime.nsec, 7);
	assert_int_equal(out.mtime.nsec, FS_TIME_OMIT);
	assert_int_equal(out.size, 1ULL << 40);
	assert_true(fs_req_has(&out, FS_SIZE));
	assert_false(fs_req_has(&out, FS_OFFSET));
	proto_fs_req_free(&out);
}

/* Every request type with its required fields decodes; each without one
 * of them is refused, naming the field. */
static void test_required_fields(void **state)
{
	static const struct {
		uint16_t type;
		uint32_t have;
		const char *missing;
	} cases[] = {
		{ FT_FS_READ, 0, "PATH" },
		{ FT_FS_RENAME, FS_HAVE(FS_PATH), "PATH2" },
		{ FT_FS_CHMOD, FS_HAVE(FS_PATH), "MODE" },
		{ FT_FS_SYMLINK, FS_HAVE(FS_PATH), "TARGET" },
		{ FT_FS_TRUNCATE, FS_HAVE(FS_PATH), "LENGTH" },
	};
	struct proto_err e;
	struct fs_req r, out;
	struct frame f;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&r, 0, sizeof(r));
		r.type = cases[i].type;
		r.have = cases[i].have & ~(FS_HAVE(FS_PATH) | FS_HAVE(FS_PATH2));
		if (cases[i].have & FS_HAVE(FS_PATH))
			r.path = "/x";
		buf_consume(&b, buf_len(&b));
		assert_int_equal(proto_fs_req_put(&b, &r), 0);
		one_frame(&f);
		assert_int_equal(proto_fs_req_decode(&f, &out, &e), -EINVAL);
		assert_non_null(strstr(e.msg, cases[i].missing));
		assert_non_null(strstr(e.msg, "missing"));
	}
	/* MKTEMP needs nothing at all. */
	memset(&r, 0, sizeof(r));
	r.type = FT_FS_MKTEMP;
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_fs_req_put(&b, &r), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_req_decode(&f, &out, &e), 0);
	proto_fs_req_free(&out);
}

static void test_path_rules(void **state)
{
	uint8_t p[8192], longpath[FS_PATH_MAX + 1];
	struct proto_err e;
	size_t n = 0;

	/* empty */
	add_field(p, &n, FS_PATH, "", 0);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	assert_string_equal(e.msg, "FS_STAT: the path is empty");
	/* an embedded NUL */
	n = 0;
	add_field(p, &n, FS_PATH, "/a\0b", 4);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	assert_string_equal(e.msg, "FS_STAT: the path contains a NUL byte");
	/* the longest path passes, one more byte does not */
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	n = 0;
	add_field(p, &n, FS_PATH, longpath, FS_PATH_MAX);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), 0);
	n = 0;
	add_field(p, &n, FS_PATH, longpath, FS_PATH_MAX + 1);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -ENAMETOOLONG);
	assert_non_null(strstr(e.msg, "4096 bytes long (at most 4095)"));
	/* PATH2 follows the same rules */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	add_field(p, &n, FS_PATH2, "", 0);
	assert_int_equal(decode_raw(FT_FS_RENAME, p, n, &e), -EINVAL);
}

static void test_field_rules(void **state)
{
	uint8_t p[512], v4[4], v8[8], t12[12];
	struct proto_err e;
	size_t n;

	/* a field this request does not take */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le64(v8, 1);
	add_field(p, &n, FS_OFFSET, v8, 8);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	assert_string_equal(e.msg, "FS_STAT: field OFFSET is not allowed");
	/* an unknown tag */
	n = 0;
	add_field(p, &n, 99, "x", 1);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	/* a field twice */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	add_field(p, &n, FS_PATH, "/b", 2);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "twice"));
	/* numbers of the wrong size */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	add_field(p, &n, FS_MODE, v8, 8);
	assert_int_equal(decode_raw(FT_FS_CHMOD, p, n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "expected 4"));
	/* a mode beyond 07777 */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le32(v4, 010000);
	add_field(p, &n, FS_MODE, v4, 4);
	assert_int_equal(decode_raw(FT_FS_CHMOD, p, n, &e), -EINVAL);
	/* uid -1 is not an id */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le32(v4, UINT32_MAX);
	add_field(p, &n, FS_UID, v4, 4);
	assert_int_equal(decode_raw(FT_FS_CHOWN, p, n, &e), -EINVAL);
	/* chown needs one of UID and GID */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	assert_int_equal(decode_raw(FT_FS_CHOWN, p, n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "neither UID nor GID"));
	/* times: nanoseconds in range, or NOW / OMIT */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le64(t12, 1);
	put_le32(t12 + 8, 1000000000u);
	add_field(p, &n, FS_MTIME, t12, 12);
	assert_int_equal(decode_raw(FT_FS_UTIMES, p, n, &e), -EINVAL);
	put_le32(p + n - 4, FS_TIME_NOW);
	assert_int_equal(decode_raw(FT_FS_UTIMES, p, n, &e), 0);
	/* a temporary name's prefix cannot hold a '/' */
	n = 0;
	add_field(p, &n, FS_PREFIX, "a/b", 3);
	assert_int_equal(decode_raw(FT_FS_MKTEMP, p, n, &e), -EINVAL);
	/* an offset beyond what off_t holds */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le64(v8, (uint64_t)INT64_MAX + 1);
	add_field(p, &n, FS_OFFSET, v8, 8);
	assert_int_equal(decode_raw(FT_FS_READ, p, n, &e), -EINVAL);
	/* a write takes an offset (in place at that offset) */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le64(v8, 4096);
	add_field(p, &n, FS_OFFSET, v8, 8);
	assert_int_equal(decode_raw(FT_FS_WRITE, p, n, &e), 0);
}

static void test_flag_rules(void **state)
{
	uint8_t p[64], v4[4];
	struct proto_err e;
	size_t n;

	/* RECURSIVE is for REMOVE, not STAT */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le32(v4, FS_F_RECURSIVE);
	add_field(p, &n, FS_FLAGS, v4, 4);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	assert_int_equal(decode_raw(FT_FS_REMOVE, p, n, &e), 0);
	/* undefined bits */
	put_le32(p + n - 4, 0x80000000u);
	assert_int_equal(decode_raw(FT_FS_WRITE, p, n, &e), -EINVAL);
	/* contradictions */
	put_le32(p + n - 4, FS_F_CREATE_NEW | FS_F_NO_CREATE);
	assert_int_equal(decode_raw(FT_FS_WRITE, p, n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "contradict"));
	put_le32(p + n - 4, FS_F_APPEND | FS_F_IN_PLACE);
	assert_int_equal(decode_raw(FT_FS_WRITE, p, n, &e), -EINVAL);
	put_le32(p + n - 4, FS_F_APPEND | FS_F_CREATE_NEW | FS_F_MKDIRS | FS_F_NO_VERIFY);
	assert_int_equal(decode_raw(FT_FS_WRITE, p, n, &e), 0);
}

/* LOCK: a path (required), a user, and only the EXCLUSIVE flag; the
 * flag means nothing to any other request. */
static void test_lock_request(void **state)
{
	struct fs_req in = { .type = FT_FS_LOCK, .path = "/tmp/f", .user = "app",
			     .flags = FS_F_EXCLUSIVE, .have = FS_HAVE(FS_FLAGS) };
	uint8_t p[64], v4[4];
	struct proto_err e;
	struct fs_req out;
	struct frame f;
	size_t n = 0;

	assert_int_equal(proto_fs_req_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_req_decode(&f, &out, &e), 0);
	assert_string_equal(out.path, "/tmp/f");
	assert_string_equal(out.user, "app");
	assert_int_equal(out.flags, FS_F_EXCLUSIVE);
	proto_fs_req_free(&out);
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le32(v4, FS_F_EXCLUSIVE);
	add_field(p, &n, FS_FLAGS, v4, 4);
	assert_int_equal(decode_raw(FT_FS_STAT, p, n, &e), -EINVAL);
	put_le32(p + n - 4, FS_F_RECURSIVE);
	assert_int_equal(decode_raw(FT_FS_LOCK, p, n, &e), -EINVAL);
	put_le32(p + n - 4, 0);
	assert_int_equal(decode_raw(FT_FS_LOCK, p, n, &e), 0);
	/* no path */
	assert_int_equal(decode_raw(FT_FS_LOCK, p + 8, n - 8, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "PATH"));
	/* a length is not a lock's */
	n = 0;
	add_field(p, &n, FS_PATH, "/a", 2);
	put_le64(p + 32, 5);
	add_field(p, &n, FS_LENGTH, p + 32, 8);
	assert_int_equal(decode_raw(FT_FS_LOCK, p, n, &e), -EINVAL);
}

static void test_unknown_request(void **state)
{
	struct proto_err e;

	assert_int_equal(decode_raw(0x003f, (const uint8_t *)"", 0, &e), -EOPNOTSUPP);
}

/* Every strict prefix of a good request: cut inside a field it is a
 * clean EBADMSG; cut between fields it is a shorter request, which
 * decodes or lacks a required field. */
static void test_truncated_requests(void **state)
{
	struct fs_req in = { .type = FT_FS_WRITE, .path = "/some/where", .user = "1000",
			     .mode = 0600, .have = FS_HAVE(FS_MODE) };
	bool boundary[256] = { false };
	struct field_iter it;
	struct proto_err e;
	struct frame f;
	const uint8_t *v;
	uint16_t tag;
	uint32_t vlen;

	assert_int_equal(proto_fs_req_put(&b, &in), 0);
	one_frame(&f);
	assert_true(f.len < sizeof(boundary));
	proto_fields(&it, &f);
	boundary[0] = true;
	while (proto_field_next(&it, &tag, &v, &vlen, NULL) > 0)
		boundary[f.len - it.left] = true;
	for (uint32_t len = 0; len < f.len; len++) {
		/* A copy of exactly len bytes, so ASan sees any overread. */
		uint8_t *p = malloc(len ? len : 1);
		int rc;

		memcpy(p, f.payload, len);
		rc = decode_raw(FT_FS_WRITE, p, len, &e);
		if (!boundary[len])
			assert_int_equal(rc, -EBADMSG);
		else if (len == 0)
			assert_int_equal(rc, -EINVAL); /* no PATH */
		else
			assert_int_equal(rc, 0);
		free(p);
	}
}

/* Random damage: decoding either succeeds or fails with a message. */
static void test_mutated_requests(void **state)
{
	struct fs_req in = {
		.type = FT_FS_TREE_WRITE, .path = "/dst", .user = "u", .flags = FS_F_MKDIRS,
		.uid = 1, .gid = 2, .have = FS_HAVE(FS_FLAGS) | FS_HAVE(FS_UID) | FS_HAVE(FS_GID),
	};
	struct proto_err e;
	struct frame f;
	uint32_t seed = 12345;

	assert_int_equal(proto_fs_req_put(&b, &in), 0);
	one_frame(&f);
	for (int i = 0; i < 20000; i++) {
		uint8_t *p = malloc(f.len);
		int flips = 1 + i % 4, rc;

		memcpy(p, f.payload, f.len);
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			p[(seed >> 8) % f.len] ^= (uint8_t)(1u << ((seed >> 4) & 7));
		}
		rc = decode_raw(FT_FS_TREE_WRITE, p, f.len, &e);
		if (rc < 0)
			assert_true(e.msg[0] != '\0');
		free(p);
	}
}

static void test_stat_record(void **state)
{
	struct fs_stat in = {
		.mode = 0100644, .uid = 1, .gid = 2, .size = 3, .nlink = 4, .ino = 5, .dev = 6,
		.rdev = 7, .blocks = 8, .atime = { 9, 10 }, .mtime = { -11, 12 },
		.ctime = { 13, 999999999 },
	}, out;
	uint8_t p[FS_STAT_LEN];
	struct proto_err e;

	proto_fs_stat_put(p, &in);
	assert_int_equal(proto_fs_stat_get(p, sizeof(p), &out, &e), 0);
	assert_int_equal(out.mode, in.mode);
	assert_int_equal(out.uid, in.uid);
	assert_int_equal(out.gid, in.gid);
	assert_int_equal(out.size, in.size);
	assert_int_equal(out.nlink, in.nlink);
	assert_int_equal(out.ino, in.ino);
	assert_int_equal(out.dev, in.dev);
	assert_int_equal(out.rdev, in.rdev);
	assert_int_equal(out.blocks, in.blocks);
	assert_int_equal(out.atime.sec, 9);
	assert_int_equal(out.atime.nsec, 10);
	assert_int_equal(out.mtime.sec, -11);
	assert_int_equal(out.ctime.nsec, 999999999);
	assert_int_equal(proto_fs_stat_get(p, sizeof(p) - 1, &out, &e), -EBADMSG);
	put_le32(p + 88 + 8, 1000000000u);
	assert_int_equal(proto_fs_stat_get(p, sizeof(p), &out, &e), -EBADMSG);
}

static void test_stat_ok(void **state)
{
	struct fs_stat in = { .mode = 0120777, .size = 6 }, out;
	char target[16];
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_fs_stat_ok_put(&b, &in, "target", 6), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_stat_ok_decode(&f, &out, target, sizeof(target), &e), 0);
	assert_string_equal(target, "target");
	assert_int_equal(out.mode, 0120777);
	/* a target that does not fit the caller's buffer is refused */
	assert_int_equal(proto_fs_stat_ok_decode(&f, &out, target, 4, &e), -EBADMSG);
	/* without the stat record */
	{
		uint8_t p[32];
		size_t n = 0;
		struct frame g;

		add_field(p, &n, FS_OK_TARGET, "x", 1);
		add_field(p, &n, 77, "newer", 5); /* unknown fields are skipped */
		g = raw(FT_FS_STAT_OK, p, n);
		assert_int_equal(proto_fs_stat_ok_decode(&g, &out, NULL, 0, &e), -EBADMSG);
	}
}

/* END carries the digest of the version: 32 bytes (BLAKE2b-256) in
 * version 1, 16 (XXH3-128) from version 2; the other length is refused. */
static void test_end(void **state)
{
	uint8_t digest[FS_DIGEST_LEN], got[FS_DIGEST_LEN];
	struct proto_err e;
	struct frame f;
	uint64_t count;
	bool has;

	assert_int_equal(proto_fs_digest_len(1), FS_DIGEST_BLAKE2B_LEN);
	assert_int_equal(proto_fs_digest_len(2), FS_DIGEST_XXH3_LEN);
	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)i;
	for (size_t dlen = FS_DIGEST_XXH3_LEN; dlen <= FS_DIGEST_BLAKE2B_LEN; dlen += 16) {
		size_t other = FS_DIGEST_XXH3_LEN + FS_DIGEST_BLAKE2B_LEN - dlen;

		buf_consume(&b, buf_len(&b));
		assert_int_equal(proto_fs_end_put(&b, 1ULL << 33, digest, dlen), 0);
		one_frame(&f);
		assert_int_equal(f.len, 8 + dlen);
		memset(got, 0, sizeof(got));
		assert_int_equal(proto_fs_end_decode(&f, dlen, &count, got, &has, &e), 0);
		assert_true(has);
		assert_int_equal(count, 1ULL << 33);
		assert_memory_equal(got, digest, dlen);
		assert_int_equal(proto_fs_end_decode(&f, other, &count, got, &has, &e), -EBADMSG);
		assert_int_equal(proto_fs_end_decode(&f, 0, &count, got, &has, &e), -EBADMSG);
	}
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_fs_end_put(&b, 0, NULL, FS_DIGEST_XXH3_LEN), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_end_decode(&f, FS_DIGEST_BLAKE2B_LEN, &count, got, &has, &e), 0);
	assert_false(has);
	assert_int_equal(proto_fs_end_decode(&f, FS_DIGEST_XXH3_LEN, &count, got, &has, &e), 0);
	assert_false(has);
	f.len = 9;
	assert_int_equal(proto_fs_end_decode(&f, FS_DIGEST_XXH3_LEN, &count, got, &has, &e),
			 -EBADMSG);
	f.type = FT_FS_DATA;
	assert_int_equal(proto_fs_end_decode(&f, FS_DIGEST_XXH3_LEN, &count, got, &has, &e),
			 -EPROTO);
}

static void test_path_ok(void **state)
{
	char out[8];
	struct proto_err e;
	struct frame f = raw(FT_FS_PATH_OK, "/tmp/x", 6);

	assert_int_equal(proto_fs_path_ok_decode(&f, out, sizeof(out), &e), 0);
	assert_string_equal(out, "/tmp/x");
	f = raw(FT_FS_PATH_OK, "/tmp/xyz", 8);
	assert_int_equal(proto_fs_path_ok_decode(&f, out, sizeof(out), &e), -EBADMSG);
	f = raw(FT_FS_PATH_OK, "/a\0b", 4);
	assert_int_equal(proto_fs_path_ok_decode(&f, out, sizeof(out), &e), -EBADMSG);
	f = raw(FT_FS_PATH_OK, "", 0);
	assert_int_equal(proto_fs_path_ok_decode(&f, out, sizeof(out), &e), -EBADMSG);
}

static void test_dirents(void **state)
{
	struct fs_stat st = { .mode = 040755, .size = 4096 };
	struct fs_dirent_iter it;
	struct fs_dirent d;
	struct proto_err e;
	struct frame f;
	size_t mark;
	int n = 0;

	for (int with = 0; with < 2; with++) {
		buf_consume(&b, buf_len(&b));
		assert_int_equal(proto_fs_dirents_begin(&b, with, &mark), 0);
		assert_int_equal(proto_fs_dirent_put(&b, "a", 1, 8, with ? &st : NULL), 0);
		assert_int_equal(proto_fs_dirent_put(&b, "new\nline", 8, 4, with ? &st : NULL), 0);
		assert_int_equal(proto_fs_dirent_put(&b, "", 0, 4, NULL), -EINVAL);
		assert_int_equal(proto_end(&b, mark), 0);
		one_frame(&f);
		assert_int_equal(proto_fs_dirents_iter(&it, &f, &e), 0);
		n = 0;
		while (proto_fs_dirent_next(&it, &d, &e) == 1) {
			assert_int_equal(d.has_stat, with);
			if (with)
				assert_int_equal(d.st.mode, 040755);
			n++;
		}
		assert_int_equal(n, 2);
		assert_string_equal(d.name, "new\nline");
		assert_int_equal(d.type, 4);
	}
	/* hostile names and truncations */
	{
		static const struct {
			const char *p;
			size_t len;
		} bad[] = {
			{ "\0\x01\x00\x08" ".", 5 },    /* "." */
			{ "\0\x02\x00\x08" "..", 6 },   /* ".." */
			{ "\0\x03\x00\x08" "a/b", 7 },  /* a slash */
			{ "\0\x02\x00\x08" "a\0", 6 },  /* a NUL */
			{ "\0\x00\x00\x08", 4 },       /* empty */
			{ "\0\x05\x00\x08" "ab", 6 },   /* longer than the frame */
			{ "\0\x01", 2 },             /* cut header */
		};

		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			struct frame g = raw(FT_FS_DIRENTS, bad[i].p, bad[i].len);

			assert_int_equal(proto_fs_dirents_iter(&it, &g, &e), 0);
			assert_int_equal(proto_fs_dirent_next(&it, &d, &e), -EBADMSG);
		}
	}
	f = raw(FT_FS_DIRENTS, "\x02", 1);
	assert_int_equal(proto_fs_dirents_iter(&it, &f, &e), -EBADMSG);
	f = raw(FT_FS_DIRENTS, "", 0);
	assert_int_equal(proto_fs_dirents_iter(&it, &f, &e), -EBADMSG);
}

static void test_relpath(void **state)
{
	static const char *const good[] = { "", "a", "a/b", "a b/ünï", ".hidden/..x", "a/...", "-" };
	static const char *const bad[] = { "/", "/a", "a/", "a//b", ".", "..", "a/./b",
					   "a/../b", "../a", "a/..", "./a" };
	struct proto_err e;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(proto_fs_relpath_check(good[i], strlen(good[i]), &e), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(proto_fs_relpath_check(bad[i], strlen(bad[i]), &e), -EINVAL);
	assert_int_equal(proto_fs_relpath_check("a\0b", 3, &e), -EINVAL);
	{
		char name[300];

		memset(name, 'x', sizeof(name));
		assert_int_equal(proto_fs_relpath_check(name, 256, &e), -EINVAL);
		assert_int_equal(proto_fs_relpath_check(name, 255, &e), 0);
	}
}

static void test_entry(void **state)
{
	struct fs_stat st = { .mode = 0120777, .mtime = { 5, 6 } };
	struct fs_entry *en = malloc(sizeof(*en));
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_fs_entry_put(&b, "dir/link", &st, "../target"), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_entry_decode(&f, en, &e), 0);
	assert_string_equal(en->path, "dir/link");
	assert_string_equal(en->target, "../target");
	assert_int_equal(en->st.mtime.nsec, 6);
	/* a link without a target */
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_fs_entry_put(&b, "l", &st, NULL), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_entry_decode(&f, en, &e), -EINVAL);
	/* paths that would leave the tree */
	buf_consume(&b, buf_len(&b));
	st.mode = 0100644;
	assert_int_equal(proto_fs_entry_put(&b, "../../etc/passwd", &st, NULL), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_entry_decode(&f, en, &e), -EINVAL);
	buf_consume(&b, buf_len(&b));
	assert_int_equal(proto_fs_entry_put(&b, "/etc/passwd", &st, NULL), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_entry_decode(&f, en, &e), -EINVAL);
	/* no STAT */
	{
		uint8_t p[16];
		size_t n = 0;
		struct frame g;

		add_field(p, &n, FS_ENTRY_PATH, "a", 1);
		g = raw(FT_FS_ENTRY, p, n);
		assert_int_equal(proto_fs_entry_decode(&g, en, &e), -EINVAL);
	}
	free(en);
}

static void test_tree_end(void **state)
{
	struct fs_tree_end in = { 1, 2, 3 }, out;
	struct proto_err e;
	struct frame f;

	assert_int_equal(proto_fs_tree_end_put(&b, &in), 0);
	one_frame(&f);
	assert_int_equal(proto_fs_tree_end_decode(&f, &out, &e), 0);
	assert_memory_equal(&in, &out, sizeof(in));
	f.len--;
	assert_int_equal(proto_fs_tree_end_decode(&f, &out, &e), -EBADMSG);
}

static void test_wording(void **state)
{
	char buf[64];

	assert_string_equal(proto_fs_strerror(ENOENT, buf, sizeof(buf)), "no such file or directory");
	assert_string_equal(proto_fs_strerror(-EACCES, buf, sizeof(buf)), "permission denied");
	assert_string_equal(proto_fs_strerror(EISDIR, buf, sizeof(buf)), "is a directory");
	assert_string_equal(proto_fs_strerror(ENOTDIR, buf, sizeof(buf)), "not a directory");
	assert_string_equal(proto_fs_strerror(EEXIST, buf, sizeof(buf)), "file exists");
	assert_string_equal(proto_fs_strerror(ENOSPC, buf, sizeof(buf)), "no space left on device");
	assert_string_equal(proto_fs_strerror(ELOOP, buf, sizeof(buf)),
			    "too many levels of symbolic links");
	/* others: strerror, lower case */
	proto_fs_strerror(ESRCH, buf, sizeof(buf));
	assert_true(buf[0] >= 'a' && buf[0] <= 'z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_type_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_required_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_field_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mutated_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relpath, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tree_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wording, setup, teardown),
	};

	return cmocka_run_group_tests_name("fs codec", tests, NULL, NULL);
}
