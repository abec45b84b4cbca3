/* The COPY operation: a file copied inside the guest, atomically like a
 * WRITE (the destination appears complete or not at all), with the
 * source's permission bits. The bytes move in the kernel with
 * copy_file_range(2), a slice per turn of the event loop, so a large
 * copy does not stall the other connections. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#define SLICE (16 * 1024 * 1024)

struct fs_copy {
	struct conn *c;
	struct fs_cred cred;
	int src;
	int dirfd;
	struct atomic_file a;
	bool no_replace;
	bool by_read;        /* copy_file_range refused: read + write */
	mode_t mode;
	struct timer kick;
	struct fs_release release;
	char from[PATH_MAX];
	char to[PATH_MAX];
};

static int copy_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void copy_hangup(struct conn *c);
static void copy_destroy(struct conn *c);

static const struct conn_ops copy_ops = {
	.name = "fs-copy",
	.frame = copy_frame,
	.hangup = copy_hangup,
	.destroy = copy_destroy,
};

static void copy_abort(struct fs_copy *cp)
{
	timer_cancel(&cp->kick);
	fs_cred_enter(&cp->cred);
	atomic_abort(&cp->a);
	fs_cred_leave(&cp->cred);
	fd_close(&cp->src);
}

/* Copies one slice: bytes copied, 0 at the end, -errno. */
static long slice(struct fs_copy *cp)
{
	static char buf[256 * 1024];
	size_t done = 0;
	ssize_t n;

	if (!cp->by_read) {
		n = copy_file_range(cp->src, NULL, cp->a.fd, NULL, SLICE, 0);
		if (n >= 0)
			return n;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		cp->by_read = true;
	}
	while (done < SLICE) {
		ssize_t w = 0;

		n = read(cp->src, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : (long)done;
		while (w < n) {
			ssize_t k = write(cp->a.fd, buf + w, (size_t)(n - w));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return k < 0 ? -errno : -EIO;
			w += k;
		}
		done += (size_t)n;
	}
	return (long)done;
}

static void step(struct timer *t)
{
	struct proto_err e;
	struct fs_copy *cp = container_of(t, struct fs_copy, kick);
	long n = slice(cp);
	int r;

	if (n > 0) {
		timer_arm(&cp->kick, 0, step);
		return;
	}
	r = (int)n;
	if (r == 0 && (r = fs_cred_enter(&cp->cred)) == 0) {
		if (fchmod(cp->a.fd, cp->mode) < 0)
			r = -errno;
		else
			r = atomic_commit(&cp->a, cp->no_replace, true, true);
		fs_cred_leave(&cp->cred);
	}
	if (r < 0) {
		copy_abort(cp);
		fs_err(&e, r, "%s (copying %s; the target was left unchanged)", cp->to, cp->from);
		conn_fail(cp->c, &e);
		return;
	}
	fd_close(&cp->src);
	proto_put(conn_txbuf(cp->c), FT_OK, NULL, 0);
	conn_finish(cp->c);
}

static int copy_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	copy_abort(c->op);
	return proto_fail(e, EPROTO, "unexpected %s frame during FS_COPY", proto_type_name(f->type));
}

static void copy_hangup(struct conn *c)
{
	struct fs_copy *cp = c->op;

	copy_abort(cp);
	fs_release_later(&cp->release, c);
}

static void copy_destroy(struct conn *c)
{
	struct fs_copy *cp = c->op;

	copy_abort(cp);
	fs_release_cancel(&cp->release);
	fd_close(&cp->dirfd);
	loop_free_later(cp);
	c->op = NULL;
}

static int prepare(struct fs_copy *cp, uint32_t flags, const char **failed)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	struct stat st, dst;
	int r;

	*failed = cp->from;
	cp->src = open(cp->from, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (cp->src < 0)
		return -errno;
	if (fstat(cp->src, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	cp->mode = st.st_mode & 07777;
	*failed = cp->to;
	if ((r = fs_path_follow(cp->to, sizeof(cp->to))) < 0 ||
	    (r = fs_path_split(cp->to, dir, sizeof(dir), name, sizeof(name))) < 0)
		return r;
	if (!dir[0])
		str_copy(dir, sizeof(dir), "/");
	if ((flags & FS_F_MKDIRS) && (r = fs_mkdir_p(dir, 0777)) < 0)
		return r;
	cp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cp->dirfd < 0)
		return -errno;
	if (fstatat(cp->dirfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(dst.st_mode))
			return -EISDIR;
		if (flags & FS_F_CREATE_NEW)
			return -EEXIST;
		if (dst.st_dev == st.st_dev && dst.st_ino == st.st_ino)
			return -EINVAL; /* onto itself */
	}
	cp->no_replace = flags & FS_F_CREATE_NEW;
	return atomic_open(&cp->a, cp->dirfd, name);
}

int fs_copy_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *from,
		   const char *to, struct proto_err *e)
{
	struct fs_copy *cp = calloc(1, sizeof(*cp));
	const char *failed = from;
	int rc;

	if (!cp)
		return proto_fail(e, ENOMEM, "out of memory");
	cp->c = c;
	cp->cred = *cr;
	cp->src = cp->dirfd = cp->a.fd = -1;
	str_copy(cp->from, sizeof(cp->from), from);
	str_copy(cp->to, sizeof(cp->to), to);
	if ((rc = fs_cred_enter(&cp->cred)) == 0) {
		rc = prepare(cp, r->flags, &failed);
		fs_cred_leave(&cp->cred);
	}
	if (rc < 0) {
		copy_abort(cp);
		fd_close(&cp->dirfd);
		if (rc == -EINVAL && failed == cp->from)
			proto_fail(e, EINVAL, "not a regular file: %s", cp->from);
		else if (rc == -EINVAL)
			proto_fail(e, EINVAL, "cannot copy %s onto itself", cp->from);
		else
			fs_err(e, rc, "%s", failed);
		free(cp);
		return -e->code;
	}
	c->ops = &copy_ops;
	c->op = cp;
	timer_arm(&cp->kick, 0, step);
	return 0;
}
