/* libsbx: the client side of the file operations (libsbx/sbx_fs.h,
 * docs/protocol/files.md). Requests are pipelined with the hello; bodies
 * are read straight into the output queue behind their frame header and
 * hashed there, and the queue is kept short so memory stays bounded
 * while the socket is the bottleneck. The local side of downloads mirrors
 * the agent's rules: files appear atomically, trees are written beneath
 * their destination without following any link, since what a sandbox
 * sends is not trusted. */
#include "libsbx/sbx_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/atomic.h"
#include "lib/tree.h"
#include "lib/util.h"

/* Upload frames of 256 KiB, not the 1 MiB the protocol allows: measured
 * here, 1 GiB unverified to /dev/null takes 0.15 s with 256 KiB frames and
 * 0.62 s with 1 MiB ones (the frame no longer fits the CPU's L2 cache at
 * either end, and the agent's allocator maps and unmaps each 1 MiB
 * receive buffer). */
#define UP_CHUNK (256 * 1024)
#define TX_HIGH (2 * (PROTO_HDR_LEN + UP_CHUNK)) /* queue before waiting */
/* A deeper socket for uploads lets reading and hashing here overlap with
 * the agent's writing (0.31 s -> 0.15 s for the same 1 GiB). */
#define UP_SNDBUF (2 * 1024 * 1024)
#define TICK_MS 250

/* "no such file or directory: PATH", the agent's wording, for local
 * failures. */
static int fail_path(struct sbx_error *err, int code, const char *path)
{
	char cause[128];

	if (code < 0)
		code = -code;
	return sbx_fail(err, code, "%s: %s", proto_fs_strerror(code, cause, sizeof(cause)), path);
}

static bool cancelled(const struct sbx_fs_opts *o)
{
	return o && o->cancel && *o->cancel;
}

/* Progress, at most every TICK_MS (and always when final). */
struct meter {
	const struct sbx_fs_opts *o;
	uint64_t done, total, last_ns;
};

static void meter_add(struct meter *m, uint64_t n, bool final)
{
	uint64_t now;

	m->done += n;
	if (!m->o || !m->o->progress)
		return;
	now = time_mono_ns();
	if (final || now - m->last_ns >= TICK_MS * NSEC_PER_MSEC) {
		m->last_ns = now;
		m->o->progress(m->o->progress_arg, m->done, m->total);
	}
}

/* ---- connections ---- */

static void req_init(struct fs_req *r, uint16_t type, const char *path,
		     const struct sbx_fs_opts *o)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->path = (char *)path;
	r->user = o && o->user ? (char *)o->user : NULL;
	if (o && o->no_verify && (type == FT_FS_WRITE || type == FT_FS_READ ||
				  type == FT_FS_TREE_READ || type == FT_FS_TREE_WRITE)) {
		r->flags |= FS_F_NO_VERIFY;
		r->have |= FS_HAVE(FS_FLAGS);
	}
}

static void req_flags(struct fs_req *r, uint32_t flags)
{
	r->flags |= flags;
	if (r->flags)
		r->have |= FS_HAVE(FS_FLAGS);
}

/* Connects and queues the request (sent with the hello, no round trip). */
static int start(const char *addr, const struct fs_req *r, struct sbx_conn **out,
		 struct sbx_error *err)
{
	struct sbx_conn *c;
	int rc;

	if (r->path && !r->path[0])
		return sbx_fail(err, EINVAL, "empty path");
	if (r->path2 && !r->path2[0])
		return sbx_fail(err, EINVAL, "empty path");
	if ((r->path && strlen(r->path) > FS_PATH_MAX) || (r->path2 && strlen(r->path2) > FS_PATH_MAX))
		return sbx_fail(err, ENAMETOOLONG, "path too long: %.64s... (at most %d bytes)",
			    r->path && strlen(r->path) > FS_PATH_MAX ? r->path : r->path2,
			    FS_PATH_MAX);
	if ((rc = sbx_connect(addr, &c, err)) < 0)
		return rc;
	if ((rc = proto_fs_req_put(sbx_txbuf(c), r)) < 0) {
		sbx_close(c);
		return sbx_fail(err, rc, "cannot encode the %s request", proto_type_name(r->type));
	}
	*out = c;
	return 0;
}

/* Asks for a deeper send buffer: SO_SNDBUF is capped by net.core.wmem_max,
 * SO_SNDBUFFORCE (root) is not. Best effort. */
