/* FS_TREE_WRITE: a directory tree from the client, in the stream that
 * FS_TREE_READ sends (files.md, "Trees"). A new tree is built in a hidden
 * directory next to the destination and renamed into place at the end, so
 * it appears whole or not at all; into an existing directory it merges,
 * each file replaced atomically. lib/tree.c does the writing: every entry
 * is created relative to its parent's fd, reached without following links
 * (tree_walk_dir), so a path or link in the stream can never lead outside
 * the destination, and directory modes and times are applied last,
 * deepest first. This file is the protocol around it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#define TREE_DIRS_MAX (1024 * 1024)   /* directories in one FS_TREE_WRITE */
#define TREE_NAMES_MAX (64 * 1024 * 1024)

static struct timespec ts_of(const struct fs_time *t)
{
	return (struct timespec){ (time_t)t->sec, (long)t->nsec };
}

/* The writing itself is lib/tree.c's; this is the protocol around it:
 * frames, the digest of each file, the user's identity, and the errors
 * the client is told. */
struct fs_tree_write {
	struct hasher h; /* first: the hash state wants 64-byte alignment */
	struct conn *c;
	struct fs_cred cred;
	bool verify;
	struct tree_write w;
	struct fs_entry *cur;
	uint64_t cur_bytes;
	struct fs_tree_end t;    /* what arrived */
	struct fs_release release;
	char path[PATH_MAX];     /* the destination, for messages */
	char where[PATH_MAX];    /* the entry being worked on */
};

static int tw_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void tw_hangup(struct conn *c);
static void tw_destroy(struct conn *c);

static const struct conn_ops tree_write_ops = {
	.name = "fs-tree-write",
	.frame = tw_frame,
	.hangup = tw_hangup,
	.destroy = tw_destroy,
};

static void set_where(struct fs_tree_write *tw, const char *rel)
{
	snprintf(tw->where, sizeof(tw->where), "%s%s%s", tw->path, rel[0] ? "/" : "", rel);
}

static void tw_abort(struct fs_tree_write *tw)
{
	hasher_close(&tw->h);
	fs_cred_enter(&tw->cred);
	tree_write_abort(&tw->w);
	fs_cred_leave(&tw->cred);
}

/* r, once what the write made is undone. */
static int tw_undo(struct fs_tree_write *tw, int r)
{
	tw_abort(tw);
	return r;
}

/* A file error at the entry being written. */
static int tw_fail(struct fs_tree_write *tw, int err, struct proto_err *e)
{
	/* A new tree or a single file is undone completely. */
	bool untouched = tw->w.tmpdir[0] || !tw->w.root_is_dir;

	return tw_undo(tw, fs_err(e, err, "%s%s", tw->where,
				   untouched ? " (the destination was left unchanged)" : ""));
}

static int tw_entry(struct fs_tree_write *tw, const struct frame *f, struct proto_err *e)
{
	const struct fs_entry *en = tw->cur;
	struct timespec times[2];
	int r;

	if (tw->w.in_file)
		return tw_undo(tw, proto_fail(e, EPROTO, "FS_ENTRY while a file's data was expected"));
	if (proto_fs_entry_decode(f, tw->cur, e) < 0)
		return tw_undo(tw, -e->code);
	if (!tw->w.root_seen != !en->path[0])
		return tw_undo(tw, proto_fail(e, EPROTO, "%s", tw->w.root_seen ?
					      "FS_ENTRY: a second root entry" :
					      "FS_ENTRY: the first entry must be the root (an empty path)"));
	tw->t.entries++;
	tw->cur_bytes = 0;
	set_where(tw, en->path);
	if (tw->verify) {
		hasher_close(&tw->h);
		fs_hash_init(&tw->h, tw->c);
	}
	times[0] = ts_of(&en->st.atime);
	times[1] = ts_of(&en->st.mtime);
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = en->path[0] ? tree_write_child(&tw->w, en->path, en->st.mode, en->target, times) :
				  tree_write_root(&tw->w, en->st.mode, en->target, times);
		fs_cred_leave(&tw->cred);
	}
	if (r == -EPROTO)
		return tw_undo(tw, proto_fail(e, EPROTO, "FS_ENTRY below a root that is not a directory"));
	if (r == -EINVAL)
		return tw_undo(tw, proto_fail(e, EINVAL, "FS_ENTRY: only directories, files and symbolic links can be written"));
	if (r == -E2BIG)
		return tw_undo(tw, proto_fail(e, E2BIG, "too many directories in one tree"));
	if (r < 0)
		return tw_fail(tw, r, e);
	return 0;
}

