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
 * replaced atomically. Every entry is created relative to its parent's fd,
 * reached without following links (fs_walk_dir), so a path or link in the
 * stream can never lead outside the destination. Directory modes and
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
#define TREE_DIRS_MAX (1024 * 1024)
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
	struct level stack[FS_DEPTH_MAX];
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

	if (tr->depth == FS_DEPTH_MAX) {
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

struct dir_attr {
	size_t name;    /* offset of its relative path in names */
	size_t len;
	uint32_t mode;
	struct timespec times[2];
};

struct fs_tree_write {
	crypto_generichash_state h; /* first: it wants 64-byte alignment */
	struct conn *c;
	struct fs_cred cred;
	uint32_t flags;
	bool verify;
	bool set_owner;
	uid_t uid;
	gid_t gid;
	int parentfd;            /* the destination's directory */
	char name[NAME_MAX + 1]; /* the destination's name in it */
	bool dest_exists, dest_is_dir;
	char tmpdir[NAME_MAX + 1]; /* the hidden new tree; "" when merging */
	int rootfd;              /* the tree's root directory, once known */
	bool root_seen;
	bool root_is_dir;
	struct fs_walk walk;
	/* the file being received */
	bool in_file;
	bool direct;             /* created under its name in a new tree */
	struct atomic_file a;
	struct fs_entry *cur;
	uint64_t cur_bytes;
	/* directories whose mode and times are applied at the end */
	struct dir_attr *dirs;
	size_t ndirs, dirs_cap;
	struct buf names;
	struct dir_attr root_attr;
	struct fs_tree_end t;    /* what arrived */
	struct fs_release release;
	char path[PATH_MAX];     /* the destination, for messages */
	char where[PATH_MAX];    /* the entry being worked on */
};

static void tw_frame(struct conn *c, const struct frame *f);
static void set_where(struct fs_tree_write *tw, const char *rel);
static void tw_hangup(struct conn *c);
static void tw_destroy(struct conn *c);

static const struct conn_ops tree_write_ops = {
	.name = "fs-tree-write",
	.frame = tw_frame,
	.hangup = tw_hangup,
	.destroy = tw_destroy,
};

static int set_dir_attrs(struct fs_tree_write *tw, int fd, const struct dir_attr *da)
{
	if (tw->set_owner && fchown(fd, tw->uid, tw->gid) < 0)
		return -errno;
	if (fchmod(fd, da->mode & 07777) < 0 || futimens(fd, da->times) < 0)
		return -errno;
	return 0;
}

/* Deepest first: reversed pre-order puts every directory after all it
 * holds. */
static int apply_dir_attrs(struct fs_tree_write *tw)
{
	int r = 0;

	while (tw->ndirs > 0) {
		const struct dir_attr *da = &tw->dirs[--tw->ndirs];
		const char *rel = (const char *)buf_head(&tw->names) + da->name;
		size_t plen = da->len;
		int pfd, fd;

		while (plen > 0 && rel[plen - 1] != '/')
			plen--;
		set_where(tw, rel);
		pfd = fs_walk_dir(&tw->walk, rel, plen ? plen - 1 : 0);
		if (pfd < 0)
			return pfd;
		fd = openat(pfd, rel + plen, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		r = set_dir_attrs(tw, fd, da);
		close(fd);
		if (r < 0)
			return r;
	}
	if (tw->root_is_dir && tw->rootfd >= 0) {
		set_where(tw, "");
		r = set_dir_attrs(tw, tw->rootfd, &tw->root_attr);
	}
	return r;
}

/* Undoes what can be undone: the file in progress, and a new tree as a
 * whole. A merge keeps what was committed, with its directories'
 * attributes applied. */
static void tw_abort(struct fs_tree_write *tw)
{
	char where[PATH_MAX];

	fs_cred_enter(&tw->cred);
	if (tw->in_file) {
		if (tw->direct)
			fd_close(&tw->a.fd);
		else
			atomic_abort(&tw->a);
		tw->in_file = false;
	}
	if (tw->tmpdir[0]) {
		fs_walk_close(&tw->walk);
		fd_close(&tw->rootfd);
		fs_remove_tree(tw->parentfd, tw->tmpdir, where, sizeof(where));
		tw->tmpdir[0] = '\0';
	} else if (tw->root_is_dir) {
		apply_dir_attrs(tw);
	}
	tw->ndirs = 0;
	tw->root_is_dir = false;
	fs_cred_leave(&tw->cred);
}

static void tw_fail(struct fs_tree_write *tw, int err)
{
	/* A new tree or a single file is undone completely. */
	bool untouched = tw->tmpdir[0] || !tw->root_is_dir;
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

static void set_where(struct fs_tree_write *tw, const char *rel)
{
	snprintf(tw->where, sizeof(tw->where), "%s%s%s", tw->path, rel[0] ? "/" : "", rel);
}

static int remember_dir(struct fs_tree_write *tw, const struct fs_entry *en)
{
	struct dir_attr *da;
	size_t len = strlen(en->path);
	int r;

	if (tw->ndirs == tw->dirs_cap) {
		size_t cap = tw->dirs_cap ? tw->dirs_cap * 2 : 64;
		struct dir_attr *grown;

		if (cap > TREE_DIRS_MAX)
			return -E2BIG;
		grown = realloc(tw->dirs, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		tw->dirs = grown;
		tw->dirs_cap = cap;
	}
	da = &tw->dirs[tw->ndirs];
	da->name = buf_len(&tw->names);
	da->len = len;
	da->mode = en->st.mode;
	da->times[0] = ts_of(&en->st.atime);
	da->times[1] = ts_of(&en->st.mtime);
	if ((r = buf_append(&tw->names, en->path, len + 1)) < 0)
		return r == -ENOBUFS ? -E2BIG : r;
	tw->ndirs++;
	return 0;
}

/* The root entry decides what the destination becomes. */
static int tw_root(struct fs_tree_write *tw, const struct fs_entry *en)
{
	struct timespec times[2] = { ts_of(&en->st.atime), ts_of(&en->st.mtime) };
	mode_t type = en->st.mode & S_IFMT;
	char tmp[NAME_MAX + 1];
	int r;

	tw->root_seen = true;
	if (type == S_IFDIR) {
		if (tw->dest_exists && !tw->dest_is_dir)
			return -ENOTDIR;
		if (tw->dest_exists && (tw->flags & FS_F_CREATE_NEW))
			return -EEXIST;
		tw->root_attr.mode = en->st.mode;
		tw->root_attr.times[0] = times[0];
		tw->root_attr.times[1] = times[1];
		if (tw->dest_exists) {
			tw->rootfd = openat(tw->parentfd, tw->name,
					    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			r = -EEXIST;
			for (int i = 0; i < 100 && r == -EEXIST; i++) {
				atomic_tmpname(tw->name, tmp);
				r = mkdirat(tw->parentfd, tmp, 0700) < 0 ? -errno : 0;
			}
			if (r < 0)
				return r;
			str_copy(tw->tmpdir, sizeof(tw->tmpdir), tmp);
			tw->rootfd = openat(tw->parentfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					    O_CLOEXEC);
		}
		if (tw->rootfd < 0)
			return -errno;
		tw->root_is_dir = true;
		fs_walk_init(&tw->walk, tw->rootfd);
		return 0;
	}
	if (tw->dest_exists && tw->dest_is_dir)
		return -EISDIR;
	if (tw->dest_exists && (tw->flags & FS_F_CREATE_NEW))
		return -EEXIST;
	if (type == S_IFREG) {
		tw->direct = false;
		if ((r = atomic_open(&tw->a, tw->parentfd, tw->name)) < 0)
			return r;
		tw->in_file = true;
		return 0;
	}
	if (type != S_IFLNK)
		return -EINVAL;
	/* A link is made under a temporary name and renamed into place. */
	atomic_tmpname(tw->name, tmp);
	if (symlinkat(en->target, tw->parentfd, tmp) < 0)
		return -errno;
	r = (tw->flags & FS_F_CREATE_NEW) ?
		    atomic_rename_noreplace(tw->parentfd, tmp, tw->parentfd, tw->name) :
		    renameat(tw->parentfd, tmp, tw->parentfd, tw->name) < 0 ? -errno : 0;
	if (r < 0) {
		unlinkat(tw->parentfd, tmp, 0);
		return r;
	}
	if (tw->set_owner)
		(void)!fchownat(tw->parentfd, tw->name, tw->uid, tw->gid, AT_SYMLINK_NOFOLLOW);
	utimensat(tw->parentfd, tw->name, times, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int tw_child(struct fs_tree_write *tw, const struct fs_entry *en)
{
	struct timespec times[2] = { ts_of(&en->st.atime), ts_of(&en->st.mtime) };
	size_t len = strlen(en->path), plen = len;
	const char *leaf;
	char tmp[NAME_MAX + 1];
	struct stat st;
	int pfd, r;

	if (!tw->root_is_dir)
		return -EPROTO;
	while (plen > 0 && en->path[plen - 1] != '/')
		plen--;
	leaf = en->path + plen;
	pfd = fs_walk_dir(&tw->walk, en->path, plen ? plen - 1 : 0);
	if (pfd < 0)
		return pfd;
	switch (en->st.mode & S_IFMT) {
	case S_IFDIR:
		/* 0700 until the end, so it can be filled whatever its mode. */
		if (mkdirat(pfd, leaf, 0700) < 0) {
			if (errno != EEXIST)
				return -errno;
			if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return -errno;
			if (!S_ISDIR(st.st_mode))
				return -EEXIST;
		}
		return remember_dir(tw, en);
	case S_IFREG:
		if (tw->tmpdir[0]) {
			/* Inside a new tree nothing is visible yet: write the
			 * file under its own name. */
			tw->a.dirfd = pfd;
			tw->a.tmp[0] = '\0';
			str_copy(tw->a.name, sizeof(tw->a.name), leaf);
			tw->a.fd = openat(pfd, leaf, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW |
					  O_CLOEXEC, 0600);
			if (tw->a.fd < 0)
				return -errno;
			tw->direct = true;
		} else {
			if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
				return -EISDIR;
			if ((r = atomic_open(&tw->a, pfd, leaf)) < 0)
				return r;
			tw->direct = false;
		}
		tw->in_file = true;
		return 0;
	case S_IFLNK:
		if (tw->tmpdir[0]) {
			if (symlinkat(en->target, pfd, leaf) < 0)
				return -errno;
		} else {
			atomic_tmpname(leaf, tmp);
			if (symlinkat(en->target, pfd, tmp) < 0)
				return -errno;
			if (renameat(pfd, tmp, pfd, leaf) < 0) {
				r = -errno;
				unlinkat(pfd, tmp, 0);
				return r;
			}
		}
		if (tw->set_owner && fchownat(pfd, leaf, tw->uid, tw->gid, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (utimensat(pfd, leaf, times, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return 0;
	default:
		return -EINVAL;
	}
}

static void tw_entry(struct fs_tree_write *tw, const struct frame *f)
{
	struct proto_err e;
	int r;

	if (tw->in_file) {
		tw_proto(tw, EPROTO, "FS_ENTRY while a file's data was expected");
		return;
	}
	if (proto_fs_entry_decode(f, tw->cur, &e) < 0) {
		tw_proto(tw, e.code, e.msg);
		return;
	}
	if (!tw->root_seen != !tw->cur->path[0]) {
		tw_proto(tw, EPROTO, tw->root_seen ? "FS_ENTRY: a second root entry" :
			 "FS_ENTRY: the first entry must be the root (an empty path)");
		return;
	}
	tw->t.entries++;
	tw->cur_bytes = 0;
	set_where(tw, tw->cur->path);
	if (tw->verify)
		fs_hash_init(&tw->h);
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = tw->cur->path[0] ? tw_child(tw, tw->cur) : tw_root(tw, tw->cur);
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

	if (!tw->in_file) {
		tw_proto(tw, EPROTO, "FS_DATA outside a regular file");
		return;
	}
	while (done < f->len) {
		ssize_t n = write(tw->a.fd, f->payload + done, f->len - done);

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

static int tw_commit_file(struct fs_tree_write *tw)
{
	const struct fs_stat *st = &tw->cur->st;
	struct timespec times[2] = { ts_of(&st->atime), ts_of(&st->mtime) };
	int fd = tw->a.fd, r;

	if (tw->set_owner && fchown(fd, tw->uid, tw->gid) < 0)
		return -errno;
	if (fchmod(fd, st->mode & 07777) < 0 || futimens(fd, times) < 0)
		return -errno;
	if (tw->direct) {
		/* Durable with the whole tree: one syncfs before it is
		 * renamed into place. */
		fd_close(&tw->a.fd);
		return 0;
	}
	if (!tw->root_is_dir) /* the root itself is this file */
		return atomic_commit(&tw->a, tw->flags & FS_F_CREATE_NEW, true, true);
	/* The parent is an O_PATH fd: the syncfs at the end covers it. */
	r = atomic_commit(&tw->a, false, true, false);
	return r;
}

static void tw_file_end(struct fs_tree_write *tw, const struct frame *f)
{
	uint8_t want[FS_DIGEST_LEN], got[FS_DIGEST_LEN];
	struct proto_err e;
	uint64_t count;
	bool has_digest;
	int r;

	if (!tw->in_file) {
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
		r = tw_commit_file(tw);
		fs_cred_leave(&tw->cred);
	}
	if (r < 0) {
		tw_fail(tw, r);
		return;
	}
	tw->in_file = false;
	tw->t.bytes += tw->cur_bytes;
}

static int tw_finish(struct fs_tree_write *tw)
{
	int r;

	if ((r = apply_dir_attrs(tw)) < 0)
		return r;
	if (!tw->root_is_dir)
		return 0;
	set_where(tw, "");
	if (syncfs(tw->rootfd) < 0)
		return -errno;
	if (!tw->tmpdir[0])
		return 0;
	if ((r = atomic_rename_noreplace(tw->parentfd, tw->tmpdir, tw->parentfd, tw->name)) < 0)
		return r;
	tw->tmpdir[0] = '\0';
	if (fsync(tw->parentfd) < 0 && errno != EBADF && errno != EINVAL)
		return -errno;
	return 0;
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
	if (tw->in_file || !tw->root_seen || t.entries != tw->t.entries || t.bytes != tw->t.bytes) {
		tw_proto(tw, EPROTO, "FS_TREE_END does not match the entries that were sent");
		return;
	}
	if ((r = fs_cred_enter(&tw->cred)) == 0) {
		r = tw_finish(tw);
		fs_cred_leave(&tw->cred);
	}
	if (r < 0) {
		tw_fail(tw, r);
		return;
	}
	tw->root_is_dir = false; /* nothing left to undo */
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

	tw_abort(tw);
	fs_walk_close(&tw->walk);
	fd_close(&tw->rootfd);
	fd_close(&tw->parentfd);
	free(tw->dirs);
	buf_free(&tw->names);
	free(tw->cur);
	fs_release_cancel(&tw->release);
	loop_free_later(tw);
	c->op = NULL;
}

static int tw_prepare(struct fs_tree_write *tw)
{
	char dir[PATH_MAX];
	struct stat st;
	int r;

	if ((r = fs_path_follow(tw->path, sizeof(tw->path))) < 0 ||
	    (r = fs_path_split(tw->path, dir, sizeof(dir), tw->name, sizeof(tw->name))) < 0)
		return r;
	if (!dir[0])
		str_copy(dir, sizeof(dir), "/");
	if ((tw->flags & FS_F_MKDIRS) && (r = fs_mkdir_p(dir, 0777)) < 0)
		return r;
	tw->parentfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tw->parentfd < 0)
		return -errno;
	if (fstatat(tw->parentfd, tw->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		tw->dest_exists = true;
		tw->dest_is_dir = S_ISDIR(st.st_mode);
	} else if (errno != ENOENT) {
		return -errno;
	}
	return 0;
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
	tw->flags = r->flags;
	tw->verify = !(r->flags & FS_F_NO_VERIFY);
	tw->set_owner = fs_req_has(r, FS_UID) || fs_req_has(r, FS_GID);
	tw->uid = fs_req_has(r, FS_UID) ? r->uid : (uid_t)-1;
	tw->gid = fs_req_has(r, FS_GID) ? r->gid : (gid_t)-1;
	tw->parentfd = tw->rootfd = tw->a.fd = -1;
	fs_walk_init(&tw->walk, -1);
	buf_init(&tw->names, TREE_NAMES_MAX);
	str_copy(tw->path, sizeof(tw->path), path);
	set_where(tw, "");
	if ((rc = fs_cred_enter(&tw->cred)) == 0) {
		rc = tw_prepare(tw);
		fs_cred_leave(&tw->cred);
	}
	c->ops = &tree_write_ops;
	c->op = tw;
	if (rc < 0)
		tw_fail(tw, rc);
}
