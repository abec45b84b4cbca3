/* libsbx: trees. An upload walks the local tree without following links
 * and streams its entries and bodies on one FS_TREE_WRITE; a download
 * writes what FS_TREE_READ sends beneath its destination with lib/tree.c
 * (as the agent does), following no link, since what a sandbox sends is
 * not trusted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tree.h"
#include "lib/util.h"
#include "libsbx/fs_xfer.h"

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

	if ((rc = xfer_push(wr->c, TX_HIGH - (PROTO_HDR_LEN + UP_CHUNK), wr->o, err)) < 0)
		return rc;
	if ((rc = proto_fs_entry_put(sbx_txbuf(wr->c), u->w->rel, &fst, target)) < 0)
		return sbx_fail(err, rc, "cannot encode the entry %s", u->w->rel);
	u->t.entries++;
	if (fd < 0)
		return 0;
	if (wr->verify)
		hasher_init(&wr->h, proto_fs_digest_len(wr->c->version));
	rc = xfer_writer_from_fd(wr, fd, err);
	if (rc < 0)
		return rc;
	if (wr->verify)
		hasher_final(&wr->h, digest);
	u->t.bytes += wr->m.done - before;
	if ((rc = proto_fs_end_put(sbx_txbuf(wr->c), wr->m.done - before,
				   wr->verify ? digest : NULL, wr->h.digest_len)) < 0)
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
		return errno == ENOENT && !root ? 0 : xfer_fail_path(err, errno, shown);
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		if (u->w->depth == TREE_DEPTH_MAX)
			return sbx_fail(err, ELOOP, "directory tree too deep (more than %d levels): %s",
				    TREE_DEPTH_MAX, shown);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return xfer_fail_path(err, errno, shown);
		if ((rc = up_entry(u, &st, -1, NULL, err)) < 0) {
			close(fd);
			return rc;
		}
		u->w->stack[u->w->depth].d = fdopendir(fd);
		if (!u->w->stack[u->w->depth].d) {
			close(fd);
			return xfer_fail_path(err, errno, shown);
		}
		u->w->stack[u->w->depth++].len = strlen(u->w->rel);
		return 0;
	case S_IFREG:
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow ? 0 : O_NOFOLLOW));
		if (fd < 0)
			return xfer_fail_path(err, errno, shown);
		if (fstat(fd, &st) < 0) {
			rc = xfer_fail_path(err, errno, shown);
		} else {
			u->wr->m.total += (uint64_t)st.st_size;
			rc = up_entry(u, &st, fd, NULL, err);
		}
		close(fd);
		return rc;
	case S_IFLNK:
		n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n <= 0)
			return xfer_fail_path(err, n < 0 ? errno : EINVAL, shown);
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

		if (xfer_cancelled(u->wr->o))
			return sbx_fail(err, EINTR, "interrupted");
		errno = 0;
		de = readdir(w->stack[w->depth - 1].d);
		if (!de) {
			if (errno)
				return xfer_fail_path(err, errno, local);
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
	u.wr = xfer_zalloc64(sizeof(*u.wr));
	if (!u.w || !u.wr) {
		rc = sbx_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	xfer_req_init(&r, FT_FS_TREE_WRITE, remote, o);
	xfer_req_flags(&r, flags & (FS_F_CREATE_NEW | FS_F_MKDIRS));
	if ((rc = xfer_start(addr, &r, &u.wr->c, err)) < 0)
		goto out;
	xfer_deep_sndbuf(sbx_fd(u.wr->c), UP_SNDBUF);
	u.wr->o = o;
	u.wr->verify = !(o && o->no_verify);
	u.wr->m.o = o;
	/* The files' digests are the version's: HELLO_OK first. */
	if (u.wr->verify && (rc = sbx_hello_wait(u.wr->c, err)) < 0)
		goto out;
	if ((rc = up_walk(&u, local, err)) < 0)
		goto out;
	if ((rc = proto_fs_tree_end_put(sbx_txbuf(u.wr->c), &u.t)) < 0) {
		rc = sbx_fail(err, rc, "cannot encode a TREE_END frame");
		goto out;
	}
	if ((rc = xfer_recv_frame(u.wr->c, &f, o, err)) < 0) {
		rc = xfer_rescue_error(u.wr->c, rc, err);
		goto out;
	}
	if (f.type != FT_OK) {
		rc = sbx_fail(err, EPROTO, "the agent answered FS_TREE_END with %s",
			  proto_type_name(f.type));
		goto out;
	}
	xfer_meter_add(&u.wr->m, 0, true);
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
	if (u.wr) {
		hasher_close(&u.wr->h);
		sbx_close(u.wr->c);
	}
	free(u.w);
	free(u.wr);
	return rc;
}

/* ---- trees: download ---- */

/* The writing is lib/tree.c's, as in the agent's FS_TREE_WRITE; this is
 * the protocol around it. */