static int tw_data(struct fs_tree_write *tw, const struct frame *f, struct proto_err *e)
{
	size_t done = 0;

	if (!tw->w.in_file)
		return tw_undo(tw, proto_fail(e, EPROTO, "FS_DATA outside a regular file"));
	while (done < f->len) {
		ssize_t n = write(tw->w.a.fd, f->payload + done, f->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return tw_fail(tw, n < 0 ? -errno : -EIO, e);
		done += (size_t)n;
	}
	if (tw->verify)
		hasher_put(&tw->h, f->payload, f->len);
	tw->cur_bytes += f->len;
	return 0;
}

static int tw_file_end(struct fs_tree_write *tw, const struct frame *f, struct proto_err *e)
{
	const struct fs_stat *st = &tw->cur->st;
	struct timespec times[2] = { ts_of(&st->atime), ts_of(&st->mtime) };
	uint8_t want[FS_DIGEST_LEN], got[FS_DIGEST_LEN];
	uint64_t count;
	bool has_digest;
	int r;

	if (!tw->w.in_file)
		return tw_undo(tw, proto_fail(e, EPROTO, "FS_END outside a regular file"));
	if (proto_fs_end_decode(f, proto_fs_digest_len(tw->c->version), &count, want,
				&has_digest, e) < 0)
		return tw_undo(tw, -e->code);
	if (has_digest != tw->verify || count != tw->cur_bytes)
		return tw_undo(tw, proto_fail(e, EPROTO, "FS_END does not match what was sent for the file"));
	if (tw->verify) {
		hasher_final(&tw->h, got);
		if (sodium_memcmp(got, want, tw->h.digest_len) != 0)
			return tw_undo(tw, proto_fail(e, EBADMSG, "checksum mismatch: %s: the data was "
							"damaged on the way", tw->where));
	}
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = tree_write_file_end(&tw->w, st->mode, times);
		fs_cred_leave(&tw->cred);
	}
	if (r < 0)
		return tw_fail(tw, r, e);
	tw->t.bytes += tw->cur_bytes;
	return 0;
}

static int tw_end(struct fs_tree_write *tw, const struct frame *f, struct proto_err *e)
{
	struct fs_tree_end t;
	int r;

	if (proto_fs_tree_end_decode(f, &t, e) < 0)
		return tw_undo(tw, -e->code);
	if (tw->w.in_file || !tw->w.root_seen || t.entries != tw->t.entries ||
	    t.bytes != tw->t.bytes)
		return tw_undo(tw, proto_fail(e, EPROTO, "FS_TREE_END does not match the entries that were sent"));
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = tree_write_finish(&tw->w);
		fs_cred_leave(&tw->cred);
	}
	if (r < 0) {
		set_where(tw, tw->w.at);
		return tw_fail(tw, r, e);
	}
	proto_put(conn_txbuf(tw->c), FT_OK, NULL, 0);
	conn_finish(tw->c);
	return 0;
}

static int tw_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct fs_tree_write *tw = c->op;

	switch (f->type) {
	case FT_FS_ENTRY:
		return tw_entry(tw, f, e);
	case FT_FS_DATA:
		return tw_data(tw, f, e);
	case FT_FS_END:
		return tw_file_end(tw, f, e);
	case FT_FS_TREE_END:
		return tw_end(tw, f, e);
	default:
		return tw_undo(tw, proto_fail(e, EPROTO, "unexpected frame during FS_TREE_WRITE"));
	}
	return 0;
}

static void tw_hangup(struct conn *c)
{
	struct fs_tree_write *tw = c->op;

	tw_abort(tw);
	fs_release_later(&tw->release, c);
}

static void tw_destroy(struct conn *c)
{
	struct fs_tree_write *tw = c->op;

	hasher_close(&tw->h);
	fs_cred_enter(&tw->cred);
	tree_write_free(&tw->w);
	fs_cred_leave(&tw->cred);
	free(tw->cur);
	fs_release_cancel(&tw->release);
	loop_free_later(tw);
	c->op = NULL;
}

static int tw_prepare(struct fs_tree_write *tw, uint32_t flags)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	int r, fd;

	if ((r = fs_path_follow(tw->path, sizeof(tw->path))) < 0 ||
	    (r = fs_path_split(tw->path, dir, sizeof(dir), name, sizeof(name))) < 0)
		return r;
	if (!dir[0])
		str_copy(dir, sizeof(dir), "/");
	if ((flags & FS_F_MKDIRS) && (r = fs_mkdir_p(dir, 0777)) < 0)
		return r;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return tree_write_open(&tw->w, fd, name);
}

int fs_tree_write_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		struct proto_err *e)
{
	struct fs_tree_write *tw = fs_zalloc(sizeof(*tw));
	int rc;

	if (!tw || !(tw->cur = malloc(sizeof(*tw->cur)))) {
		free(tw);
		return proto_fail(e, ENOMEM, "out of memory");
	}
	tw->c = c;
	tw->cred = *cr;
	tw->verify = !(r->flags & FS_F_NO_VERIFY);
	tree_write_init(&tw->w, TREE_DIRS_MAX, TREE_NAMES_MAX);
	tw->w.create_new = r->flags & FS_F_CREATE_NEW;
	tw->w.sync_files = true;
	tw->w.set_owner = fs_req_has(r, FS_UID) || fs_req_has(r, FS_GID);
	tw->w.uid = fs_req_has(r, FS_UID) ? r->uid : (uid_t)-1;
	tw->w.gid = fs_req_has(r, FS_GID) ? r->gid : (gid_t)-1;
	str_copy(tw->path, sizeof(tw->path), path);
	set_where(tw, "");
	if ((rc = fs_cred_enter(&tw->cred)) == 0) {
		rc = tw_prepare(tw, r->flags);
		fs_cred_leave(&tw->cred);
	}
	c->ops = &tree_write_ops;
	c->op = tw;
	if (rc < 0)
		return tw_fail(tw, rc, e);
	return 0;
}
