/* The WRITE operation: a file body streamed from the client (DATA frames
 * written as they arrive, hashed on the way), then END with the count and
 * digest. Only when both match is the new file fsynced and given its
 * name (lib/atomic.c); any failure before that, a vanished client
 * included, leaves the target as it was. APPEND and IN_PLACE write into
 * the target itself and are the documented exceptions. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

struct fs_write {
	struct hasher h; /* first: the hash state wants 64-byte alignment */
	struct conn *c;
	struct fs_cred cred;
	struct atomic_file a;         /* a.fd receives the body in every mode */
	int dirfd;
	bool in_place;              /* APPEND / IN_PLACE: a.fd is the target */
	bool no_replace;
	bool verify;
	uint64_t bytes;
	bool set_mode, set_owner, owner_optional, set_times;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec times[2];
	struct fs_release release;
	char path[PATH_MAX];
};

static int write_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void write_hangup(struct conn *c);
static void write_destroy(struct conn *c);

static const struct conn_ops write_ops = {
	.name = "fs-write",
	.frame = write_frame,
	.hangup = write_hangup,
	.destroy = write_destroy,
};

/* Drops whatever was written; the target keeps its old content (except
 * in place, where what was written stays). */
static void write_abort(struct fs_write *w)
{
	hasher_close(&w->h);
	if (w->in_place) {
		fd_close(&w->a.fd);
		return;
	}
	fs_cred_enter(&w->cred);
	atomic_abort(&w->a);
	fs_cred_leave(&w->cred);
}

static int write_failed(struct fs_write *w, int err, struct proto_err *e)
{
	write_abort(w);
	return fs_err(e, err, "%s%s", w->path, w->in_place ? "" : " (the target was left unchanged)");
}

static struct timespec to_timespec(const struct fs_time *t)
{
	if (t->nsec == FS_TIME_NOW)
		return (struct timespec){ 0, UTIME_NOW };
	if (t->nsec == FS_TIME_OMIT)
		return (struct timespec){ 0, UTIME_OMIT };
	return (struct timespec){ (time_t)t->sec, (long)t->nsec };
}

/* Owner, mode and times go on before the file gets its name, so it never
 * appears with the wrong ones. fchown first: it clears set-id bits. */
static int apply_attrs(struct fs_write *w)
{
	int fd = w->a.fd;

	if (w->set_owner && fchown(fd, w->uid, w->gid) < 0 && !w->owner_optional)
		return -errno;
	if (w->set_mode && fchmod(fd, w->mode) < 0)
		return -errno;
	if (w->set_times && futimens(fd, w->times) < 0)
		return -errno;
	return 0;
}

static int commit(struct fs_write *w)
{
	int r;

	if ((r = fs_cred_enter(&w->cred)) < 0)
		return r;
	r = apply_attrs(w);
	/* Devices, fifos and /proc files cannot be synced, and need not be. */
	if (r == 0 && w->in_place && fsync(w->a.fd) < 0 && errno != EINVAL)
		r = -errno;
	else if (r == 0 && !w->in_place)
		r = atomic_commit(&w->a, w->no_replace, true, true);
	fs_cred_leave(&w->cred);
	return r;
}

static int write_end(struct fs_write *w, const struct frame *f, struct proto_err *e)
{
	uint8_t want[FS_DIGEST_LEN], got[FS_DIGEST_LEN];
	uint64_t count;
	bool has_digest;
	int r;

	if ((r = proto_fs_end_decode(f, proto_fs_digest_len(w->c->version), &count, want,
				     &has_digest, e)) < 0) {
		write_abort(w);
		return r;
	}
	if (has_digest != w->verify) {
		write_abort(w);
		return proto_fail(e, EPROTO, "FS_END: %s", w->verify ? "the digest is missing" :
			       "a digest came for an unverified write");
	}
	if (count != w->bytes) {
		write_abort(w);
		return proto_fail(e, EPROTO, "FS_END: the client sent %llu bytes but says %llu",
			       (unsigned long long)w->bytes, (unsigned long long)count);
	}
	if (w->verify) {
		hasher_final(&w->h, got);
		if (sodium_memcmp(got, want, w->h.digest_len) != 0) {
			write_abort(w);
			return proto_fail(e, EBADMSG,
				       "checksum mismatch: %s: the data was damaged on the way%s",
				       w->path, w->in_place ? "" : " (the target was left unchanged)");
		}
	}
	if ((r = commit(w)) < 0)
		return write_failed(w, r, e);
	proto_put(conn_txbuf(w->c), FT_OK, NULL, 0);
	conn_finish(w->c);
	return 0;
}

static int write_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct fs_write *w = c->op;
	size_t done = 0;

	if (f->type == FT_FS_END)
		return write_end(w, f, e);
	if (f->type != FT_FS_DATA) {
		write_abort(w);
		return proto_fail(e, EPROTO, "unexpected %s frame during FS_WRITE", proto_type_name(f->type));
	}
	/* Written before the next frame is read: a slow disk slows the
	 * client through the socket, nothing queues up here. */
	while (done < f->len) {
		ssize_t n = write(w->a.fd, f->payload + done, f->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return write_failed(w, n < 0 ? -errno : -EIO, e);
		done += (size_t)n;
	}
	if (w->verify)
		hasher_put(&w->h, f->payload, f->len);
	w->bytes += f->len;
	return 0;
}

static void write_hangup(struct conn *c)
{
	struct fs_write *w = c->op;

	write_abort(w);
	fs_release_later(&w->release, c);
}

