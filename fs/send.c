/* Sending a file body: DATA frames, then END with the byte count and the
 * digest (XXH3-128, or BLAKE2b-256 for a client of protocol version 1).
 * The bytes go file -> pipe -> socket with splice(2), so the agent never
 * copies them (to a vsock client the pipe is read into the output queue
 * instead: conn_send_spliced in conn/conn.c says why); it hashes the same
 * range, once spliced, by reading it into a small buffer that stays in
 * the CPU cache, or for a big BLAKE2b body into the hasher's ring, hashed
 * on a second thread (lib/hasher.h). If another process changes the file
 * meanwhile, the digest and the bytes can disagree and the client reports
 * a mismatch; a file of known size that ends early is this end's error
 * (fs_sender_err). docs/protocol/files.md, "Integrity", says what that
 * guarantees and what not. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#define PIPE_WANT (1024 * 1024)
#define SNDBUF_WANT (1024 * 1024)
/* Copying (no splice) goes through the output queue; staying within its
 * small size keeps the queue from being freed and reallocated. */
#define COPY_CHUNK (64 * 1024 - PROTO_HDR_LEN)
#define HASH_BUF (64 * 1024)
/* Frames per turn before letting other connections run. */
#define BUDGET 16

static uint8_t hash_buf[HASH_BUF];

void fs_sender_init(struct fs_sender *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->pipe[0] = s->pipe[1] = -1;
}

uint64_t fs_send_len(const struct stat *st, uint64_t off, uint64_t len)
{
	uint64_t n = FS_PSEUDO_MAX;

	if (st->st_size > 0)
		n = (uint64_t)st->st_size > off ? (uint64_t)st->st_size - off : 0;
	return MIN(n, len);
}