static void deep_sndbuf(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

/* The next frame; checks the cancel flag while waiting. */
static int recv_frame(struct sbx_conn *c, struct frame *f, const struct sbx_fs_opts *o,
		      struct sbx_error *err)
{
	for (;;) {
		int r;

		/* Checked before every frame: a steady stream never times out. */
		if (cancelled(o))
			return sbx_fail(err, EINTR, "interrupted");
		r = sbx_recv(c, f, o && o->cancel ? TICK_MS : -1, err);
		if (r != -EAGAIN)
			return r;
	}
}

/* After a failed send the agent has usually said why in an ERROR before
 * it closed: read that instead of reporting a lost connection. */
static int rescue_error(struct sbx_conn *c, int r, struct sbx_error *err)
{
	struct sbx_error e2;
	struct frame f;
	int r2;

	if (r != -EPIPE && r != -ECONNRESET)
		return r;
	buf_consume(sbx_txbuf(c), buf_len(sbx_txbuf(c)));
	r2 = sbx_recv(c, &f, 2000, &e2);
	if (r2 < 0 && r2 != -EPIPE && r2 != -EAGAIN) {
		if (err)
			*err = e2;
		return r2;
	}
	return r;
}

/* Sends queued output until less than `high` bytes wait, watching for an
 * early ERROR from the agent. */
static int push(struct sbx_conn *c, size_t high, const struct sbx_fs_opts *o,
		struct sbx_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = sbx_fd(c), .events = POLLIN | POLLOUT };
		struct frame f;
		bool want_write;
		int r = sbx_pump(c, &want_write, err);

		if (r < 0)
			return rescue_error(c, r, err);
		if ((r = sbx_next_frame(c, &f, err)) < 0)
			return r;
		if (r == 1)
			return sbx_fail(err, EPROTO, "unexpected %s frame from the agent during an upload",
				    proto_type_name(f.type));
		if (buf_len(sbx_txbuf(c)) < high)
			return 0;
		if (cancelled(o))
			return sbx_fail(err, EINTR, "interrupted");
		if (poll(&p, 1, TICK_MS) < 0 && errno != EINTR)
			return sbx_fail(err, errno, "poll");
	}
}

/* One request answered by one frame of type want (FT_OK usually). */
static int call(const char *addr, const struct fs_req *r, uint16_t want, struct frame *f,
		struct sbx_conn **keep, struct sbx_error *err)
{
	struct sbx_conn *c;
	int rc;

	if ((rc = start(addr, r, &c, err)) < 0)
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

/* ---- metadata ---- */

int sbx_fs_stat(const char *addr, const char *path, bool follow, const struct sbx_fs_opts *o,
		struct fs_stat *st, char *target, size_t target_size, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct proto_err pe;
	struct fs_req r;
	struct frame f;
	int rc;

	req_init(&r, FT_FS_STAT, path, o);
	req_flags(&r, follow ? 0 : FS_F_NOFOLLOW);
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
	req_init(&r, FT_FS_READDIR, path, o);
	req_flags(&r, with_stat ? FS_F_STAT : 0);
	if ((rc = start(addr, &r, &c, err)) < 0)
		goto out;
	for (;;) {
		if ((rc = recv_frame(c, &f, o, err)) < 0)
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
	if (proto_fs_end_decode(&f, &said, NULL, &dig, &pe) < 0 || said != count)
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

	req_init(&r, FT_FS_MKDIR, path, o);
	req_flags(&r, parents ? FS_F_MKDIRS : 0);
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

	req_init(&r, FT_FS_REMOVE, path, o);
	req_flags(&r, recursive ? FS_F_RECURSIVE : 0);
	return call_ok(addr, &r, err);
}

static int two_paths(const char *addr, uint16_t type, const char *a, const char *b,
		     uint32_t flags, const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	req_init(&r, type, a, o);
	r.path2 = (char *)b;
	req_flags(&r, flags);
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

	req_init(&r, FT_FS_CHMOD, path, o);
	r.mode = mode;
	r.have |= FS_HAVE(FS_MODE);
	return call_ok(addr, &r, err);
}

int sbx_fs_chown(const char *addr, const char *path, int64_t uid, int64_t gid, bool follow,
		 const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	req_init(&r, FT_FS_CHOWN, path, o);
	req_flags(&r, follow ? 0 : FS_F_NOFOLLOW);
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
	req_init(&r, FT_FS_SYMLINK, path, o);
	r.target = (char *)target;
	req_flags(&r, flags);
	return call_ok(addr, &r, err);
}

int sbx_fs_readlink(const char *addr, const char *path, char *out, size_t n,
		    const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	req_init(&r, FT_FS_READLINK, path, o);
	return call_path(addr, &r, out, n, err);
}

int sbx_fs_realpath(const char *addr, const char *path, char *out, size_t n,
		    const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	req_init(&r, FT_FS_REALPATH, path, o);
	return call_path(addr, &r, out, n, err);
}

int sbx_fs_truncate(const char *addr, const char *path, uint64_t length,
		    const struct sbx_fs_opts *o, struct sbx_error *err)
{
	struct fs_req r;

	req_init(&r, FT_FS_TRUNCATE, path, o);
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
	req_init(&r, FT_FS_LOCK, path, o);
	req_flags(&r, exclusive ? FS_F_EXCLUSIVE : 0);
	if ((rc = start(addr, &r, &c, err)) < 0)
		return rc;
	/* The agent answers once the lock is held, however long that is. */
	if ((rc = recv_frame(c, &f, o, err)) < 0) {
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

	req_init(&r, FT_FS_UTIMES, path, o);
	req_flags(&r, follow ? 0 : FS_F_NOFOLLOW);
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

	req_init(&r, FT_FS_MKTEMP, dir, o);
	r.prefix = (char *)prefix;
	r.suffix = (char *)suffix;
	req_flags(&r, directory ? FS_F_DIRECTORY : 0);
	return call_path(addr, &r, out, n, err);
}

/* ---- uploads ---- */

struct sbx_fs_writer {
	crypto_generichash_state h; /* first: it wants 64-byte alignment */
	struct sbx_conn *c;
	const struct sbx_fs_opts *o;
	bool verify;
	struct meter m;
	char path[FS_PATH_MAX + 1];
};

static void *zalloc64(size_t size)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, rounded);

	if (p)
		memset(p, 0, rounded);
	return p;
}

static void write_req(struct fs_req *r, const char *path, const struct sbx_write_opts *w,
		      const struct sbx_fs_opts *o)
{
	req_init(r, FT_FS_WRITE, path, o);
	if (!w)
		return;
	req_flags(r, w->flags);
	if (w->set_mode) {
		r->mode = w->mode;
		r->have |= FS_HAVE(FS_MODE);
	}
	if (w->set_uid) {
		r->uid = w->uid;
		r->have |= FS_HAVE(FS_UID);
	}
	if (w->set_gid) {
		r->gid = w->gid;
		r->have |= FS_HAVE(FS_GID);
	}
	if (w->set_times) {
		r->atime = w->atime;
		r->mtime = w->mtime;
		r->have |= FS_HAVE(FS_ATIME) | FS_HAVE(FS_MTIME);
	}
	if (w->has_size) {
		r->size = w->size;
		r->have |= FS_HAVE(FS_SIZE);
	}
	if (w->has_offset) {
		r->offset = w->offset;
		r->have |= FS_HAVE(FS_OFFSET);
	}
}

int sbx_fs_writer_open(const char *addr, const char *path, const struct sbx_write_opts *w,
		       const struct sbx_fs_opts *o, struct sbx_fs_writer **out,
		       struct sbx_error *err)
{
	struct sbx_fs_writer *wr = zalloc64(sizeof(*wr));
	struct fs_req r;
	int rc;

