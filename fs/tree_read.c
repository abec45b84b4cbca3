/* FS_TREE_READ: a directory tree to the client, as a stream of ENTRY
 * frames in pre-order (each directory before what it holds), regular
 * files followed by their DATA and END (files.md, "Trees"). It walks the
 * tree with a stack of open directories, never following a symbolic link
 * below the root, and sends as fast as the socket takes it. */
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

static int tr_frame(struct conn *c, const struct frame *f, struct proto_err *e);
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
		fs_sender_start(&tr->s, fd, 0, fs_send_len(st, 0, UINT64_MAX), tr->verify, tr->c);
		tr->sending = true;
	} else if (fd >= 0) {
		close(fd); /* opened as a file, then not one (replaced meanwhile) */
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
	struct proto_err e;
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
	fs_sender_err(&e, r, "%s%s%s", tr->path, tr->rel[0] ? "/" : "", tr->rel);
	conn_fail(tr->c, &e);
}

static void tr_kick(struct timer *t)
{
	tr_pump(container_of(t, struct fs_tree_read, kick));
}

static int tr_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	tr_close(c->op);
	return proto_fail(e, EPROTO, "unexpected %s frame during FS_TREE_READ", proto_type_name(f->type));
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

int fs_tree_read_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		struct proto_err *e)
{
	struct fs_tree_read *tr = fs_zalloc(sizeof(*tr));
	int rc;

	if (!tr)
		return proto_fail(e, ENOMEM, "out of memory");
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
			proto_fail(e, EINVAL, "not a directory, regular file or symbolic link: %s",
				  path);
		else
			fs_err(e, rc, "%s", path);
		free(tr);
		return -e->code;
	}
	c->ops = &tree_read_ops;
	c->op = tr;
	fs_sender_deepen(c);
	conn_flush(c);
	if (!conn_dead(c))
		tr_pump(tr);
	return 0;
}
