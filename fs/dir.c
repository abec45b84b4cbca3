/* The READDIR operation: a directory's entries in DIRENTS batches of at
 * most FS_DIRENTS_MAX bytes, produced only while the socket takes them,
 * then END with the number of entries. A directory of any size costs the
 * agent one batch of memory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#define BATCHES_PER_TURN 8

struct fs_readdir {
	struct conn *c;
	struct fs_cred cred;
	DIR *d;
	bool with_stat;
	bool pending;                 /* ent holds an entry that did not fit */
	struct fs_dirent ent;
	uint64_t count;
	struct timer kick;
	struct fs_release release;
	char path[PATH_MAX];
};

static int readdir_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void readdir_writable(struct conn *c);
static void readdir_hangup(struct conn *c);
static void readdir_destroy(struct conn *c);

static const struct conn_ops readdir_ops = {
	.name = "fs-readdir",
	.frame = readdir_frame,
	.writable = readdir_writable,
	.hangup = readdir_hangup,
	.destroy = readdir_destroy,
};

/* The next entry into rd->ent: 1, 0 at the end, -errno. */
static int next_entry(struct fs_readdir *rd)
{
	struct dirent *de;

	for (;;) {
		size_t len;

		errno = 0;
		de = readdir(rd->d);
		if (!de)
			return errno ? -errno : 0;
		len = strlen(de->d_name);
		if ((len == 1 && de->d_name[0] == '.') || (len == 2 && !strcmp(de->d_name, "..")))
			continue;
		if (len > FS_NAME_MAX)
			continue; /* cannot happen on Linux */
		memcpy(rd->ent.name, de->d_name, len + 1);
		rd->ent.type = de->d_type;
		if (rd->with_stat) {
			struct stat st;

			if (fstatat(dirfd(rd->d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue; /* removed since readdir saw it */
				return -errno;
			}
			fs_stat_from(&rd->ent.st, &st);
		}
		return 1;
	}
}

/* Queues one DIRENTS frame; 1 when the directory is done. */
static int batch(struct fs_readdir *rd)
{
	struct buf *tx = conn_txbuf(rd->c);
	size_t mark, start;
	int r;

	if (!rd->pending) {
		if ((r = next_entry(rd)) <= 0)
			return r < 0 ? r : 1;
		rd->pending = true;
	}
	start = buf_len(tx);
	if ((r = proto_fs_dirents_begin(tx, rd->with_stat, &mark)) < 0)
		return r;
	while (rd->pending) {
		size_t len = strlen(rd->ent.name);

		if (buf_len(tx) - start > PROTO_HDR_LEN + 1 &&
		    buf_len(tx) - start + proto_fs_dirent_len(len, rd->with_stat) > FS_DIRENTS_MAX)
			break;
		r = proto_fs_dirent_put(tx, rd->ent.name, len, rd->ent.type,
					rd->with_stat ? &rd->ent.st : NULL);
		if (r < 0)
			return r;
		rd->pending = false;
		rd->count++;
		if ((r = next_entry(rd)) < 0)
			return r;
		rd->pending = r == 1;
	}
	if ((r = proto_end(tx, mark)) < 0)
		return r;
	return rd->pending ? 0 : 1;
}

static void kick(struct timer *t);

static void pump(struct fs_readdir *rd)
{
	struct proto_err e;
	int r = 0;

	if ((r = fs_cred_enter(&rd->cred)) < 0)
		goto fail;
	for (int i = 0; i < BATCHES_PER_TURN && conn_tx_idle(rd->c); i++) {
		r = batch(rd);
		if (r != 0)
			break;
		conn_flush(rd->c);
	}
	fs_cred_leave(&rd->cred);
	if (r < 0)
		goto fail;
	if (r == 1) {
		proto_fs_end_put(conn_txbuf(rd->c), rd->count, NULL, 0);
		conn_finish(rd->c);
		return;
	}
	if (conn_tx_idle(rd->c))
		timer_arm(&rd->kick, 0, kick);
	return;
fail:
	fs_err(&e, r, "%s", rd->path);
	conn_fail(rd->c, &e);
}

static void kick(struct timer *t)
{
	pump(container_of(t, struct fs_readdir, kick));
}

static int readdir_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	return proto_fail(e, EPROTO, "unexpected %s frame during FS_READDIR", proto_type_name(f->type));
}

static void readdir_writable(struct conn *c)
{
	pump(c->op);
}

static void readdir_hangup(struct conn *c)
{
	struct fs_readdir *rd = c->op;

	timer_cancel(&rd->kick);
	fs_release_later(&rd->release, c);
}

static void readdir_destroy(struct conn *c)
{
	struct fs_readdir *rd = c->op;

	timer_cancel(&rd->kick);
	fs_release_cancel(&rd->release);
	if (rd->d)
		closedir(rd->d);
	loop_free_later(rd);
	c->op = NULL;
}

int fs_readdir_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		struct proto_err *e)
{
	struct fs_readdir *rd = calloc(1, sizeof(*rd));
	int fd, rc;

	if (!rd)
		return proto_fail(e, ENOMEM, "out of memory");
	rd->c = c;
	rd->cred = *cr;
	rd->with_stat = r->flags & FS_F_STAT;
	str_copy(rd->path, sizeof(rd->path), path);
	if ((rc = fs_cred_enter(&rd->cred)) == 0) {
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = fd < 0 ? -errno : 0;
		fs_cred_leave(&rd->cred);
	}
	if (rc == 0 && !(rd->d = fdopendir(fd))) {
		rc = -errno;
		close(fd);
	}
	if (rc < 0) {
		fs_err(e, rc, "%s", path);
		free(rd);
		return -e->code;
	}
	c->ops = &readdir_ops;
	c->op = rd;
	pump(rd);
	return 0;
}