	if (!wr)
		return sbx_fail(err, ENOMEM, "out of memory");
	write_req(&r, path, w, o);
	if ((rc = start(addr, &r, &wr->c, err)) < 0) {
		free(wr);
		return rc;
	}
	deep_sndbuf(sbx_fd(wr->c), UP_SNDBUF);
	wr->o = o;
	wr->verify = !(o && o->no_verify);
	wr->m.o = o;
	wr->m.total = w && w->has_size ? w->size : 0;
	str_copy(wr->path, sizeof(wr->path), path);
	if (wr->verify)
		crypto_generichash_init(&wr->h, NULL, 0, FS_DIGEST_LEN);
	*out = wr;
	return 0;
}

/* Queues one DATA frame of len bytes that the caller puts at p. */
static uint8_t *data_frame(struct sbx_fs_writer *wr, size_t len, struct sbx_error *err, int *rc)
{
	struct buf *tx = sbx_txbuf(wr->c);

	*rc = push(wr->c, TX_HIGH - (PROTO_HDR_LEN + UP_CHUNK), wr->o, err);
	if (*rc < 0)
		return NULL;
	if ((*rc = buf_reserve(tx, PROTO_HDR_LEN + len)) < 0) {
		*rc = sbx_fail(err, *rc, "out of memory");
		return NULL;
	}
	return buf_tail(tx) + PROTO_HDR_LEN;
}

static void data_commit(struct sbx_fs_writer *wr, size_t len)
{
	struct buf *tx = sbx_txbuf(wr->c);

	if (wr->verify)
		crypto_generichash_update(&wr->h, buf_tail(tx) + PROTO_HDR_LEN, len);
	proto_hdr_put(buf_tail(tx), FT_FS_DATA, (uint32_t)len);
	buf_commit(tx, PROTO_HDR_LEN + len);
	meter_add(&wr->m, len, false);
}

int sbx_fs_writer_write(struct sbx_fs_writer *wr, const void *data, size_t len,
			struct sbx_error *err)
{
	const uint8_t *p = data;

