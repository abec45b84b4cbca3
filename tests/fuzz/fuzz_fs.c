/* libFuzzer target: the file operations' codec (vsock/proto_fs.c). The
 * first byte chooses a request type (FS_WRITE ... FS_TREE_WRITE, decoded
 * by the one table-driven request decoder) or a reply decoder (STAT_OK,
 * END, PATH_OK, DIRENTS, ENTRY, TREE_END) or the tree path rule; the rest
 * is the payload. Accepted requests and entries are encoded again and
 * must decode to the same values. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/reencode.h"
#include "vsock/proto_fs.h"

_Static_assert(NREQ == FT_FS_TREE_WRITE - FT_FS_WRITE + 1, "fuzz.h: NREQ");

static bool same_str(const char *a, const char *c)
{
	return (!a && !c) || (a && c && strcmp(a, c) == 0);
}

static void check_req(const struct fs_req *r)
{
	const char *strs[] = { r->path, r->path2, r->user, r->target, r->prefix, r->suffix };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		FUZZ_CHECK(!strs[i] || strlen(strs[i]) <= FS_PATH_MAX);
	FUZZ_CHECK(!r->user || (r->user[0] && strlen(r->user) <= FS_USER_MAX));
	FUZZ_CHECK(!r->prefix || (strlen(r->prefix) <= FS_AFFIX_MAX && !strchr(r->prefix, '/')));
	FUZZ_CHECK(!r->suffix || (strlen(r->suffix) <= FS_AFFIX_MAX && !strchr(r->suffix, '/')));
	FUZZ_CHECK((r->mode & ~07777u) == 0);
	FUZZ_CHECK(r->offset <= INT64_MAX && r->length <= INT64_MAX);
	FUZZ_CHECK(!(r->flags & FS_F_CREATE_NEW) || !(r->flags & FS_F_NO_CREATE));
	FUZZ_CHECK((r->flags & ~FS_F_ALL) == 0);
	/* Every request but MKTEMP names a path. */
	FUZZ_CHECK(r->type == FT_FS_MKTEMP || (r->path && r->path[0]));
}

static void request(uint16_t type, const struct frame *f)
{
	struct fs_req r, r2;
	struct proto_err e;
	int rc;

	fuzz_err_reset(&e);
	rc = proto_fs_req_decode(f, &r, &e);
	fuzz_check_rc(rc, &e);
	if (rc < 0) {
		FUZZ_CHECK(r.mem == NULL);
		return;
	}
	FUZZ_CHECK(r.type == type);
	check_req(&r);
	FUZZ_CHECK(proto_fs_req_put(&b, &r) == 0);
	struct frame g = reencoded(type);
	fuzz_err_reset(&e);
	rc = proto_fs_req_decode(&g, &r2, &e);
	fuzz_check_rc(rc, &e);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(r.have == r2.have && r.flags == r2.flags && r.mode == r2.mode &&
		   r.uid == r2.uid && r.gid == r2.gid && r.offset == r2.offset &&
		   r.length == r2.length && r.size == r2.size);
	FUZZ_CHECK(r.atime.sec == r2.atime.sec && r.atime.nsec == r2.atime.nsec &&
		   r.mtime.sec == r2.mtime.sec && r.mtime.nsec == r2.mtime.nsec);
	FUZZ_CHECK(same_str(r.path, r2.path) && same_str(r.path2, r2.path2) &&
		   same_str(r.user, r2.user) && same_str(r.target, r2.target) &&
		   same_str(r.prefix, r2.prefix) && same_str(r.suffix, r2.suffix));
	proto_fs_req_free(&r2);
	proto_fs_req_free(&r);
}

