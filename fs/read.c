/* The READ operation: STAT_OK for the opened file, then its bytes (whole,
 * or from OFFSET for at most LENGTH) as DATA frames and an END with the
 * count and digest (fs/send.c). Frames are produced only while the
 * socket takes them: a client that does not read stalls only itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

struct fs_read {
	struct fs_sender s; /* first: the hash state wants 64-byte alignment */
	struct conn *c;
	struct timer kick;
	struct fs_release release;
	char path[PATH_MAX];
};

static int read_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void read_writable(struct conn *c);
static void read_hangup(struct conn *c);
static void read_destroy(struct conn *c);

static const struct conn_ops read_ops = {
	.name = "fs-read",
	.frame = read_frame,
	.writable = read_writable,
	.hangup = read_hangup,
	.destroy = read_destroy,
};

static void kick(struct timer *t);

static void pump(struct fs_read *rd)
{
	struct proto_err e;
	int r = fs_sender_pump(&rd->s, rd->c);

	if (r == 1)
		conn_finish(rd->c);
	else if (r == 2)
		timer_arm(&rd->kick, 0, kick);
	else if (r < 0) {
		fs_sender_err(&e, r, "%s", rd->path);
		conn_fail(rd->c, &e);
	}
}

static void kick(struct timer *t)
{
	pump(container_of(t, struct fs_read, kick));
}

static int read_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	return proto_fail(e, EPROTO, "unexpected %s frame during FS_READ", proto_type_name(f->type));
}

static void read_writable(struct conn *c)
{
	pump(c->op);
}

static void read_hangup(struct conn *c)
{
	struct fs_read *rd = c->op;

	timer_cancel(&rd->kick);
	fs_sender_close(&rd->s);
	fs_release_later(&rd->release, c);
}

static void read_destroy(struct conn *c)
{
	struct fs_read *rd = c->op;

	timer_cancel(&rd->kick);
	fs_release_cancel(&rd->release);
	fs_sender_close(&rd->s);
	loop_free_later(rd);
	c->op = NULL;
}

int fs_read_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		struct proto_err *e)
{
	struct fs_read *rd;
	struct fs_stat fst;
	struct stat st;
	uint64_t off;
	int fd, rc;

	if ((rc = fs_cred_enter(cr)) < 0)
		return fs_err(e, rc, "%s", path);
	/* O_NONBLOCK: opening a fifo must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
		  ((r->flags & FS_F_NOFOLLOW) ? O_NOFOLLOW : 0));
	rc = fd < 0 ? -errno : 0;
	fs_cred_leave(cr);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc == 0 && S_ISDIR(st.st_mode))
		rc = -EISDIR;
	else if (rc == 0 && !S_ISREG(st.st_mode))
		rc = -EINVAL;
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		if (rc == -EINVAL)
			proto_fail(e, EINVAL, "not a regular file: %s", path);
		else
			fs_err(e, rc, "%s", path);
		return -e->code;
	}
	rd = fs_zalloc(sizeof(*rd));
	if (!rd) {
		close(fd);
		return proto_fail(e, ENOMEM, "out of memory");
	}
	rd->c = c;
	str_copy(rd->path, sizeof(rd->path), path);
	fs_sender_init(&rd->s);
	off = fs_req_has(r, FS_OFFSET) ? r->offset : 0;
	fs_sender_start(&rd->s, fd, off,
			fs_send_len(&st, off, fs_req_has(r, FS_LENGTH) ? r->length : UINT64_MAX),
			!(r->flags & FS_F_NO_VERIFY), c);
	fs_stat_from(&fst, &st);
	proto_fs_stat_ok_put(conn_txbuf(c), &fst, NULL, 0);
	c->ops = &read_ops;
	c->op = rd;
	fs_sender_deepen(c);
	conn_flush(c);
	if (!conn_dead(c))
		pump(rd);
	return 0;
}