	while (len) {
		size_t n = MIN(len, (size_t)UP_CHUNK);
		uint8_t *dst;
		int rc;

		if (!(dst = data_frame(wr, n, err, &rc)))
			return rc;
		memcpy(dst, p, n);
		data_commit(wr, n);
		p += n;
		len -= n;
	}
	return 0;
}

/* Reads fd to its end into DATA frames. */
static int writer_from_fd(struct sbx_fs_writer *wr, int fd, struct sbx_error *err)
{
	for (;;) {
		uint8_t *dst;
		ssize_t n;
		int rc;

		if (!(dst = data_frame(wr, UP_CHUNK, err, &rc)))
			return rc;
		n = read(fd, dst, UP_CHUNK);
		if (n < 0 && errno == EINTR) {
			if (cancelled(wr->o))
				return sbx_fail(err, EINTR, "interrupted");
			continue;
		}
		if (n < 0)
			return sbx_fail(err, errno, "cannot read the data to upload: %s", strerror(errno));
		if (n == 0)
			return 0;
		data_commit(wr, (size_t)n);
	}
}

int sbx_fs_writer_close(struct sbx_fs_writer *wr, struct sbx_xfer *x, struct sbx_error *err)
{
	uint8_t digest[FS_DIGEST_LEN];
	struct frame f;
	int rc;

	if (wr->verify)
		crypto_generichash_final(&wr->h, digest, sizeof(digest));
	rc = proto_fs_end_put(sbx_txbuf(wr->c), wr->m.done, wr->verify ? digest : NULL);
	if (rc < 0)
		rc = sbx_fail(err, rc, "cannot encode an END frame");
	/* sbx_recv sends what is queued while it waits for the answer. */
	else if ((rc = recv_frame(wr->c, &f, wr->o, err)) < 0)
		rc = rescue_error(wr->c, rc, err);
	else if (f.type != FT_OK)
		rc = sbx_fail(err, EPROTO, "the agent answered FS_END with %s", proto_type_name(f.type));
	if (rc == 0) {
		meter_add(&wr->m, 0, true);
		if (x) {
			memset(x, 0, sizeof(*x));
			x->bytes = wr->m.done;
			x->verified = wr->verify;
			if (wr->verify)
				memcpy(x->digest, digest, sizeof(digest));
		}
	}
	sbx_close(wr->c);
	free(wr);
	return rc;
}

void sbx_fs_writer_abort(struct sbx_fs_writer *wr)
{
	if (!wr)
		return;
	/* Closing without END: the agent drops the temporary file. */
	sbx_close(wr->c);
	free(wr);
}

int sbx_fs_write_fd(const char *addr, int fd, const char *path, const struct sbx_write_opts *w,
		    const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err)
{
	struct sbx_write_opts wo = w ? *w : (struct sbx_write_opts){ 0 };
	struct sbx_fs_writer *wr;
	struct stat st;
	int rc;

	/* A regular file's size lets the agent refuse what cannot fit
	 * before a byte is sent. */
	if (!wo.has_size && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(fd, 0, SEEK_CUR);

		wo.has_size = true;
		wo.size = (uint64_t)(st.st_size - (pos > 0 ? pos : 0));
	}
	if ((rc = sbx_fs_writer_open(addr, path, &wo, o, &wr, err)) < 0)
		return rc;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((rc = writer_from_fd(wr, fd, err)) < 0) {
		sbx_fs_writer_abort(wr);
		return rc;
	}
	return sbx_fs_writer_close(wr, x, err);
}

int sbx_fs_write_buf(const char *addr, const void *data, size_t len, const char *path,
		     const struct sbx_write_opts *w, const struct sbx_fs_opts *o,
		     struct sbx_error *err)
{
	struct sbx_write_opts wo = w ? *w : (struct sbx_write_opts){ 0 };
	struct sbx_fs_writer *wr;
	int rc;

	wo.has_size = true;
	wo.size = len;
	if ((rc = sbx_fs_writer_open(addr, path, &wo, o, &wr, err)) < 0)
		return rc;
	if ((rc = sbx_fs_writer_write(wr, data, len, err)) < 0) {
		sbx_fs_writer_abort(wr);
		return rc;
	}
	return sbx_fs_writer_close(wr, NULL, err);
}

/* ---- downloads ---- */

/* Receives one body (DATA... END) into fd; hash as it comes. No more
 * than the agent announced: a body that goes on past it is refused, so a
 * hostile agent cannot fill the disk behind a small size. */
struct body {
	crypto_generichash_state h; /* first: it wants 64-byte alignment */
	bool verify;
	uint64_t bytes;
	uint64_t limit;
	uint8_t digest[FS_DIGEST_LEN];
};

/* What the agent may send for a file whose stat said size (from offset,
 * at most length when length >= 0): it sends no more (fs/send.c). */
static uint64_t body_limit(uint64_t size, uint64_t offset, int64_t length)
{
	uint64_t n;

	if (size == 0)
		return FS_PSEUDO_MAX; /* /proc, /sys: the size says nothing */
	n = size > offset ? size - offset : 0;
	return length >= 0 && (uint64_t)length < n ? (uint64_t)length : n;
}

static int body_start(struct body *b, bool verify, uint64_t limit)
{
	b->verify = verify;
	b->bytes = 0;
	b->limit = limit;
	if (verify)
		crypto_generichash_init(&b->h, NULL, 0, FS_DIGEST_LEN);
	return 0;
}

/* Handles one frame of a body: 0 more to come, 1 the END was checked. */
static int body_frame(struct body *b, const struct frame *f, int fd, struct meter *m,
		      const char *what, struct sbx_error *err)
{
	uint8_t want[FS_DIGEST_LEN];
	struct proto_err pe;
	uint64_t count;
	bool has;
	int rc;

	if (f->type == FT_FS_DATA) {
		if (f->len > b->limit - b->bytes)
			return sbx_fail(err, EPROTO, "%s: the agent sent more than the %llu bytes it "
					"announced", what, (unsigned long long)b->limit);
		if (fd >= 0 && (rc = fd_write_all(fd, f->payload, f->len)) < 0)
			return sbx_fail(err, rc, "cannot write %s: %s", what, strerror(-rc));
		if (b->verify)
			crypto_generichash_update(&b->h, f->payload, f->len);
		b->bytes += f->len;
		if (m)
			meter_add(m, f->len, false);
		return 0;
	}
	if (proto_fs_end_decode(f, &count, want, &has, &pe) < 0)
		return sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
	if (count != b->bytes)
		return sbx_fail(err, EPROTO, "%s: the agent sent %llu bytes but says %llu", what,
			    (unsigned long long)b->bytes, (unsigned long long)count);
	if (b->verify) {
		if (!has)
			return sbx_fail(err, EPROTO, "%s: the agent sent no digest", what);
		crypto_generichash_final(&b->h, b->digest, sizeof(b->digest));
		if (sodium_memcmp(b->digest, want, sizeof(want)) != 0)
			return sbx_fail(err, EBADMSG,
				    "checksum mismatch: %s: the data was damaged on the way, or the "
				    "file changed while it was read", what);
	}
	return 1;
}

static int read_start(const char *addr, const char *path, uint64_t offset, int64_t length,
		      const struct sbx_fs_opts *o, struct sbx_conn **c, struct fs_stat *st,
		      struct sbx_error *err)
{
	struct proto_err pe;
	struct fs_req r;
	struct frame f;
	int rc;

