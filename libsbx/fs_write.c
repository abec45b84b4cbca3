/* libsbx: uploads. A writer streams DATA frames of UP_CHUNK bytes,
 * hashed as they are queued (on a second thread for a big body,
 * lib/hasher.h), and ends with the digest; the queue is kept
 * short so memory stays bounded while the socket is the bottleneck. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "libsbx/fs_xfer.h"

static void write_req(struct fs_req *r, const char *path, const struct sbx_write_opts *w,
		      const struct sbx_fs_opts *o)
{
	xfer_req_init(r, FT_FS_WRITE, path, o);
	if (!w)
		return;
	xfer_req_flags(r, w->flags);
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
	struct sbx_fs_writer *wr = xfer_zalloc64(sizeof(*wr));
	struct fs_req r;
	int rc;

	if (!wr)
		return sbx_fail(err, ENOMEM, "out of memory");
	write_req(&r, path, w, o);
	if ((rc = xfer_start(addr, &r, &wr->c, err)) < 0) {
		free(wr);
		return rc;
	}
	xfer_deep_sndbuf(sbx_fd(wr->c), UP_SNDBUF);
	wr->o = o;
	wr->verify = !(o && o->no_verify);
	wr->m.o = o;
	wr->m.total = w && w->has_size ? w->size : 0;
	str_copy(wr->path, sizeof(wr->path), path);
	/* The digest is the version's: a verified upload waits for HELLO_OK
	 * (one round trip) before its first byte. */
	if (wr->verify) {
		if ((rc = sbx_hello_wait(wr->c, err)) < 0) {
			sbx_close(wr->c);
			free(wr);
			return rc;
		}
		hasher_init(&wr->h, proto_fs_digest_len(wr->c->version));
	}
	*out = wr;
	return 0;
}

/* Queues one DATA frame of len bytes that the caller puts at p. */
static uint8_t *data_frame(struct sbx_fs_writer *wr, size_t len, struct sbx_error *err, int *rc)
{
	struct buf *tx = sbx_txbuf(wr->c);

	*rc = xfer_push(wr->c, TX_HIGH - (PROTO_HDR_LEN + UP_CHUNK), wr->o, err);
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
		hasher_put(&wr->h, buf_tail(tx) + PROTO_HDR_LEN, len);
	proto_hdr_put(buf_tail(tx), FT_FS_DATA, (uint32_t)len);
	buf_commit(tx, PROTO_HDR_LEN + len);
	xfer_meter_add(&wr->m, len, false);
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
int xfer_writer_from_fd(struct sbx_fs_writer *wr, int fd, struct sbx_error *err)
{
	for (;;) {
		uint8_t *dst;
		ssize_t n;
		int rc;

		if (!(dst = data_frame(wr, UP_CHUNK, err, &rc)))
			return rc;
		n = read(fd, dst, UP_CHUNK);
		if (n < 0 && errno == EINTR) {
			if (xfer_cancelled(wr->o))
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
		hasher_final(&wr->h, digest);
	rc = proto_fs_end_put(sbx_txbuf(wr->c), wr->m.done, wr->verify ? digest : NULL,
			      wr->h.digest_len);
	if (rc < 0)
		rc = sbx_fail(err, rc, "cannot encode an END frame");
	/* sbx_recv sends what is queued while it waits for the answer. */
	else if ((rc = xfer_recv_frame(wr->c, &f, wr->o, err)) < 0)
		rc = xfer_rescue_error(wr->c, rc, err);
	else if (f.type != FT_OK)
		rc = sbx_fail(err, EPROTO, "the agent answered FS_END with %s", proto_type_name(f.type));
	if (rc == 0) {
		xfer_meter_add(&wr->m, 0, true);
		if (x) {
			memset(x, 0, sizeof(*x));
			x->bytes = wr->m.done;
			x->verified = wr->verify;
			if (wr->verify) {
				memcpy(x->digest, digest, sizeof(digest));
				x->digest_len = wr->h.digest_len;
			}
		}
	}
	hasher_close(&wr->h);
	sbx_close(wr->c);
	free(wr);
	return rc;
}

void sbx_fs_writer_abort(struct sbx_fs_writer *wr)
{
	if (!wr)
		return;
	/* Closing without END: the agent drops the temporary file. */
	hasher_close(&wr->h);
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
	if ((rc = xfer_writer_from_fd(wr, fd, err)) < 0) {
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
