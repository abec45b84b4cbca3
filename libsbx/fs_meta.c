/* libsbx: the file operations that are one request and one answer
 * (stat, readdir, mkdir, remove, rename, copy, link, chmod, chown,
 * symlink, readlink, realpath, truncate, utimes, mktemp). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libsbx/fs_xfer.h"

/* One request answered by one frame of type want (FT_OK usually). */
static int call(const char *addr, const struct fs_req *r, uint16_t want, struct frame *f,
		struct sbx_conn **keep, struct sbx_error *err)
{
	struct sbx_conn *c;
	int rc;

	if ((rc = xfer_start(addr, r, &c, err)) < 0)
		return rc;
	if ((rc = sbx_recv(c, f, -1, err)) < 0)
		goto out;
	if (f->type != want) {
		rc = sbx_fail(err, EPROTO, "the agent answered %s with %s", proto_type_name(r->type),
			  proto_type_name(f->type));
		goto out;
	}
	if (keep) {
		*keep = c;
		return 0;
	}
out:
	sbx_close(c);
	return rc;
}

static int call_ok(const char *addr, const struct fs_req *r, struct sbx_error *err)
{
	struct frame f;

	return call(addr, r, FT_OK, &f, NULL, err);
}

static int call_path(const char *addr, const struct fs_req *r, char *out, size_t n,
		     struct sbx_error *err)
{
	struct sbx_conn *c;
	struct proto_err pe;
	struct frame f;
	int rc = call(addr, r, FT_FS_PATH_OK, &f, &c, err);

	if (rc < 0)
		return rc;
	if (proto_fs_path_ok_decode(&f, out, n, &pe) < 0)
		rc = sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
	sbx_close(c);
	return rc;
}

int sbx_fs_stat(const char *addr, const char *path, bool follow, const struct sbx_fs_opts *o,
		struct fs_stat *st, char *target, size_t target_size, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct proto_err pe;
	struct fs_req r;
	struct frame f;
	int rc;

	xfer_req_init(&r, FT_FS_STAT, path, o);
	xfer_req_flags(&r, follow ? 0 : FS_F_NOFOLLOW);
	if ((rc = call(addr, &r, FT_FS_STAT_OK, &f, &c, err)) < 0)
		return rc;
	if (proto_fs_stat_ok_decode(&f, st, target, target_size, &pe) < 0)
		rc = sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
	sbx_close(c);
	return rc;
}

int sbx_fs_readdir(const char *addr, const char *path, bool with_stat,
		   const struct sbx_fs_opts *o, sbx_dirent_fn fn, void *arg, struct sbx_error *err)
{
	struct fs_dirent *d = malloc(sizeof(*d));
	struct sbx_conn *c = NULL;
	struct fs_dirent_iter it;
	struct proto_err pe;
	struct fs_req r;
	struct frame f;
	uint64_t count = 0, said;
	bool dig;
	int rc;

	if (!d)
		return sbx_fail(err, ENOMEM, "out of memory");
	xfer_req_init(&r, FT_FS_READDIR, path, o);
	xfer_req_flags(&r, with_stat ? FS_F_STAT : 0);
	if ((rc = xfer_start(addr, &r, &c, err)) < 0)
		goto out;
	for (;;) {
		if ((rc = xfer_recv_frame(c, &f, o, err)) < 0)
			goto out;
		if (f.type == FT_FS_END)
			break;
		if (proto_fs_dirents_iter(&it, &f, &pe) < 0) {
			rc = sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
			goto out;
		}
		while ((rc = proto_fs_dirent_next(&it, d, &pe)) > 0) {
			count++;
			if ((rc = fn(arg, d)) != 0)
				goto out;
		}
		if (rc < 0) {
			rc = sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
			goto out;
		}
	}
	if (proto_fs_end_decode(&f, 0, &said, NULL, &dig, &pe) < 0 || said != count)
		rc = sbx_fail(err, EPROTO, "the agent listed %llu entries but said %llu",
			  (unsigned long long)count, (unsigned long long)said);
out:
	sbx_close(c);
	free(d);
	return rc;
}

int sbx_fs_mkdir(const char *addr, const char *path, int mode, bool parents,
		 const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_MKDIR, path, o);
	xfer_req_flags(&r, parents ? FS_F_MKDIRS : 0);
	if (mode >= 0) {
		r.mode = (uint32_t)mode;
		r.have |= FS_HAVE(FS_MODE);
	}
	return call_ok(addr, &r, err);
}

int sbx_fs_remove(const char *addr, const char *path, bool recursive, const struct sbx_fs_opts *o,
		  struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_REMOVE, path, o);
	xfer_req_flags(&r, recursive ? FS_F_RECURSIVE : 0);
	return call_ok(addr, &r, err);
}

static int two_paths(const char *addr, uint16_t type, const char *a, const char *b,
		     uint32_t flags, const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, type, a, o);
	r.path2 = (char *)b;
	xfer_req_flags(&r, flags);
	return call_ok(addr, &r, err);
}

