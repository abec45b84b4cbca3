/* File operations: decodes a request, resolves its paths, finds the user
 * it acts as, and either answers on the spot (stat, mkdir, remove,
 * rename, chmod, chown, links, realpath, truncate, times, temporary
 * names) or hands the connection to a streaming operation (write.c,
 * read.c, dir.c, copy.c, tree.c) or to a lock held while it lasts
 * (lock.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn/agent.h"
#include "fs/fs.h"
#include "fs/internal.h"
#include "lib/log.h"
#include "lib/util.h"

#define TEMP_TRIES 100

struct fs_ctx {
	struct conn *c;
	struct fs_req *r;
	struct fs_cred *cr;
	char path[PATH_MAX];
	char path2[PATH_MAX];
};

static void reply_ok(struct conn *c)
{
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
}

static void reply_path(struct conn *c, const char *p)
{
	proto_put(conn_txbuf(c), FT_FS_PATH_OK, p, strlen(p));
	conn_finish(c);
}

/* Makes the parent directory of path when MKDIRS is set. */
static int parents(const struct fs_ctx *x, const char *path)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	int r;

	if (!(x->r->flags & FS_F_MKDIRS))
		return 0;
	if ((r = fs_path_split(path, dir, sizeof(dir), name, sizeof(name))) < 0)
		return r == -EISDIR ? 0 : r;
	return dir[0] ? fs_mkdir_p(dir, 0777) : 0;
}

static struct timespec ts_of(const struct fs_time *t)
{
	if (t->nsec == FS_TIME_NOW)
		return (struct timespec){ 0, UTIME_NOW };
	if (t->nsec == FS_TIME_OMIT)
		return (struct timespec){ 0, UTIME_OMIT };
	return (struct timespec){ (time_t)t->sec, (long)t->nsec };
}

static int op_stat(struct fs_ctx *x, struct proto_err *e)
{
	bool nofollow = x->r->flags & FS_F_NOFOLLOW;
	char target[PATH_MAX];
	struct fs_stat fst;
	struct stat st;
	ssize_t n = 0;

	if ((nofollow ? lstat(x->path, &st) : stat(x->path, &st)) < 0)
		return fs_err(e, errno, "%s", x->path);
	if (S_ISLNK(st.st_mode)) {
		n = readlink(x->path, target, sizeof(target) - 1);
		if (n < 0)
			return fs_err(e, errno, "%s", x->path);
	}
	fs_stat_from(&fst, &st);
	proto_fs_stat_ok_put(conn_txbuf(x->c), &fst, S_ISLNK(st.st_mode) ? target : NULL, (size_t)n);
	conn_finish(x->c);
	return 0;
}

static int op_mkdir(struct fs_ctx *x, struct proto_err *e)
{
	mode_t mode = fs_req_has(x->r, FS_MODE) ? x->r->mode : 0777;
	struct stat st;
	int r;

	if ((r = parents(x, x->path)) < 0)
		return fs_err(e, r, "%s", x->path);
	if (mkdir(x->path, mode) < 0) {
		r = -errno;
		/* -p: an existing directory is fine. */
		if (r == -EEXIST && (x->r->flags & FS_F_MKDIRS) && stat(x->path, &st) == 0 &&
		    S_ISDIR(st.st_mode)) {
			reply_ok(x->c);
			return 0;
		}
		return fs_err(e, r, "%s", x->path);
	}
	/* An explicit mode is exact, as with mkdir -m; umask applies only
	 * to the default. */
	if (fs_req_has(x->r, FS_MODE) && chmod(x->path, mode) < 0)
		return fs_err(e, errno, "%s", x->path);
	reply_ok(x->c);
	return 0;
}

