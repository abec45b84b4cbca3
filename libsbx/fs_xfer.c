/* libsbx: what the file operations share (libsbx/fs_xfer.h): local
 * errors in the agent's wording, cancelling, progress, and a request's
 * connection: sent with the hello, read frame by frame, its queue pushed
 * out while the agent may still answer with an ERROR. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "libsbx/fs_xfer.h"

/* "no such file or directory: PATH", the agent's wording, for local
 * failures. */
int xfer_fail_path(struct sbx_error *err, int code, const char *path)
{
	char cause[128];

	if (code < 0)
		code = -code;
	return sbx_fail(err, code, "%s: %s", proto_fs_strerror(code, cause, sizeof(cause)), path);
}

bool xfer_cancelled(const struct sbx_fs_opts *o)
{
	return o && o->cancel && *o->cancel;
}

void xfer_meter_add(struct xfer_meter *m, uint64_t n, bool final)
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

void xfer_req_init(struct fs_req *r, uint16_t type, const char *path,
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

void xfer_req_flags(struct fs_req *r, uint32_t flags)
{
	r->flags |= flags;
	if (r->flags)
		r->have |= FS_HAVE(FS_FLAGS);
}

/* Connects and queues the request (sent with the hello, no round trip). */
int xfer_start(const char *addr, const struct fs_req *r, struct sbx_conn **out,
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
void xfer_deep_sndbuf(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

/* The next frame; checks the cancel flag while waiting. */
int xfer_recv_frame(struct sbx_conn *c, struct frame *f, const struct sbx_fs_opts *o,
		    struct sbx_error *err)
{
	for (;;) {
		int r;

		/* Checked before every frame: a steady stream never times out. */
		if (xfer_cancelled(o))
			return sbx_fail(err, EINTR, "interrupted");
		r = sbx_recv(c, f, o && o->cancel ? TICK_MS : -1, err);
		if (r != -EAGAIN)
			return r;
	}
}

/* After a failed send the agent has usually said why in an ERROR before
 * it closed: read that instead of reporting a lost connection. */
int xfer_rescue_error(struct sbx_conn *c, int r, struct sbx_error *err)
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
int xfer_push(struct sbx_conn *c, size_t high, const struct sbx_fs_opts *o,
	      struct sbx_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = sbx_fd(c), .events = POLLIN | POLLOUT };
		struct frame f;
		bool want_write;
		int r = sbx_pump(c, &want_write, err);

		if (r < 0)
			return xfer_rescue_error(c, r, err);
		if ((r = sbx_next_frame(c, &f, err)) < 0)
			return r;
		if (r == 1)
			return sbx_fail(err, EPROTO, "unexpected %s frame from the agent during an upload",
				    proto_type_name(f.type));
		if (buf_len(sbx_txbuf(c)) < high)
			return 0;
		if (xfer_cancelled(o))
			return sbx_fail(err, EINTR, "interrupted");
		if (poll(&p, 1, TICK_MS) < 0 && errno != EINTR)
			return sbx_fail(err, errno, "poll");
	}
}

void *xfer_zalloc64(size_t size)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, rounded);

	if (p)
		memset(p, 0, rounded);
	return p;
}