struct tree_down {
	struct xfer_body b;           /* first: the hash state wants 64-byte alignment */
	struct sbx_conn *c;
	const struct sbx_fs_opts *o;
	struct tree_write w;
	struct fs_entry *cur;
	struct fs_tree_end t;
	struct xfer_meter m;
	char local[PATH_MAX];
	char where[PATH_MAX + FS_PATH_MAX + 2];
};

/* What a hostile agent could otherwise grow without end: the
 * directories whose modes are applied at the end, and their paths. */
#define DOWN_NAMES_MAX ((size_t)256 << 20)

size_t sbx_dl_dirs_max = SBX_DL_DIRS_MAX;

static void set_where(struct tree_down *d, const char *rel)
{
	snprintf(d->where, sizeof(d->where), "%s%s%s", d->local, rel[0] ? "/" : "", rel);
}

static int down_file_end(struct tree_down *d)
{
	struct timespec times[2] = { xfer_ts_of(&d->cur->st.atime), xfer_ts_of(&d->cur->st.mtime) };

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
			struct timespec times[2] = { xfer_ts_of(&en->st.atime), xfer_ts_of(&en->st.mtime) };

			r = en->path[0] ? tree_write_child(&d->w, en->path, en->st.mode, en->target,
							   times) :
					  tree_write_root(&d->w, en->st.mode, en->target, times);
		}
		if (r == -E2BIG)
			return sbx_fail(err, E2BIG, "the agent sent more than %zu directories",
					sbx_dl_dirs_max);
		if (r == -EPROTO || r == -EINVAL)
			return sbx_fail(err, EPROTO, "the agent sent an entry that cannot be written: %s",
				    d->where);
		if (r < 0)
			return xfer_fail_path(err, r, d->where);
		if (d->w.in_file)
			xfer_body_start(&d->b, d->c, !(d->o && d->o->no_verify),
					xfer_body_limit(d->cur->st.size, 0, -1));
		return 0;
	case FT_FS_DATA:
	case FT_FS_END:
		if (!d->w.in_file)
			return sbx_fail(err, EPROTO, "the agent sent file data outside a file");
		r = xfer_body_frame(&d->b, f, d->w.a.fd, &d->m, d->where, err);
		if (r <= 0)
			return r;
		if ((r = down_file_end(d)) < 0)
			return xfer_fail_path(err, r, d->where);
		return 0;
	case FT_FS_TREE_END:
		if (proto_fs_tree_end_decode(f, &t, &pe) < 0)
			return sbx_fail(err, pe.code, "bad answer from the agent: %s", pe.msg);
		if (d->w.in_file || !d->w.root_seen || t.entries != d->t.entries ||
		    t.bytes != d->t.bytes)
			return sbx_fail(err, EPROTO, "the tree from the agent ended in the middle");
		d->t.skipped = t.skipped;
		if ((r = down_finish(d)) < 0)
			return xfer_fail_path(err, r, d->where);
		return 1;
	default:
		return sbx_fail(err, EPROTO, "unexpected %s frame in a tree", proto_type_name(f->type));
	}
}

int sbx_fs_download_tree(const char *addr, const char *remote, const char *local, uint32_t flags,
			 const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err)
{
	struct tree_down *d = xfer_zalloc64(sizeof(*d));
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
	tree_write_init(&d->w, sbx_dl_dirs_max, DOWN_NAMES_MAX);
	d->w.mode_mask = xfer_download_mask(flags);
	d->w.create_new = flags & FS_F_CREATE_NEW;
	d->w.follow_dest = true;
	str_copy(d->local, sizeof(d->local), local);
	if ((pfd = xfer_open_parent(local, flags & FS_F_MKDIRS, name, err)) < 0) {
		rc = pfd;
		goto out;
	}
	if ((rc = tree_write_open(&d->w, pfd, name)) < 0) {
		rc = xfer_fail_path(err, rc, local);
		goto out;
	}
	xfer_req_init(&r, FT_FS_TREE_READ, remote, o);
	if ((rc = xfer_start(addr, &r, &d->c, err)) < 0)
		goto out;
	do {
		if ((rc = xfer_recv_frame(d->c, &f, o, err)) < 0)
			break;
		rc = down_frame(d, &f, err);
	} while (rc == 0);
	if (rc > 0) {
		rc = 0;
		xfer_meter_add(&d->m, 0, true);
		if (x) {
			memset(x, 0, sizeof(*x));
			x->bytes = d->t.bytes;
			x->entries = d->t.entries;
			x->skipped = d->t.skipped;
			x->verified = !(o && o->no_verify);
		}
	}
out:
	xfer_body_close(&d->b);
	sbx_close(d->c);
	tree_write_free(&d->w);
	free(d->cur);
	free(d);
	return rc;
}