static void reply(unsigned which, const uint8_t *p, size_t len)
{
	static char text[PROTO_MSG_MAX + 1];
	static struct fs_entry en, en2;
	struct proto_err e;
	struct fs_stat st;
	struct frame f;
	int r;

	fuzz_err_reset(&e);
	switch (which) {
	case R_STAT_OK:
		f = fuzz_frame_of(FT_FS_STAT_OK, p, len);
		r = proto_fs_stat_ok_decode(&f, &st, text, sizeof(text), &e);
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(st.atime.nsec < 1000000000u && st.mtime.nsec < 1000000000u &&
				   st.ctime.nsec < 1000000000u);
		break;
	case R_END: {
		uint8_t digest[FS_DIGEST_LEN];
		uint64_t count;
		bool has;

		/* Both digest kinds: BLAKE2b-256 (version 1), XXH3-128. */
		f = fuzz_frame_of(FT_FS_END, p, len);
		r = proto_fs_end_decode(&f, FS_DIGEST_BLAKE2B_LEN, &count, digest, &has, &e);
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(has == (len == 8 + FS_DIGEST_BLAKE2B_LEN));
		r = proto_fs_end_decode(&f, FS_DIGEST_XXH3_LEN, &count, digest, &has, &e);
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(has == (len == 8 + FS_DIGEST_XXH3_LEN));
		break;
	}
	case R_PATH_OK:
		f = fuzz_frame_of(FT_FS_PATH_OK, p, len);
		r = proto_fs_path_ok_decode(&f, text, sizeof(text), &e);
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(strlen(text) == len && len <= FS_PATH_MAX);
		break;
	case R_DIRENTS: {
		static struct fs_dirent d;
		struct fs_dirent_iter it;
		size_t used = 1;

		f = fuzz_frame_of(FT_FS_DIRENTS, p, len);
		r = proto_fs_dirents_iter(&it, &f, &e);
		fuzz_check_rc(r, &e);
		while (r == 0) {
			fuzz_err_reset(&e);
			r = proto_fs_dirent_next(&it, &d, &e);
			fuzz_check_rc(r < 0 ? r : 0, &e);
			if (r <= 0)
				break;
			FUZZ_CHECK(d.name[0] && strlen(d.name) <= FS_NAME_MAX && !strchr(d.name, '/') &&
				   strcmp(d.name, ".") && strcmp(d.name, ".."));
			used += proto_fs_dirent_len(strlen(d.name), d.has_stat);
			r = 0;
		}
		if (r == 0)
			FUZZ_CHECK(used == len);
		break;
	}
	case R_ENTRY:
		f = fuzz_frame_of(FT_FS_ENTRY, p, len);
		r = proto_fs_entry_decode(&f, &en, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			break;
		FUZZ_CHECK(proto_fs_relpath_check(en.path, strlen(en.path), NULL) == 0);
		FUZZ_CHECK(proto_fs_entry_put(&b, en.path, &en.st, en.target[0] ? en.target : NULL) == 0);
		{
			struct frame g = reencoded(FT_FS_ENTRY);

			fuzz_err_reset(&e);
			r = proto_fs_entry_decode(&g, &en2, &e);
			fuzz_check_rc(r, &e);
			FUZZ_CHECK(r == 0);
			FUZZ_CHECK(strcmp(en.path, en2.path) == 0 && strcmp(en.target, en2.target) == 0 &&
				   memcmp(&en.st, &en2.st, sizeof(en.st)) == 0);
		}
		break;
	case R_TREE_END: {
		struct fs_tree_end t;

		f = fuzz_frame_of(FT_FS_TREE_END, p, len);
		r = proto_fs_tree_end_decode(&f, &t, &e);
		fuzz_check_rc(r, &e);
		break;
	}
	case R_RELPATH:
		r = proto_fs_relpath_check((const char *)p, len, &e);
		fuzz_check_rc(r, &e);
		if (r == 0 && len > 0)
			FUZZ_CHECK(p[0] != '/' && p[len - 1] != '/' && !memchr(p, '\0', len));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned which;

	if (size < 1 || size - 1 > PROTO_FRAME_MAX)
		return 0;
	which = data[0] % R_COUNT;
	buf_consume(&b, buf_len(&b));
	if (which < NREQ) {
		struct frame f = fuzz_frame_of((uint16_t)(FT_FS_WRITE + which), data + 1, size - 1);

		request(f.type, &f);
	} else {
		reply(which, data + 1, size - 1);
	}
	return 0;
}
