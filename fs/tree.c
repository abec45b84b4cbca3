/* Directory trees in both directions, as a stream of ENTRY frames in
 * pre-order (each directory before what it holds), regular files followed
 * by their DATA and END (files.md, "Trees").
 *
 * TREE_READ walks the tree with a stack of open directories, never
 * following a symbolic link below the root, and sends as fast as the
 * socket takes it.
 *
 * TREE_WRITE builds a new tree in a hidden directory next to the
 * destination and renames it into place at the end, so the tree appears
 * whole or not at all; into an existing directory it merges, each file
 * replaced atomically (lib/tree.c does the writing). Every entry is
 * created relative to its parent's fd, reached without following links
 * (tree_walk_dir), so a path or link in the stream can never lead outside
 * the destination. Directory modes and
 * times are applied last, deepest first, so that a read-only directory
 * can still be filled and writing into a directory does not undo its
 * mtime. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#define ENTRIES_PER_TURN 64
#define TREE_DIRS_MAX (1024 * 1024)   /* directories in one FS_TREE_WRITE */
#define TREE_NAMES_MAX (64 * 1024 * 1024)

static struct timespec ts_of(const struct fs_time *t)
{
	return (struct timespec){ (time_t)t->sec, (long)t->nsec };
}

/* ======================= TREE_READ ======================= */

struct level {
	DIR *d;
	size_t len; /* of the directory's relative path */
};

struct fs_tree_read {
	struct fs_sender s; /* first: the hash state wants 64-byte alignment */
	struct conn *c;
	struct fs_cred cred;
	struct level stack[TREE_DEPTH_MAX];
	int depth;
	bool sending;
	bool verify;
	struct fs_tree_end t;
	struct timer kick;
	struct fs_release release;
	char rel[PATH_MAX];
	char path[PATH_MAX];
};

static void tr_frame(struct conn *c, const struct frame *f);
static void tr_writable(struct conn *c);
static void tr_hangup(struct conn *c);
static void tr_destroy(struct conn *c);

static const struct conn_ops tree_read_ops = {
	.name = "fs-tree-read",
	.frame = tr_frame,
	.writable = tr_writable,
	.hangup = tr_hangup,
	.destroy = tr_destroy,
};

static void tr_close(struct fs_tree_read *tr)
{
	timer_cancel(&tr->kick);
	fs_sender_close(&tr->s);
	while (tr->depth > 0)
		closedir(tr->stack[--tr->depth].d);
}

static int tr_push(struct fs_tree_read *tr, int fd)
{
	DIR *d;

	if (tr->depth == TREE_DEPTH_MAX) {
		close(fd);
		return -ELOOP;
	}
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;

		close(fd);
		return r;
	}
	tr->stack[tr->depth].d = d;
	tr->stack[tr->depth].len = strlen(tr->rel);
	tr->depth++;
	return 0;
}

/* Sends the entry rel with stat st; fd is its open file (regular files)
 * or directory, or -1. */