int fs_sender_start(struct fs_sender *s, int fd, uint64_t off, uint64_t len, bool verify,
		    const struct conn *c)
{
	struct stat st;

	hasher_close(&s->h);
	fd_close(&s->fd);
	s->fd = fd;
	s->off = off;
	s->left = len;
	s->sent = 0;
	s->verify = verify;
	s->active = true;
	s->use_splice = false;
	s->size = 0;
	if (verify)
		fs_hash_init(&s->h, c);
	if (fstat(fd, &st) < 0)
		return 0;
	s->size = S_ISREG(st.st_mode) && st.st_size > 0 ? (uint64_t)st.st_size : 0;
	/* Small files are cheaper to copy than to splice. */
	if (!S_ISREG(st.st_mode) || len <= COPY_CHUNK ||
	    (uint64_t)st.st_size <= off + COPY_CHUNK)
		return 0;
	if (s->pipe[0] < 0 && pipe2(s->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		int size = fcntl(s->pipe[1], F_SETPIPE_SZ, PIPE_WANT);

		if (size < 0)
			size = fcntl(s->pipe[1], F_GETPIPE_SZ);
		s->chunk = size > 0 ? MIN((size_t)size, (size_t)PROTO_FRAME_MAX) : 65536;
	}
	s->use_splice = s->pipe[0] >= 0;
	return 0;
}

/* A body that ends early because its file shrank meanwhile: what was
 * sent is none of the file's versions whole, and a verified body says
 * so. A file that is as long as it was (sysfs says 4096 bytes of every
 * attribute) only said a size it does not have: its END goes as before. */
static bool shrank(const struct fs_sender *s)
{
	struct stat st;

	return s->size && fstat(s->fd, &st) == 0 && (uint64_t)st.st_size < s->size;
}

/* Hashes [off, off + n) of the file: read straight into the hasher's
 * ring when it has a thread, else through a small buffer. */
static int hash_range(struct fs_sender *s, uint64_t off, size_t n)
{
	while (n) {
		size_t want;
		uint8_t *dst = hasher_reserve(&s->h, n, &want);
		ssize_t got;

		if (!dst) {
			dst = hash_buf;
			want = MIN(n, sizeof(hash_buf));
		}
		got = pread(s->fd, dst, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0) /* truncated after the bytes were spliced? */
			return shrank(s) ? FS_SHRANK : -EIO;
		if (dst == hash_buf)
			hasher_put(&s->h, hash_buf, (size_t)got);
		else
			hasher_commit(&s->h, (size_t)got);
		off += (uint64_t)got;
		n -= (size_t)got;
	}
	return 0;
}

static long send_spliced(struct fs_sender *s, struct conn *c, size_t want)
{
	loff_t off = (loff_t)s->off;
	ssize_t n = splice(s->fd, &off, s->pipe[1], NULL, MIN(want, s->chunk),
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	int r;

	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (s->verify && (r = hash_range(s, s->off, (size_t)n)) < 0)
		return r;
	if ((r = conn_send_spliced(c, FT_FS_DATA, s->pipe[0], (size_t)n)) < 0)
		return r;
	return n;
}

static long send_copied(struct fs_sender *s, struct conn *c, size_t want)
{
	struct buf *tx = conn_txbuf(c);
	size_t len = MIN(want, (size_t)COPY_CHUNK);
	ssize_t n;
	int r;

	if ((r = buf_reserve(tx, PROTO_HDR_LEN + len)) < 0)
		return r;
	do
		n = pread(s->fd, buf_tail(tx) + PROTO_HDR_LEN, len, (off_t)s->off);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ESPIPE) /* not seekable: /proc and friends */
		n = read(s->fd, buf_tail(tx) + PROTO_HDR_LEN, len);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	if (s->verify)
		hasher_put(&s->h, buf_tail(tx) + PROTO_HDR_LEN, (size_t)n);
	proto_hdr_put(buf_tail(tx), FT_FS_DATA, (uint32_t)n);
	buf_commit(tx, PROTO_HDR_LEN + (size_t)n);
	conn_flush(c);
	return n;
}

static int send_end(struct fs_sender *s, struct conn *c)
{
	uint8_t digest[FS_DIGEST_LEN];
	int r;

	if (s->verify)
		hasher_final(&s->h, digest);
	r = proto_fs_end_put(conn_txbuf(c), s->sent, s->verify ? digest : NULL, s->h.digest_len);
	if (r < 0)
		return r;
	s->active = false;
	fd_close(&s->fd);
	conn_flush(c);
	return 1;
}

int fs_sender_pump(struct fs_sender *s, struct conn *c)
{
	for (int i = 0; i < BUDGET; i++) {
		size_t want;
		long n;

		if (!conn_tx_idle(c))
			return 0;
		want = (size_t)MIN(s->left, (uint64_t)PROTO_FRAME_MAX);
		if (want == 0)
			return send_end(s, c);
		if (s->use_splice) {
			n = send_spliced(s, c, want);
			if (n == -EINVAL || n == -ENOSYS) {
				/* This file system cannot splice: copy. */
				s->use_splice = false;
				n = send_copied(s, c, want);
			}
		} else {
			n = send_copied(s, c, want);
		}
		if (n < 0)
			return (int)n;
		if (n == 0 && s->verify && shrank(s))
			return FS_SHRANK;
		if (n == 0)
			return send_end(s, c);
		s->off += (uint64_t)n;
		s->sent += (uint64_t)n;
		if (s->left != UINT64_MAX)
			s->left -= (uint64_t)n;
	}
	return conn_tx_idle(c) ? 2 : 0;
}

void fs_sender_deepen(struct conn *c)
{
	int bytes = SNDBUF_WANT;

	/* SO_SNDBUF is capped by net.core.wmem_max; the agent runs as root
	 * and may exceed it. */
	if (setsockopt(c->w.fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(c->w.fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

int fs_sender_err(struct proto_err *e, int err, const char *fmt, ...)
{
	char what[PROTO_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err == FS_SHRANK)
		return proto_fail(e, EBADMSG, "file changed while it was read (it shrank): %s",
				  what);
	return fs_err(e, err, "%s", what);
}

void fs_sender_close(struct fs_sender *s)
{
	hasher_close(&s->h);
	fd_close(&s->fd);
	fd_close(&s->pipe[0]);
	fd_close(&s->pipe[1]);
	s->active = false;
}
