/* libsbx: downloads. A body (DATA... END) is read into an fd and hashed
 * as it comes (on a second thread for a big body, lib/hasher.h), never past what the agent announced; a local file appears
 * atomically (a temporary beside it, then a rename), and keeps the
 * sandbox's modes only as far as SBX_DL_* says. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/atomic.h"
#include "lib/tree.h"
#include "lib/util.h"
#include "libsbx/fs_xfer.h"

/* What the agent may send for a file whose stat said size (from offset,
 * at most length when length >= 0): it sends no more (fs/send.c). */
uint64_t xfer_body_limit(uint64_t size, uint64_t offset, int64_t length)
{
	uint64_t n;

	if (size == 0)
		return FS_PSEUDO_MAX; /* /proc, /sys: the size says nothing */
	n = size > offset ? size - offset : 0;
	return length >= 0 && (uint64_t)length < n ? (uint64_t)length : n;
}

int xfer_body_start(struct xfer_body *b, const struct sbx_conn *c, bool verify, uint64_t limit)
{
	b->verify = verify;
	b->bytes = 0;
	b->limit = limit;
	hasher_close(&b->h);
	if (verify)
		hasher_init(&b->h, proto_fs_digest_len(c->version));
	return 0;
}

void xfer_body_close(struct xfer_body *b)
{
	hasher_close(&b->h);
}

/* Handles one frame of a body: 0 more to come, 1 the END was checked. */
int xfer_body_frame(struct xfer_body *b, const struct frame *f, int fd, struct xfer_meter *m,
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
			hasher_put(&b->h, f->payload, f->len);
		b->bytes += f->len;
		if (m)
			xfer_meter_add(m, f->len, false);
		return 0;
	}
	if (proto_fs_end_decode(f, b->h.digest_len, &count, want, &has, &pe) < 0)
		return sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
	if (count != b->bytes)
		return sbx_fail(err, EPROTO, "%s: the agent sent %llu bytes but says %llu", what,
			    (unsigned long long)b->bytes, (unsigned long long)count);
	if (b->verify) {
		if (!has)
			return sbx_fail(err, EPROTO, "%s: the agent sent no digest", what);
		hasher_final(&b->h, b->digest);
		if (sodium_memcmp(b->digest, want, b->h.digest_len) != 0)
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

	xfer_req_init(&r, FT_FS_READ, path, o);
	if (offset) {
		r.offset = offset;
		r.have |= FS_HAVE(FS_OFFSET);
	}
	if (length >= 0) {
		r.length = (uint64_t)length;
		r.have |= FS_HAVE(FS_LENGTH);
	}
	if ((rc = xfer_start(addr, &r, c, err)) < 0)
		return rc;
	if ((rc = xfer_recv_frame(*c, &f, o, err)) == 0 &&
	    proto_fs_stat_ok_decode(&f, st, NULL, 0, &pe) < 0)
		rc = sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
	if (rc < 0)
		sbx_close(*c);
	return rc;
}

static int read_body(struct sbx_conn *c, int fd, const char *what, uint64_t limit,
		     const struct sbx_fs_opts *o, struct xfer_meter *m, struct sbx_xfer *x,
		     struct sbx_error *err)
{
	struct xfer_body *b = xfer_zalloc64(sizeof(*b));
	struct frame f;
	int rc;

	if (!b)
		return sbx_fail(err, ENOMEM, "out of memory");
	xfer_body_start(b, c, !(o && o->no_verify), limit);
	do {
		if ((rc = xfer_recv_frame(c, &f, o, err)) < 0)
			break;
		if (f.type != FT_FS_DATA && f.type != FT_FS_END) {
			rc = sbx_fail(err, EPROTO, "unexpected %s frame in a file body",
				  proto_type_name(f.type));
			break;
		}
		rc = xfer_body_frame(b, &f, fd, m, what, err);
	} while (rc == 0);
	if (rc > 0) {
		rc = 0;
		xfer_meter_add(m, 0, true);
		if (x) {
			memset(x, 0, sizeof(*x));
			x->bytes = b->bytes;
			x->verified = b->verify;
			memcpy(x->digest, b->digest, sizeof(x->digest));
			x->digest_len = b->h.digest_len;
		}
	}
	xfer_body_close(b);
	free(b);
	return rc;
}

int sbx_fs_read_fd(const char *addr, const char *path, uint64_t offset, int64_t length, int fd,
		   const struct sbx_fs_opts *o, struct fs_stat *st, struct sbx_xfer *x,
		   struct sbx_error *err)
{
	struct xfer_meter m = { .o = o };
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
	rc = read_body(c, fd, path, xfer_body_limit(st0.size, offset, length), o, &m, x, err);
	sbx_close(c);
	return rc;
}

/* Splits a local path into its directory (opened) and last name. */
int xfer_open_parent(const char *path, bool mkdirs, char name[NAME_MAX + 1],
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
				return xfer_fail_path(err, errno, dir);
			dir[i] = c;
		}
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return xfer_fail_path(err, errno, dir);
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
mode_t xfer_download_mask(uint32_t flags)
{
	if (!(flags & SBX_DL_PRESERVE))
		return 0777 & ~process_umask();
	return flags & SBX_DL_KEEP_SETID ? 07777 : 01777;
}

struct timespec xfer_ts_of(const struct fs_time *t)
{
	return (struct timespec){ (time_t)t->sec, (long)t->nsec };
}

int sbx_fs_download(const char *addr, const char *remote, const char *local, uint32_t flags,
		    const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err)
{
	char name[NAME_MAX + 1];
	struct xfer_meter m = { .o = o };
	struct atomic_file a = { .fd = -1 };
	struct fs_stat st;
	struct stat lst;
	struct sbx_conn *c = NULL;
	int dfd, rc;

	if (stat(local, &lst) == 0 && S_ISDIR(lst.st_mode))
		return xfer_fail_path(err, EISDIR, local);
	if ((dfd = xfer_open_parent(local, false, name, err)) < 0)
		return dfd;
	if ((rc = atomic_open(&a, dfd, name)) < 0) {
		rc = xfer_fail_path(err, rc, local);
		goto out;
	}
	if ((rc = read_start(addr, remote, 0, -1, o, &c, &st, err)) < 0) {
		c = NULL;
		goto out;
	}
	m.total = st.size;
	if ((rc = read_body(c, a.fd, local, xfer_body_limit(st.size, 0, -1), o, &m, x, err)) < 0)
		goto out;
	if (fchmod(a.fd, st.mode & xfer_download_mask(flags)) < 0) {
		rc = xfer_fail_path(err, errno, local);
		goto out;
	}
	if (flags & SBX_DL_PRESERVE) {
		struct timespec ts[2] = { xfer_ts_of(&st.atime), xfer_ts_of(&st.mtime) };

		if (futimens(a.fd, ts) < 0) {
			rc = xfer_fail_path(err, errno, local);
			goto out;
		}
	}
	if ((rc = atomic_commit(&a, false, true, true)) < 0)
		rc = xfer_fail_path(err, rc, local);
out:
	atomic_abort(&a);
	sbx_close(c);
	close(dfd);
	return rc;
}