static void write_destroy(struct conn *c)
{
	struct fs_write *w = c->op;

	write_abort(w);
	fs_release_cancel(&w->release);
	fd_close(&w->dirfd);
	loop_free_later(w);
	c->op = NULL;
}

/* Opens the target's directory, making it first with MKDIRS. */
static int open_dir(struct fs_write *w, const char *dir, uint32_t flags)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && (flags & FS_F_MKDIRS)) {
		int r = fs_mkdir_p(dir, 0777);

		if (r < 0)
			return r;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0 && errno == EACCES) /* searchable but not readable */
		fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Everything up to the first byte: under the user's credentials. */
static int prepare(struct fs_write *w, const struct fs_req *r)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	uint32_t fl = r->flags;
	struct stat st;
	bool exists;
	int rc, oflags;

	if ((rc = fs_path_follow(w->path, sizeof(w->path))) < 0 ||
	    (rc = fs_path_split(w->path, dir, sizeof(dir), name, sizeof(name))) < 0)
		return rc;
	if ((rc = open_dir(w, dir[0] ? dir : "/", fl)) < 0)
		return rc;
	w->dirfd = rc;
	exists = fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (!exists && errno != ENOENT)
		return -errno;
	if (exists && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (exists && (fl & FS_F_CREATE_NEW))
		return -EEXIST;
	if (!exists && (fl & FS_F_NO_CREATE))
		return -ENOENT;
	w->in_place = fl & (FS_F_APPEND | FS_F_IN_PLACE);
	/* OFFSET: write in place at that offset, nothing truncated (a
	 * writable handle's pwrite, deno.md §5.4). */
	if (fs_req_has(r, FS_OFFSET) && !(fl & FS_F_IN_PLACE))
		return -EINVAL;
	if (exists && !S_ISREG(st.st_mode) && !w->in_place)
		return -EINVAL; /* a device or fifo is written in place, not replaced */
	if (fs_req_has(r, FS_SIZE) && !w->in_place) {
		struct statvfs vfs;

		/* Fail before the client sends what cannot fit. */
		if (fstatvfs(w->dirfd, &vfs) == 0 && vfs.f_frsize &&
		    r->size / vfs.f_frsize > vfs.f_bavail)
			return -ENOSPC;
	}

	/* Attributes of the result. */
	w->set_mode = fs_req_has(r, FS_MODE) || !w->in_place;
	w->mode = fs_req_has(r, FS_MODE) ? r->mode :
		  exists ? st.st_mode & 07777 : 0666 & ~fs_umask();
	w->uid = fs_req_has(r, FS_UID) ? r->uid : (uid_t)-1;
	w->gid = fs_req_has(r, FS_GID) ? r->gid : (gid_t)-1;
	w->set_owner = fs_req_has(r, FS_UID) || fs_req_has(r, FS_GID);
	if (!w->set_owner && exists && !w->in_place && fs_cred_is_root(&w->cred)) {
		/* Replacing keeps the old owner, as writing into it would. */
		w->uid = st.st_uid;
		w->gid = st.st_gid;
		w->set_owner = w->owner_optional = true;
	}
	if (fs_req_has(r, FS_ATIME) || fs_req_has(r, FS_MTIME)) {
		struct fs_time omit = { 0, FS_TIME_OMIT };

		w->times[0] = to_timespec(fs_req_has(r, FS_ATIME) ? &r->atime : &omit);
		w->times[1] = to_timespec(fs_req_has(r, FS_MTIME) ? &r->mtime : &omit);
		w->set_times = true;
	}

	if (!w->in_place) {
		w->no_replace = fl & FS_F_CREATE_NEW;
		return atomic_open(&w->a, w->dirfd, name);
	}
	oflags = O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
		 ((fl & FS_F_APPEND) ? O_APPEND : fs_req_has(r, FS_OFFSET) ? 0 : O_TRUNC) |
		 ((fl & FS_F_NO_CREATE) ? 0 : O_CREAT) |
		 ((fl & FS_F_CREATE_NEW) ? O_EXCL : 0);
	w->a.fd = openat(w->dirfd, name, oflags, w->mode);
	if (w->a.fd < 0)
		return -errno;
	/* O_NONBLOCK only kept a fifo from blocking the open. */
	fd_set_nonblock(w->a.fd, false);
	if (fs_req_has(r, FS_OFFSET) && lseek(w->a.fd, (off_t)r->offset, SEEK_SET) < 0)
		return -errno;
	if (!fs_req_has(r, FS_MODE))
		w->set_mode = false;
	return 0;
}

int fs_write_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		struct proto_err *e)
{
	struct fs_write *w = fs_zalloc(sizeof(*w));
	int rc;

	if (!w)
		return proto_fail(e, ENOMEM, "out of memory");
	w->c = c;
	w->cred = *cr;
	w->dirfd = -1;
	w->a.fd = -1;
	w->verify = !(r->flags & FS_F_NO_VERIFY);
	str_copy(w->path, sizeof(w->path), path);
	if (w->verify)
		fs_hash_init(&w->h, c);
	if ((rc = fs_cred_enter(&w->cred)) == 0) {
		rc = prepare(w, r);
		fs_cred_leave(&w->cred);
	}
	if (rc < 0) {
		write_abort(w);
		fd_close(&w->dirfd);
		fs_err(e, rc, "%s", w->path);
		free(w);
		return -e->code;
	}
	c->ops = &write_ops;
	c->op = w;
	return 0;
}