int sbx_fs_rename(const char *addr, const char *from, const char *to, uint32_t flags,
		  const struct sbx_fs_opts *o, struct sbx_error *err)
{
	return two_paths(addr, FT_FS_RENAME, from, to, flags, o, err);
}

int sbx_fs_copy(const char *addr, const char *from, const char *to, uint32_t flags,
		const struct sbx_fs_opts *o, struct sbx_error *err)
{
	return two_paths(addr, FT_FS_COPY, from, to, flags, o, err);
}

int sbx_fs_link(const char *addr, const char *existing, const char *path, uint32_t flags,
		const struct sbx_fs_opts *o, struct sbx_error *err)
{
	return two_paths(addr, FT_FS_LINK, existing, path, flags, o, err);
}

int sbx_fs_chmod(const char *addr, const char *path, uint32_t mode, const struct sbx_fs_opts *o,
		 struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_CHMOD, path, o);
	r.mode = mode;
	r.have |= FS_HAVE(FS_MODE);
	return call_ok(addr, &r, err);
}

int sbx_fs_chown(const char *addr, const char *path, int64_t uid, int64_t gid, bool follow,
		 const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_CHOWN, path, o);
	xfer_req_flags(&r, follow ? 0 : FS_F_NOFOLLOW);
	if (uid >= 0) {
		r.uid = (uint32_t)uid;
		r.have |= FS_HAVE(FS_UID);
	}
	if (gid >= 0) {
		r.gid = (uint32_t)gid;
		r.have |= FS_HAVE(FS_GID);
	}
	return call_ok(addr, &r, err);
}

int sbx_fs_symlink(const char *addr, const char *target, const char *path, uint32_t flags,
		   const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	if (!target[0])
		return sbx_fail(err, EINVAL, "empty symbolic link target");
	xfer_req_init(&r, FT_FS_SYMLINK, path, o);
	r.target = (char *)target;
	xfer_req_flags(&r, flags);
	return call_ok(addr, &r, err);
}

int sbx_fs_readlink(const char *addr, const char *path, char *out, size_t n,
		    const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_READLINK, path, o);
	return call_path(addr, &r, out, n, err);
}

int sbx_fs_realpath(const char *addr, const char *path, char *out, size_t n,
		    const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_REALPATH, path, o);
	return call_path(addr, &r, out, n, err);
}

int sbx_fs_truncate(const char *addr, const char *path, uint64_t length,
		    const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_TRUNCATE, path, o);
	r.length = length;
	r.have |= FS_HAVE(FS_LENGTH);
	return call_ok(addr, &r, err);
}

int sbx_fs_lock(const char *addr, const char *path, bool exclusive, const struct sbx_fs_opts *o,
		struct sbx_conn **held, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct fs_req r;
	struct frame f;
	int rc;

	*held = NULL;
	xfer_req_init(&r, FT_FS_LOCK, path, o);
	xfer_req_flags(&r, exclusive ? FS_F_EXCLUSIVE : 0);
	if ((rc = xfer_start(addr, &r, &c, err)) < 0)
		return rc;
	/* The agent answers once the lock is held, however long that is. */
	if ((rc = xfer_recv_frame(c, &f, o, err)) < 0) {
		sbx_close(c);
		return rc;
	}
	if (f.type != FT_OK) {
		sbx_close(c);
		return sbx_fail(err, EPROTO, "the agent answered FS_LOCK with %s",
				proto_type_name(f.type));
	}
	*held = c;
	return 0;
}

int sbx_fs_unlock(struct sbx_conn *held, struct sbx_error *err)
{
	uint8_t count[8] = { 0 };
	struct frame f;
	int rc;

	if ((rc = sbx_send(held, FT_FS_END, count, sizeof(count), err)) == 0 &&
	    (rc = sbx_recv(held, &f, -1, err)) == 0 && f.type != FT_OK)
		rc = sbx_fail(err, EPROTO, "the agent answered an unlock with %s",
			      proto_type_name(f.type));
	sbx_close(held);
	return rc;
}

int sbx_fs_utimes(const char *addr, const char *path, const struct fs_time *atime,
		  const struct fs_time *mtime, bool follow, const struct sbx_fs_opts *o,
		  struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_UTIMES, path, o);
	xfer_req_flags(&r, follow ? 0 : FS_F_NOFOLLOW);
	if (atime) {
		r.atime = *atime;
		r.have |= FS_HAVE(FS_ATIME);
	}
	if (mtime) {
		r.mtime = *mtime;
		r.have |= FS_HAVE(FS_MTIME);
	}
	return call_ok(addr, &r, err);
}

int sbx_fs_mktemp(const char *addr, const char *dir, const char *prefix, const char *suffix,
		  bool directory, char *out, size_t n, const struct sbx_fs_opts *o,
		  struct sbx_error *err)
{
	struct fs_req r;

	xfer_req_init(&r, FT_FS_MKTEMP, dir, o);
	r.prefix = (char *)prefix;
	r.suffix = (char *)suffix;
	xfer_req_flags(&r, directory ? FS_F_DIRECTORY : 0);
	return call_path(addr, &r, out, n, err);
}