static int tr_entry(struct fs_tree_read *tr, const struct stat *st, int fd, const char *target)
{
	struct fs_stat fst;
	int r;

	fs_stat_from(&fst, st);
	if ((r = proto_fs_entry_put(conn_txbuf(tr->c), tr->rel, &fst, target)) < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	tr->t.entries++;
	if (S_ISDIR(st->st_mode))
		return tr_push(tr, fd);
	if (S_ISREG(st->st_mode)) {
		fs_sender_start(&tr->s, fd, 0, UINT64_MAX, tr->verify);
		tr->sending = true;
	}
	return 0;
}

/* The next entry of the directory on top of the stack: 0 and something
 * queued (or a level done), -errno. */
static int tr_next(struct fs_tree_read *tr)
{
	struct level *top = &tr->stack[tr->depth - 1];
	char target[PATH_MAX];
	struct dirent *de;
	struct stat st;
	int dfd = dirfd(top->d), fd;
	ssize_t n;

	errno = 0;
	de = readdir(top->d);
	if (!de) {
		if (errno)
			return -errno;
		closedir(top->d);
		tr->depth--;
		return 0;
	}
	if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
		return 0;
	if (snprintf(tr->rel + top->len, sizeof(tr->rel) - top->len, "%s%s", top->len ? "/" : "",
		     de->d_name) >= (int)(sizeof(tr->rel) - top->len))
		return -ENAMETOOLONG;
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno; /* gone since readdir */
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		return tr_entry(tr, &st, fd, NULL);
	case S_IFREG:
		fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) < 0) {
			close(fd);
			return -errno;
		}
		return tr_entry(tr, &st, fd, NULL);
	case S_IFLNK:
		n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
		if (n <= 0)
			return n < 0 ? -errno : -EINVAL;
		target[n] = '\0';
		return tr_entry(tr, &st, -1, target);
	default:
		tr->t.skipped++; /* sockets, fifos, devices */
		return 0;
	}
}

static void tr_kick(struct timer *t);

static void tr_pump(struct fs_tree_read *tr)
{
	int r = 0;

	if ((r = fs_cred_enter(&tr->cred)) < 0)
		goto fail;
	for (int i = 0; i < ENTRIES_PER_TURN; i++) {
		if (tr->sending) {
			r = fs_sender_pump(&tr->s, tr->c);
			if (r == 1) {
				tr->sending = false;
				tr->t.bytes += tr->s.sent;
				r = 0;
				continue;
			}
			if (r == 2)
				break;
			goto out; /* busy (0) or failed */
		}
		if (!conn_tx_idle(tr->c))
			goto out;
		if (tr->depth == 0) {
			fs_cred_leave(&tr->cred);
			proto_fs_tree_end_put(conn_txbuf(tr->c), &tr->t);
			conn_finish(tr->c);
			return;
		}
		if ((r = tr_next(tr)) < 0)
			goto out;
		conn_flush(tr->c);
	}
	r = 0;
	if (conn_tx_idle(tr->c))
		timer_arm(&tr->kick, 0, tr_kick);
out:
	fs_cred_leave(&tr->cred);
	if (r >= 0)
		return;
fail:
	tr_close(tr);
	fs_fail(tr->c, r, "%s%s%s", tr->path, tr->rel[0] ? "/" : "", tr->rel);
}

static void tr_kick(struct timer *t)
{
	tr_pump(container_of(t, struct fs_tree_read, kick));
}

static void tr_frame(struct conn *c, const struct frame *f)
{
	tr_close(c->op);
	conn_fail(c, EPROTO, "unexpected %s frame during FS_TREE_READ", proto_type_name(f->type));
}

static void tr_writable(struct conn *c)
{
	tr_pump(c->op);
}

static void tr_hangup(struct conn *c)
{
	struct fs_tree_read *tr = c->op;

	tr_close(tr);
	fs_release_later(&tr->release, c);
}

static void tr_destroy(struct conn *c)
{
	struct fs_tree_read *tr = c->op;

	tr_close(tr);
	fs_release_cancel(&tr->release);
	loop_free_later(c->op);
	c->op = NULL;
}