static int op_remove(struct fs_ctx *x, struct proto_err *e)
{
	char dir[PATH_MAX], name[NAME_MAX + 1], where[PATH_MAX];
	struct stat st, root;
	int dfd, r;

	if (lstat(x->path, &st) < 0)
		return fs_err(e, errno, "%s", x->path);
	if (stat("/", &root) == 0 && st.st_dev == root.st_dev && st.st_ino == root.st_ino)
		return proto_fail(e, EPERM, "refusing to remove the root directory: %s", x->path);
	if ((r = fs_path_split(x->path, dir, sizeof(dir), name, sizeof(name))) < 0)
		return proto_fail(e, EINVAL, "refusing to remove '.' or '..': %s", x->path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(x->path) < 0)
			return fs_err(e, errno, "%s", x->path);
		reply_ok(x->c);
		return 0;
	}
	if (!(x->r->flags & FS_F_RECURSIVE)) {
		if (rmdir(x->path) < 0)
			return fs_err(e, errno, "%s", x->path);
		reply_ok(x->c);
		return 0;
	}
	dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fs_err(e, errno, "%s", dir);
	r = tree_remove(dfd, name, where, sizeof(where));
	close(dfd);
	if (r < 0)
		return fs_err(e, r, "%s/%s", strcmp(dir, "/") ? dir : "", where);
	reply_ok(x->c);
	return 0;
}

static int op_rename(struct fs_ctx *x, struct proto_err *e)
{
	int r;

	if ((r = parents(x, x->path2)) < 0)
		return fs_err(e, r, "%s", x->path2);
	if (x->r->flags & FS_F_CREATE_NEW)
		r = atomic_rename_noreplace(AT_FDCWD, x->path, AT_FDCWD, x->path2);
	else
		r = rename(x->path, x->path2) < 0 ? -errno : 0;
	if (r < 0) {
		struct stat st;

		/* Name the path the error is about. */
		bool src = r == -ENOENT && lstat(x->path, &st) < 0;

		return fs_err(e, r, "%s (renaming %s to %s)", src || r == -EACCES ? x->path : x->path2,
			   x->path, x->path2);
	}
	reply_ok(x->c);
	return 0;
}

static int op_chmod(struct fs_ctx *x, struct proto_err *e)
{
	if (chmod(x->path, x->r->mode) < 0)
		return fs_err(e, errno, "%s", x->path);
	reply_ok(x->c);
	return 0;
}

static int op_chown(struct fs_ctx *x, struct proto_err *e)
{
	uid_t uid = fs_req_has(x->r, FS_UID) ? x->r->uid : (uid_t)-1;
	gid_t gid = fs_req_has(x->r, FS_GID) ? x->r->gid : (gid_t)-1;
	int r = (x->r->flags & FS_F_NOFOLLOW) ? lchown(x->path, uid, gid) : chown(x->path, uid, gid);

	if (r < 0)
		return fs_err(e, errno, "%s", x->path);
	reply_ok(x->c);
	return 0;
}

static int op_symlink(struct fs_ctx *x, struct proto_err *e)
{
	int r = parents(x, x->path);

	if (r == 0 && symlink(x->r->target, x->path) < 0)
		r = -errno;
	if (r < 0)
		return fs_err(e, r, "%s", x->path);
	reply_ok(x->c);
	return 0;
}

static int op_link(struct fs_ctx *x, struct proto_err *e)
{
	int r = parents(x, x->path2);

	if (r == 0 && link(x->path, x->path2) < 0)
		r = -errno;
	if (r < 0) {
		struct stat st;
		bool src = r == -ENOENT && lstat(x->path, &st) < 0;

		return fs_err(e, r, "%s (linking %s to %s)", src ? x->path : x->path2, x->path2, x->path);
	}
	reply_ok(x->c);
	return 0;
}

static int op_readlink(struct fs_ctx *x, struct proto_err *e)
{
	char target[PATH_MAX];
	ssize_t n = readlink(x->path, target, sizeof(target) - 1);

	if (n < 0) {
		if (errno == EINVAL)
			return proto_fail(e, EINVAL, "not a symbolic link: %s", x->path);
		return fs_err(e, errno, "%s", x->path);
	}
	target[n] = '\0';
	reply_path(x->c, target);
	return 0;
}

static int op_realpath(struct fs_ctx *x, struct proto_err *e)
{
	char out[PATH_MAX];

	if (!realpath(x->path, out))
		return fs_err(e, errno, "%s", x->path);
	reply_path(x->c, out);
	return 0;
}

