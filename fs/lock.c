/* The LOCK operation: an advisory lock on a file, held for as long as the
 * client keeps the connection. The agent opens the file as the request's
 * user and takes two locks on that one open file: flock(2), what Deno's
 * FsFile.lock and the `flock` command use, and a whole-file
 * open-file-description lock (F_OFD_SETLK), which fcntl/lockf users see.
 * Both are tried without blocking, again and again on a timer while
 * another holder has the file (never one held while waiting for the
 * other), so the loop keeps serving. OK says the locks are held; the
 * client's FS_END, or the client going away, closes the file, which
 * releases them (OK again after an FS_END). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#define RETRY_MIN_NS (5 * NSEC_PER_MSEC)
#define RETRY_MAX_NS (100 * NSEC_PER_MSEC)

struct fs_lock {
	struct conn *c;
	int fd;
	bool exclusive;
	bool ofd;            /* the open mode allows the fcntl lock */
	bool held;
	uint64_t delay;
	struct timer retry;
	struct fs_release release;
	char path[PATH_MAX];
};

static int lock_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void lock_hangup(struct conn *c);
static void lock_destroy(struct conn *c);

static const struct conn_ops lock_ops = {
	.name = "fs-lock",
	.frame = lock_frame,
	.hangup = lock_hangup,
	.destroy = lock_destroy,
};

/* Closing the file releases both locks. */
static void drop(struct fs_lock *l)
{
	timer_cancel(&l->retry);
	fd_close(&l->fd);
	l->held = false;
}

/* 1: both locks held; 0: someone else holds the file; -errno. */
static int try_lock(struct fs_lock *l)
{
	struct flock fl = { .l_type = l->exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };

	if (flock(l->fd, (l->exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0)
		return errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	if (!l->ofd || fcntl(l->fd, F_OFD_SETLK, &fl) == 0)
		return 1;
	if (errno == EAGAIN || errno == EACCES || errno == EINTR) {
		flock(l->fd, LOCK_UN); /* never hold one while waiting for the other */
		return 0;
	}
	return -errno;
}

static void attempt(struct timer *t)
{
	struct proto_err e;
	struct fs_lock *l = container_of(t, struct fs_lock, retry);
	int r = try_lock(l);

	if (r < 0) {
		drop(l);
		fs_err(&e, r, "%s (locking)", l->path);
		conn_fail(l->c, &e);
		return;
	}
	if (r == 0) {
		l->delay = l->delay ? MIN(l->delay * 2, RETRY_MAX_NS) : RETRY_MIN_NS;
		timer_arm(&l->retry, l->delay, attempt);
		return;
	}
	l->held = true;
	conn_send(l->c, FT_OK, NULL, 0);
}

/* FS_END: unlock (or stop waiting), answered by OK. */
static int lock_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct fs_lock *l = c->op;

	drop(l);
	if (f->type != FT_FS_END)
		return proto_fail(e, EPROTO, "unexpected %s frame during FS_LOCK", proto_type_name(f->type));
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
	return 0;
}

static void lock_hangup(struct conn *c)
{
	struct fs_lock *l = c->op;

	drop(l);
	fs_release_later(&l->release, c);
}

static void lock_destroy(struct conn *c)
{
	struct fs_lock *l = c->op;

	drop(l);
	fs_release_cancel(&l->release);
	loop_free_later(l);
	c->op = NULL;
}

/* Read and write if the user may, else what the user may: the fcntl lock
 * needs write access for an exclusive lock and read access for a shared
 * one; flock needs neither. */
static int open_for_lock(const char *path, bool exclusive, bool *ofd)
{
	static const int modes[] = { O_RDWR, O_RDONLY, O_WRONLY };
	int fd = -1, r = -EACCES;

	for (size_t i = 0; i < ARRAY_SIZE(modes) && fd < 0; i++) {
		fd = open(path, modes[i] | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0)
			*ofd = modes[i] == O_RDWR || (modes[i] == O_RDONLY) != exclusive;
		else if ((r = -errno) != -EACCES && r != -EPERM && r != -EROFS && r != -ETXTBSY)
			return r;
	}
	return fd >= 0 ? fd : r;
}

int fs_lock_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		struct proto_err *e)
{
	struct fs_lock *l;
	struct stat st;
	bool ofd = false;
	int fd, rc;

	if ((rc = fs_cred_enter(cr)) < 0)
		return fs_err(e, rc, "%s", path);
	fd = open_for_lock(path, r->flags & FS_F_EXCLUSIVE, &ofd);
	fs_cred_leave(cr);
	rc = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0 && S_ISDIR(st.st_mode))
		ofd = false; /* flock only: a directory opens read-only */
	if (rc < 0 || !(l = calloc(1, sizeof(*l)))) {
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			fs_err(e, rc, "%s", path);
		else
			proto_fail(e, ENOMEM, "out of memory");
		return -e->code;
	}
	l->c = c;
	l->fd = fd;
	l->ofd = ofd;
	l->exclusive = r->flags & FS_F_EXCLUSIVE;
	str_copy(l->path, sizeof(l->path), path);
	c->ops = &lock_ops;
	c->op = l;
	attempt(&l->retry);
	return 0;
}