/* The root: a directory, a file, or (with NOFOLLOW) a symbolic link. */
static int tr_root(struct fs_tree_read *tr, uint32_t flags)
{
	char target[PATH_MAX];
	struct stat st;
	int fd;
	ssize_t n;

	if ((flags & FS_F_NOFOLLOW ? lstat(tr->path, &st) : stat(tr->path, &st)) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(tr->path, target, sizeof(target) - 1);
		if (n <= 0)
			return n < 0 ? -errno : -EINVAL;
		target[n] = '\0';
		return tr_entry(tr, &st, -1, target);
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return -EINVAL;
	fd = open(tr->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
		  (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	return tr_entry(tr, &st, fd, NULL);
}

void fs_tree_read_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path)
{
	struct fs_tree_read *tr = fs_zalloc(sizeof(*tr));
	int rc;

	if (!tr) {
		conn_fail(c, ENOMEM, "out of memory");
		return;
	}
	tr->c = c;
	tr->cred = *cr;
	tr->verify = !(r->flags & FS_F_NO_VERIFY);
	fs_sender_init(&tr->s);
	str_copy(tr->path, sizeof(tr->path), path);
	if ((rc = fs_cred_enter(&tr->cred)) == 0) {
		rc = tr_root(tr, r->flags);
		fs_cred_leave(&tr->cred);
	}
	if (rc < 0) {
		tr_close(tr);
		if (rc == -EINVAL)
			conn_fail(c, EINVAL, "not a directory, regular file or symbolic link: %s",
				  path);
		else
			fs_fail(c, rc, "%s", path);
		free(tr);
		return;
	}
	c->ops = &tree_read_ops;
	c->op = tr;
	fs_sender_deepen(c);
	conn_flush(c);
	if (!conn_dead(c))
		tr_pump(tr);
}

/* ======================= TREE_WRITE ======================= */

/* The writing itself is lib/tree.c's; this is the protocol around it:
 * frames, the digest of each file, the user's identity, and the errors
 * the client is told. */
struct fs_tree_write {
	crypto_generichash_state h; /* first: it wants 64-byte alignment */
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

static void tw_frame(struct conn *c, const struct frame *f);
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
	fs_cred_enter(&tw->cred);
	tree_write_abort(&tw->w);
	fs_cred_leave(&tw->cred);
}

static void tw_fail(struct fs_tree_write *tw, int err)
{
	/* A new tree or a single file is undone completely. */
	bool untouched = tw->w.tmpdir[0] || !tw->w.root_is_dir;
	char where[PATH_MAX];

	str_copy(where, sizeof(where), tw->where);
	tw_abort(tw);
	fs_fail(tw->c, err, "%s%s", where, untouched ? " (the destination was left unchanged)" : "");
}

static void tw_proto(struct fs_tree_write *tw, int code, const char *msg)
{
	tw_abort(tw);
	conn_fail(tw->c, code, "%s", msg);
}

static void tw_entry(struct fs_tree_write *tw, const struct frame *f)
{
	const struct fs_entry *en = tw->cur;
	struct timespec times[2];
	struct proto_err e;
	int r;

	if (tw->w.in_file) {
		tw_proto(tw, EPROTO, "FS_ENTRY while a file's data was expected");
		return;
	}
	if (proto_fs_entry_decode(f, tw->cur, &e) < 0) {
		tw_proto(tw, e.code, e.msg);
		return;
	}
	if (!tw->w.root_seen != !en->path[0]) {
		tw_proto(tw, EPROTO, tw->w.root_seen ? "FS_ENTRY: a second root entry" :
			 "FS_ENTRY: the first entry must be the root (an empty path)");
		return;
	}
	tw->t.entries++;
	tw->cur_bytes = 0;
	set_where(tw, en->path);
	if (tw->verify)
		fs_hash_init(&tw->h);
	times[0] = ts_of(&en->st.atime);
	times[1] = ts_of(&en->st.mtime);
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = en->path[0] ? tree_write_child(&tw->w, en->path, en->st.mode, en->target, times) :
				  tree_write_root(&tw->w, en->st.mode, en->target, times);
		fs_cred_leave(&tw->cred);
	}
	if (r == -EPROTO)
		tw_proto(tw, EPROTO, "FS_ENTRY below a root that is not a directory");
	else if (r == -EINVAL)
		tw_proto(tw, EINVAL, "FS_ENTRY: only directories, files and symbolic links can be written");
	else if (r == -E2BIG)
		tw_proto(tw, E2BIG, "too many directories in one tree");
	else if (r < 0)
		tw_fail(tw, r);
}

static void tw_data(struct fs_tree_write *tw, const struct frame *f)
{
	size_t done = 0;

	if (!tw->w.in_file) {
		tw_proto(tw, EPROTO, "FS_DATA outside a regular file");
		return;
	}
	while (done < f->len) {
		ssize_t n = write(tw->w.a.fd, f->payload + done, f->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tw_fail(tw, n < 0 ? -errno : -EIO);
			return;
		}
		done += (size_t)n;
	}
	if (tw->verify)
		crypto_generichash_update(&tw->h, f->payload, f->len);
	tw->cur_bytes += f->len;
}

static void tw_file_end(struct fs_tree_write *tw, const struct frame *f)
{
	const struct fs_stat *st = &tw->cur->st;
	struct timespec times[2] = { ts_of(&st->atime), ts_of(&st->mtime) };
	uint8_t want[FS_DIGEST_LEN], got[FS_DIGEST_LEN];
	struct proto_err e;
	uint64_t count;
	bool has_digest;
	int r;

	if (!tw->w.in_file) {
		tw_proto(tw, EPROTO, "FS_END outside a regular file");
		return;
	}
	if (proto_fs_end_decode(f, &count, want, &has_digest, &e) < 0) {
		tw_proto(tw, e.code, e.msg);
		return;
	}
	if (has_digest != tw->verify || count != tw->cur_bytes) {
		tw_proto(tw, EPROTO, "FS_END does not match what was sent for the file");
		return;
	}
	if (tw->verify) {
		fs_hash_final(&tw->h, got);
		if (sodium_memcmp(got, want, sizeof(got)) != 0) {
			char msg[PATH_MAX + 128];

			snprintf(msg, sizeof(msg), "checksum mismatch: %s: the data was damaged on the way",
				 tw->where);
			tw_proto(tw, EBADMSG, msg);
			return;
		}
	}
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = tree_write_file_end(&tw->w, st->mode, times);
		fs_cred_leave(&tw->cred);
	}
	if (r < 0) {
		tw_fail(tw, r);
		return;
	}
	tw->t.bytes += tw->cur_bytes;
}