	req_init(&r, FT_FS_READ, path, o);
	if (offset) {
		r.offset = offset;
		r.have |= FS_HAVE(FS_OFFSET);
	}
	if (length >= 0) {
		r.length = (uint64_t)length;
		r.have |= FS_HAVE(FS_LENGTH);
	}
	if ((rc = start(addr, &r, c, err)) < 0)
		return rc;
	if ((rc = recv_frame(*c, &f, o, err)) == 0 &&
	    proto_fs_stat_ok_decode(&f, st, NULL, 0, &pe) < 0)
		rc = sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
	if (rc < 0)
		sbx_close(*c);
	return rc;
}

static int read_body(struct sbx_conn *c, int fd, const char *what, uint64_t limit,
		     const struct sbx_fs_opts *o, struct meter *m, struct sbx_xfer *x,
		     struct sbx_error *err)
{
	struct body *b = zalloc64(sizeof(*b));
	struct frame f;
	int rc;

	if (!b)
		return sbx_fail(err, ENOMEM, "out of memory");
	body_start(b, !(o && o->no_verify), limit);
	do {
		if ((rc = recv_frame(c, &f, o, err)) < 0)
			break;
		if (f.type != FT_FS_DATA && f.type != FT_FS_END) {
			rc = sbx_fail(err, EPROTO, "unexpected %s frame in a file body",
				  proto_type_name(f.type));
			break;
		}
		rc = body_frame(b, &f, fd, m, what, err);
	} while (rc == 0);
	if (rc > 0) {
		rc = 0;
		meter_add(m, 0, true);
		if (x) {
			memset(x, 0, sizeof(*x));
			x->bytes = b->bytes;
			x->verified = b->verify;
			memcpy(x->digest, b->digest, sizeof(x->digest));
		}
	}
	free(b);
	return rc;
}

int sbx_fs_read_fd(const char *addr, const char *path, uint64_t offset, int64_t length, int fd,
		   const struct sbx_fs_opts *o, struct fs_stat *st, struct sbx_xfer *x,
		   struct sbx_error *err)
{
	struct meter m = { .o = o };
	struct fs_stat st0;
	struct sbx_conn *c;
	int rc;

	if ((rc = read_start(addr, path, offset, length, o, &c, &st0, err)) < 0)
		return rc;
	if (st)
		*st = st0;
	m.total = st0.size > offset ? st0.size - offset : 0;
	if (length >= 0 && (uint64_t)length < m.total)
		m.total = (uint64_t)length;
	rc = read_body(c, fd, path, body_limit(st0.size, offset, length), o, &m, x, err);
	sbx_close(c);
	return rc;
}

/* ---- local files that appear atomically ---- */

/* Splits a local path into its directory (opened) and last name. */
static int open_parent(const char *path, bool mkdirs, char name[NAME_MAX + 1],
		       struct sbx_error *err)
{
	char dir[PATH_MAX];
	size_t len = strlen(path), start;
	int fd;

	while (len > 1 && path[len - 1] == '/')
		len--;
	start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (len == 0 || start == len || len - start > NAME_MAX || len >= sizeof(dir))
		return sbx_fail(err, EINVAL, "not a file name: %s", path);
	memcpy(name, path + start, len - start);
	name[len - start] = '\0';
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return sbx_fail(err, EINVAL, "not a file name: %s", path);
	if (start == 0)
		str_copy(dir, sizeof(dir), ".");
	else if (start == 1)
		str_copy(dir, sizeof(dir), "/");
	else {
		memcpy(dir, path, start - 1);
		dir[start - 1] = '\0';
	}
	if (mkdirs) {
		/* mkdir -p */
		for (size_t i = 1; i <= strlen(dir); i++) {
			if (dir[i] != '/' && dir[i] != '\0')
				continue;
			char c = dir[i];

			dir[i] = '\0';
			if (mkdir(dir, 0777) < 0 && errno != EEXIST)
				return fail_path(err, errno, dir);
			dir[i] = c;
		}
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail_path(err, errno, dir);
	return fd;
}

/* This process's umask, without changing it (umask(2) would, for a
 * moment, in every thread): Linux 4.7 shows it in /proc/self/status. */
static mode_t process_umask(void)
{
	char line[128];
	unsigned u;
	mode_t m = 022;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f) {
		m = umask(022);
		umask(m);
		return m;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Umask: %o", &u) == 1) {
			m = (mode_t)(u & 0777);
			break;
		}
	}
	fclose(f);
	return m;
}