static int op_truncate(struct fs_ctx *x, struct proto_err *e)
{
	if (truncate(x->path, (off_t)x->r->length) < 0)
		return fs_err(e, errno, "%s", x->path);
	reply_ok(x->c);
	return 0;
}

static int op_utimes(struct fs_ctx *x, struct proto_err *e)
{
	const struct fs_time now = { 0, FS_TIME_NOW }, omit = { 0, FS_TIME_OMIT };
	bool a = fs_req_has(x->r, FS_ATIME), m = fs_req_has(x->r, FS_MTIME);
	struct timespec ts[2];

	/* Neither given: both now, as touch(1) does. */
	ts[0] = ts_of(a ? &x->r->atime : m ? &omit : &now);
	ts[1] = ts_of(m ? &x->r->mtime : a ? &omit : &now);
	if (utimensat(AT_FDCWD, x->path, ts,
		      (x->r->flags & FS_F_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) < 0)
		return fs_err(e, errno, "%s", x->path);
	reply_ok(x->c);
	return 0;
}

static int op_mktemp(struct fs_ctx *x, struct proto_err *e)
{
	bool dir = x->r->flags & FS_F_DIRECTORY;
	mode_t mode = fs_req_has(x->r, FS_MODE) ? x->r->mode : dir ? 0700 : 0600;
	const char *base = x->r->path ? x->path : "/tmp";
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char out[PATH_MAX];
	int r = -EEXIST;

	for (int i = 0; i < TEMP_TRIES && r == -EEXIST; i++) {
		char core[11];
		int len;

		atomic_random_chars(core, 10, chars);
		core[10] = '\0';
		len = snprintf(out, sizeof(out), "%s/%s%s%s", strcmp(base, "/") ? base : "",
			       x->r->prefix ? x->r->prefix : "", core, x->r->suffix ? x->r->suffix : "");
		if (len < 0 || (size_t)len >= sizeof(out)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (dir) {
			r = mkdir(out, mode) < 0 ? -errno : 0;
		} else {
			int fd = open(out, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);

			r = fd < 0 ? -errno : 0;
			if (fd >= 0)
				close(fd);
		}
	}
	if (r == 0 && chmod(out, mode) < 0)
		r = -errno;
	if (r < 0)
		return fs_err(e, r, "%s", base);
	reply_path(x->c, out);
	return 0;
}

/* Operations that stream take the connection over; they act as the user
 * themselves, step by step. */
static int op_write(struct fs_ctx *x, struct proto_err *e)
{
	return fs_write_start(x->c, x->r, x->cr, x->path, e);
}

static int op_read(struct fs_ctx *x, struct proto_err *e)
{
	return fs_read_start(x->c, x->r, x->cr, x->path, e);
}

static int op_readdir(struct fs_ctx *x, struct proto_err *e)
{
	return fs_readdir_start(x->c, x->r, x->cr, x->path, e);
}

static int op_copy(struct fs_ctx *x, struct proto_err *e)
{
	return fs_copy_start(x->c, x->r, x->cr, x->path, x->path2, e);
}

static int op_tree_read(struct fs_ctx *x, struct proto_err *e)
{
	return fs_tree_read_start(x->c, x->r, x->cr, x->path, e);
}

static int op_tree_write(struct fs_ctx *x, struct proto_err *e)
{
	return fs_tree_write_start(x->c, x->r, x->cr, x->path, e);
}

static int op_lock(struct fs_ctx *x, struct proto_err *e)
{
	return fs_lock_start(x->c, x->r, x->cr, x->path, e);
}

/* The file family's table, by request frame type. as_user: answered on
 * the spot, run as the request's user. */
static const struct fs_op {
	int (*run)(struct fs_ctx *x, struct proto_err *e);
	bool as_user;
} fs_ops[FT_FS_LAST - FT_FS_FIRST + 1] = {
	[FT_FS_WRITE - FT_FS_FIRST] = { op_write, false },
	[FT_FS_READ - FT_FS_FIRST] = { op_read, false },
	[FT_FS_READDIR - FT_FS_FIRST] = { op_readdir, false },
	[FT_FS_COPY - FT_FS_FIRST] = { op_copy, false },
	[FT_FS_TREE_READ - FT_FS_FIRST] = { op_tree_read, false },
	[FT_FS_TREE_WRITE - FT_FS_FIRST] = { op_tree_write, false },
	[FT_FS_LOCK - FT_FS_FIRST] = { op_lock, false },
	[FT_FS_STAT - FT_FS_FIRST] = { op_stat, true },
	[FT_FS_MKDIR - FT_FS_FIRST] = { op_mkdir, true },
	[FT_FS_REMOVE - FT_FS_FIRST] = { op_remove, true },
	[FT_FS_RENAME - FT_FS_FIRST] = { op_rename, true },
	[FT_FS_CHMOD - FT_FS_FIRST] = { op_chmod, true },
	[FT_FS_CHOWN - FT_FS_FIRST] = { op_chown, true },
	[FT_FS_SYMLINK - FT_FS_FIRST] = { op_symlink, true },
	[FT_FS_LINK - FT_FS_FIRST] = { op_link, true },
	[FT_FS_READLINK - FT_FS_FIRST] = { op_readlink, true },
	[FT_FS_REALPATH - FT_FS_FIRST] = { op_realpath, true },
	[FT_FS_TRUNCATE - FT_FS_FIRST] = { op_truncate, true },
	[FT_FS_UTIMES - FT_FS_FIRST] = { op_utimes, true },
	[FT_FS_MKTEMP - FT_FS_FIRST] = { op_mktemp, true },
};

static int run(struct fs_ctx *x, struct proto_err *e)
{
	const struct fs_op *op = &fs_ops[x->r->type - FT_FS_FIRST];
	int r;

	if (!op->run)
		return proto_fail(e, EOPNOTSUPP, "operation 0x%04x (%s) is not implemented by this "
				  "agent", x->r->type, proto_type_name(x->r->type));
	if (!op->as_user)
		return op->run(x, e);
	if ((r = fs_cred_enter(x->cr)) < 0)
		return proto_fail(e, -r, "cannot act as user %s", x->cr->name);
	r = op->run(x, e);
	fs_cred_leave(x->cr);
	return r;
}

static int resolve(struct conn *c, const char *in, char *out, size_t n, struct proto_err *e)
{
	int r = fs_path_resolve(c->agent->config(), in, out, n);

	if (r == -ENAMETOOLONG)
		return proto_fail(e, ENAMETOOLONG, "path too long: %.256s... (at most %d bytes)", in,
				  FS_PATH_MAX);
	if (r < 0)
		return proto_fail(e, -r, "cannot resolve the path %s", in);
	return r;
}

int fs_dispatch(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct fs_req r;
	struct fs_cred cr;
	struct fs_ctx *x;
	int rc;

	if ((rc = proto_fs_req_decode(f, &r, e)) < 0)
		return rc;
	if ((rc = fs_cred_init(c->agent->config(), r.user, &cr)) < 0) {
		const char *who = r.user ? r.user : "(the sandbox's default user)";

		if (rc == -ENOENT)
			proto_fail(e, ENOENT, "no such user: %s", who);
		else
			proto_fail(e, -rc, "cannot look up user %s", who);
		goto out;
	}
	/* Find out now whether acting as that user is possible at all. */
	if ((rc = fs_cred_enter(&cr)) < 0) {
		proto_fail(e, -rc, "cannot act as user %s", cr.name);
		goto out;
	}
	fs_cred_leave(&cr);
	x = malloc(sizeof(*x));
	if (!x) {
		rc = proto_fail(e, ENOMEM, "out of memory");
		goto out;
	}
	x->c = c;
	x->r = &r;
	x->cr = &cr;
	x->path[0] = x->path2[0] = '\0';
	if ((!r.path || (rc = resolve(c, r.path, x->path, sizeof(x->path), e)) >= 0) &&
	    (!r.path2 || (rc = resolve(c, r.path2, x->path2, sizeof(x->path2), e)) >= 0))
		rc = run(x, e);
	free(x);
out:
	proto_fs_req_free(&r);
	return rc < 0 ? rc : 0;
}