static void tw_end(struct fs_tree_write *tw, const struct frame *f)
{
	struct fs_tree_end t;
	struct proto_err e;
	int r;

	if (proto_fs_tree_end_decode(f, &t, &e) < 0) {
		tw_proto(tw, e.code, e.msg);
		return;
	}
	if (tw->w.in_file || !tw->w.root_seen || t.entries != tw->t.entries ||
	    t.bytes != tw->t.bytes) {
		tw_proto(tw, EPROTO, "FS_TREE_END does not match the entries that were sent");
		return;
	}
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = tree_write_finish(&tw->w);
		fs_cred_leave(&tw->cred);
	}
	if (r < 0) {
		set_where(tw, tw->w.at);
		tw_fail(tw, r);
		return;
	}
	proto_put(conn_txbuf(tw->c), FT_OK, NULL, 0);
	conn_finish(tw->c);
}

static void tw_frame(struct conn *c, const struct frame *f)
{
	struct fs_tree_write *tw = c->op;

	switch (f->type) {
	case FT_FS_ENTRY:
		tw_entry(tw, f);
		break;
	case FT_FS_DATA:
		tw_data(tw, f);
		break;
	case FT_FS_END:
		tw_file_end(tw, f);
		break;
	case FT_FS_TREE_END:
		tw_end(tw, f);
		break;
	default:
		tw_proto(tw, EPROTO, "unexpected frame during FS_TREE_WRITE");
	}
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

void fs_tree_write_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path)
{
	struct fs_tree_write *tw = fs_zalloc(sizeof(*tw));
	int rc;

	if (!tw || !(tw->cur = malloc(sizeof(*tw->cur)))) {
		free(tw);
		conn_fail(c, ENOMEM, "out of memory");
		return;
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
		tw_fail(tw, rc);
}