/* The permission bits a download keeps of the sandbox's (SBX_DL_*). */
static mode_t download_mask(uint32_t flags)
{
	if (!(flags & SBX_DL_PRESERVE))
		return 0777 & ~process_umask();
	return flags & SBX_DL_KEEP_SETID ? 07777 : 01777;
}

static struct timespec ts_of(const struct fs_time *t)
{
	return (struct timespec){ (time_t)t->sec, (long)t->nsec };
}

int sbx_fs_download(const char *addr, const char *remote, const char *local, uint32_t flags,
		    const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err)
{
	char name[NAME_MAX + 1];
	struct meter m = { .o = o };
	struct atomic_file a = { .fd = -1 };
	struct fs_stat st;
	struct stat lst;
	struct sbx_conn *c = NULL;
	int dfd, rc;

	if (stat(local, &lst) == 0 && S_ISDIR(lst.st_mode))
		return fail_path(err, EISDIR, local);
	if ((dfd = open_parent(local, false, name, err)) < 0)
		return dfd;
	if ((rc = atomic_open(&a, dfd, name)) < 0) {
		rc = fail_path(err, rc, local);
		goto out;
	}
	if ((rc = read_start(addr, remote, 0, -1, o, &c, &st, err)) < 0) {
		c = NULL;
		goto out;
	}
	m.total = st.size;
	if ((rc = read_body(c, a.fd, local, body_limit(st.size, 0, -1), o, &m, x, err)) < 0)
		goto out;
	if (fchmod(a.fd, st.mode & download_mask(flags)) < 0) {
		rc = fail_path(err, errno, local);
		goto out;
	}
	if (flags & SBX_DL_PRESERVE) {
		struct timespec ts[2] = { ts_of(&st.atime), ts_of(&st.mtime) };

		if (futimens(a.fd, ts) < 0) {
			rc = fail_path(err, errno, local);
			goto out;
		}
	}
	if ((rc = atomic_commit(&a, false, true, true)) < 0)
		rc = fail_path(err, rc, local);
out:
	atomic_abort(&a);
	sbx_close(c);
	close(dfd);
	return rc;
}

/* ---- trees: upload ---- */

struct lwalk {
	struct {
		DIR *d;
		size_t len;
	} stack[TREE_DEPTH_MAX];
	int depth;
	char rel[PATH_MAX];
	char root[PATH_MAX];
};

struct tree_up {
	struct sbx_fs_writer *wr; /* its connection carries the tree */
	struct lwalk *w;
	struct fs_tree_end t;
};

static void lwalk_close(struct lwalk *w)
{
	while (w->depth > 0)
		closedir(w->stack[--w->depth].d);
}

/* Sends ENTRY for rel (and the body of a regular file open at fd). */
static int up_entry(struct tree_up *u, const struct stat *st, int fd, const char *target,
		    struct sbx_error *err)
{
	struct sbx_fs_writer *wr = u->wr;
	uint8_t digest[FS_DIGEST_LEN];
	struct fs_stat fst = {
		.mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
		.size = (uint64_t)st->st_size, .nlink = st->st_nlink, .ino = st->st_ino,
		.dev = st->st_dev, .rdev = st->st_rdev, .blocks = (uint64_t)st->st_blocks,
		.atime = { st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec },
		.mtime = { st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec },
		.ctime = { st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec },
	};
	uint64_t before = wr->m.done;
	int rc;

	if ((rc = push(wr->c, TX_HIGH - (PROTO_HDR_LEN + UP_CHUNK), wr->o, err)) < 0)
		return rc;
	if ((rc = proto_fs_entry_put(sbx_txbuf(wr->c), u->w->rel, &fst, target)) < 0)
		return sbx_fail(err, rc, "cannot encode the entry %s", u->w->rel);
	u->t.entries++;
	if (fd < 0)
		return 0;
	if (wr->verify)
		crypto_generichash_init(&wr->h, NULL, 0, FS_DIGEST_LEN);
	rc = writer_from_fd(wr, fd, err);
	if (rc < 0)
		return rc;
	if (wr->verify)
		crypto_generichash_final(&wr->h, digest, sizeof(digest));
	u->t.bytes += wr->m.done - before;
	if ((rc = proto_fs_end_put(sbx_txbuf(wr->c), wr->m.done - before,
				   wr->verify ? digest : NULL)) < 0)
		return sbx_fail(err, rc, "cannot encode an END frame");
	return 0;
}

static int up_open_entry(struct tree_up *u, int dfd, const char *name, const char *shown,
			 bool follow, bool root, struct sbx_error *err)
{
	char target[PATH_MAX];
	struct stat st;
	int fd, rc;
	ssize_t n;

	if (fstatat(dfd, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT && !root ? 0 : fail_path(err, errno, shown);
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		if (u->w->depth == TREE_DEPTH_MAX)
			return sbx_fail(err, ELOOP, "directory tree too deep (more than %d levels): %s",
				    TREE_DEPTH_MAX, shown);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return fail_path(err, errno, shown);
		if ((rc = up_entry(u, &st, -1, NULL, err)) < 0) {
			close(fd);
			return rc;
		}
		u->w->stack[u->w->depth].d = fdopendir(fd);
		if (!u->w->stack[u->w->depth].d) {
			close(fd);
			return fail_path(err, errno, shown);
		}
		u->w->stack[u->w->depth++].len = strlen(u->w->rel);
		return 0;
	case S_IFREG:
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return fail_path(err, errno, shown);
		if (fstat(fd, &st) < 0) {
			rc = fail_path(err, errno, shown);
		} else {
			u->wr->m.total += (uint64_t)st.st_size;
			rc = up_entry(u, &st, fd, NULL, err);
		}
		close(fd);
		return rc;
	case S_IFLNK:
		n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n <= 0)
			return fail_path(err, n < 0 ? errno : EINVAL, shown);
		target[n] = '\0';
		return up_entry(u, &st, -1, target, err);
	default:
		if (root)
			return sbx_fail(err, EINVAL, "not a directory, regular file or symbolic link: %s",
				    shown);
		u->t.skipped++;
		return 0;
	}
}

static int up_walk(struct tree_up *u, const char *local, struct sbx_error *err)
{
	struct lwalk *w = u->w;
	char shown[PATH_MAX + NAME_MAX + 2];
	int rc;

	w->rel[0] = '\0';
	if ((rc = up_open_entry(u, AT_FDCWD, local, local, true, true, err)) < 0)
		return rc;
	while (w->depth > 0) {
		struct dirent *de;
		size_t len = w->stack[w->depth - 1].len;

		if (cancelled(u->wr->o))
			return sbx_fail(err, EINTR, "interrupted");
		errno = 0;
		de = readdir(w->stack[w->depth - 1].d);
		if (!de) {
			if (errno)
				return fail_path(err, errno, local);
			closedir(w->stack[--w->depth].d);
			continue;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(w->rel + len, sizeof(w->rel) - len, "%s%s", len ? "/" : "",
			     de->d_name) >= (int)(sizeof(w->rel) - len) || strlen(w->rel) > FS_PATH_MAX)
			return sbx_fail(err, ENAMETOOLONG, "path too long: %s/%.64s...", local, w->rel);
		snprintf(shown, sizeof(shown), "%s/%s", local, w->rel);
		if ((rc = up_open_entry(u, dirfd(w->stack[w->depth - 1].d), de->d_name, shown,
					false, false, err)) < 0)
			return rc;
	}
	return 0;
}

int sbx_fs_upload_tree(const char *addr, const char *local, const char *remote, uint32_t flags,
		       const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err)
{
	struct tree_up u = { 0 };
	struct fs_req r;
	struct frame f;
	int rc;

	u.w = calloc(1, sizeof(*u.w));
	u.wr = zalloc64(sizeof(*u.wr));
	if (!u.w || !u.wr) {
		rc = sbx_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	req_init(&r, FT_FS_TREE_WRITE, remote, o);
	req_flags(&r, flags & (FS_F_CREATE_NEW | FS_F_MKDIRS));
	if ((rc = start(addr, &r, &u.wr->c, err)) < 0)
		goto out;
	deep_sndbuf(sbx_fd(u.wr->c), UP_SNDBUF);
	u.wr->o = o;
	u.wr->verify = !(o && o->no_verify);
	u.wr->m.o = o;
	if ((rc = up_walk(&u, local, err)) < 0)
		goto out;
	if ((rc = proto_fs_tree_end_put(sbx_txbuf(u.wr->c), &u.t)) < 0) {
		rc = sbx_fail(err, rc, "cannot encode a TREE_END frame");
		goto out;
	}
	if ((rc = recv_frame(u.wr->c, &f, o, err)) < 0) {
		rc = rescue_error(u.wr->c, rc, err);
		goto out;
	}
	if (f.type != FT_OK) {
		rc = sbx_fail(err, EPROTO, "the agent answered FS_TREE_END with %s",
			  proto_type_name(f.type));
		goto out;
	}
	meter_add(&u.wr->m, 0, true);
	if (x) {
		memset(x, 0, sizeof(*x));
		x->bytes = u.t.bytes;
		x->entries = u.t.entries;
		x->skipped = u.t.skipped;
		x->verified = u.wr->verify;
	}
out:
	if (u.w)
		lwalk_close(u.w);
	if (u.wr)
		sbx_close(u.wr->c);
	free(u.w);
	free(u.wr);
	return rc;
}

/* ---- trees: download ---- */

/* The writing is lib/tree.c's, as in the agent's FS_TREE_WRITE; this is
 * the protocol around it. */
struct tree_down {
	struct body b;           /* first: the hash state wants 64-byte alignment */
	struct sbx_conn *c;
	const struct sbx_fs_opts *o;
	struct tree_write w;
	struct fs_entry *cur;
	struct fs_tree_end t;
	struct meter m;
	char local[PATH_MAX];
	char where[PATH_MAX + FS_PATH_MAX + 2];
};

/* What a hostile agent could otherwise grow without end: the
 * directories whose modes are applied at the end, and their paths. */
#define DOWN_NAMES_MAX ((size_t)256 << 20)

static void set_where(struct tree_down *d, const char *rel)
{
	snprintf(d->where, sizeof(d->where), "%s%s%s", d->local, rel[0] ? "/" : "", rel);
}

static int down_file_end(struct tree_down *d)
{
	struct timespec times[2] = { ts_of(&d->cur->st.atime), ts_of(&d->cur->st.mtime) };

	d->t.bytes += d->b.bytes;
	return tree_write_file_end(&d->w, d->cur->st.mode, times);
}

static int down_finish(struct tree_down *d)
{
	int r = tree_write_finish(&d->w);

	if (r < 0)
		set_where(d, d->w.at);
	return r;
}

/* One frame of the tree stream: 0 more, 1 done, -errno (err filled). */
static int down_frame(struct tree_down *d, const struct frame *f, struct sbx_error *err)
{
	struct proto_err pe;
	struct fs_tree_end t;
	int r;

	switch (f->type) {
	case FT_FS_ENTRY:
		if (d->w.in_file)
			return sbx_fail(err, EPROTO, "the agent sent an entry inside a file");
		if (proto_fs_entry_decode(f, d->cur, &pe) < 0)
			return sbx_fail(err, pe.code, "bad tree entry from the agent: %s", pe.msg);
		if (!d->w.root_seen != !d->cur->path[0])
			return sbx_fail(err, EPROTO, "the agent's tree does not start with its root");
		d->t.entries++;
		set_where(d, d->cur->path);
		{
			const struct fs_entry *en = d->cur;
			struct timespec times[2] = { ts_of(&en->st.atime), ts_of(&en->st.mtime) };

			r = en->path[0] ? tree_write_child(&d->w, en->path, en->st.mode, en->target,
							   times) :
					  tree_write_root(&d->w, en->st.mode, en->target, times);
		}
		if (r == -E2BIG)
			return sbx_fail(err, E2BIG, "the agent sent more than %d directories",
					SBX_DL_DIRS_MAX);
		if (r == -EPROTO || r == -EINVAL)
			return sbx_fail(err, EPROTO, "the agent sent an entry that cannot be written: %s",
				    d->where);
		if (r < 0)
			return fail_path(err, r, d->where);
		if (d->w.in_file)
			body_start(&d->b, !(d->o && d->o->no_verify),
				   body_limit(d->cur->st.size, 0, -1));
		return 0;
	case FT_FS_DATA:
	case FT_FS_END:
		if (!d->w.in_file)
			return sbx_fail(err, EPROTO, "the agent sent file data outside a file");
		r = body_frame(&d->b, f, d->w.a.fd, &d->m, d->where, err);
		if (r <= 0)
			return r;
		if ((r = down_file_end(d)) < 0)
			return fail_path(err, r, d->where);
		return 0;
	case FT_FS_TREE_END:
		if (proto_fs_tree_end_decode(f, &t, &pe) < 0)
			return sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
		if (d->w.in_file || !d->w.root_seen || t.entries != d->t.entries ||
		    t.bytes != d->t.bytes)
			return sbx_fail(err, EPROTO, "the tree from the agent ended in the middle");
		d->t.skipped = t.skipped;
		if ((r = down_finish(d)) < 0)
			return fail_path(err, r, d->where);
		return 1;
	default:
		return sbx_fail(err, EPROTO, "unexpected %s frame in a tree", proto_type_name(f->type));
	}
}

int sbx_fs_download_tree(const char *addr, const char *remote, const char *local, uint32_t flags,
			 const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err)
{
	struct tree_down *d = zalloc64(sizeof(*d));
	char name[NAME_MAX + 1];
	struct fs_req r;
	struct frame f;
	int rc, pfd;

	if (!d || !(d->cur = malloc(sizeof(*d->cur)))) {
		free(d);
		return sbx_fail(err, ENOMEM, "out of memory");
	}
	d->o = o;
	d->m.o = o;
	tree_write_init(&d->w, SBX_DL_DIRS_MAX, DOWN_NAMES_MAX);
	d->w.mode_mask = download_mask(flags);
	d->w.create_new = flags & FS_F_CREATE_NEW;
	d->w.follow_dest = true;
	str_copy(d->local, sizeof(d->local), local);
	if ((pfd = open_parent(local, flags & FS_F_MKDIRS, name, err)) < 0) {
		rc = pfd;
		goto out;
	}
	if ((rc = tree_write_open(&d->w, pfd, name)) < 0) {
		rc = fail_path(err, rc, local);
		goto out;
	}
	req_init(&r, FT_FS_TREE_READ, remote, o);
	if ((rc = start(addr, &r, &d->c, err)) < 0)
		goto out;
	do {
		if ((rc = recv_frame(d->c, &f, o, err)) < 0)
			break;
		rc = down_frame(d, &f, err);
	} while (rc == 0);
	if (rc > 0) {
		rc = 0;
		meter_add(&d->m, 0, true);
		if (x) {
			memset(x, 0, sizeof(*x));
			x->bytes = d->t.bytes;
			x->entries = d->t.entries;
			x->skipped = d->t.skipped;
			x->verified = !(o && o->no_verify);
		}
	}
out:
	sbx_close(d->c);
	tree_write_free(&d->w);
	free(d->cur);
	free(d);
	return rc;
}
