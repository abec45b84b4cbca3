/* Paths in the sandbox: where relative paths start, splitting and
 * following them, making parents, and walking a received tree without
 * ever following a symbolic link out of it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/internal.h"
#include "lib/config.h"
#include "lib/user.h"
#include "lib/util.h"

#define FOLLOW_MAX 40 /* as the kernel's own limit on a path walk */

int fs_sandbox_dir(const struct config *cfg, char *out, size_t n)
{
	struct user u;

	if (cfg->workdir[0])
		return str_copy(out, n, cfg->workdir);
	if (user_lookup(cfg->user, &u) < 0)
		return str_copy(out, n, "/");
	return str_copy(out, n, u.home);
}

int fs_path_join(const char *base, const char *path, char *out, size_t n)
{
	int len;

	if (!path[0])
		return -EINVAL;
	if (path[0] == '/')
		len = snprintf(out, n, "%s", path);
	else
		len = snprintf(out, n, "%s/%s", strcmp(base, "/") ? base : "", path);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int fs_path_resolve(const struct config *cfg, const char *path, char *out, size_t n)
{
	char base[PATH_MAX];
	int r;

	if (!path[0])
		return -EINVAL;
	if (path[0] == '/')
		return fs_path_join("/", path, out, n);
	if ((r = fs_sandbox_dir(cfg, base, sizeof(base))) < 0)
		return r;
	return fs_path_join(base, path, out, n);
}

int fs_path_split(const char *path, char *dir, size_t dirn, char *name, size_t namen)
{
	size_t len = strlen(path), start;

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len == 0 || path[0] != '/')
		return -EINVAL;
	start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (start == len)
		return -EISDIR; /* "/" itself */
	if (len - start >= namen)
		return -ENAMETOOLONG;
	memcpy(name, path + start, len - start);
	name[len - start] = '\0';
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EISDIR;
	/* The directory: everything before the name, without its slashes. */
	while (start > 1 && path[start - 1] == '/')
		start--;
	if (start >= dirn)
		return -ENAMETOOLONG;
	memcpy(dir, path, start);
	dir[start] = '\0';
	return 0;
}

int fs_path_follow(char *path, size_t n)
{
	char link[PATH_MAX], dir[PATH_MAX], name[NAME_MAX + 1];
	struct stat st;

	for (int i = 0; i <= FOLLOW_MAX; i++) {
		ssize_t len;
		int r;

		if (lstat(path, &st) < 0)
			return errno == ENOENT ? 0 : -errno;
		if (!S_ISLNK(st.st_mode))
			return 0;
		if (i == FOLLOW_MAX)
			break;
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			return -errno;
		link[len] = '\0';
		if (link[0] == '/') {
			if (str_copy(path, n, link) < 0)
				return -ENAMETOOLONG;
			continue;
		}
		if ((r = fs_path_split(path, dir, sizeof(dir), name, sizeof(name))) < 0)
			return r;
		if ((r = fs_path_join(dir[0] ? dir : "/", link, path, n)) < 0)
			return r;
	}
	return -ELOOP;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	struct stat st;
	size_t len;

	if (str_copy(p, sizeof(p), path) < 0)
		return -ENAMETOOLONG;
	len = strlen(p);
	/* Make each prefix ending before a '/', then the whole. */
	for (size_t i = 1; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		if (i < len && p[i - 1] == '/')
			continue; /* "//" */
		p[i] = '\0';
		if (mkdir(p, mode) < 0) {
			int err = errno;

			if (err != EEXIST || stat(p, &st) < 0)
				return -err;
			if (!S_ISDIR(st.st_mode))
				return -ENOTDIR;
		}
		if (i < len)
			p[i] = '/';
	}
	return 0;
}

mode_t fs_umask(void)
{
	static bool known;
	static mode_t mask;

	if (!known) {
		mask = umask(022);
		umask(mask);
		known = true;
	}
	return mask;
}

/* ---- errors ---- */

int fs_err(struct proto_err *e, int err, const char *fmt, ...)
{
	char what[PROTO_MSG_MAX], cause[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err < 0)
		err = -err;
	if (err == 0)
		err = EIO;
	return proto_fail(e, err, "%s: %s", proto_fs_strerror(err, cause, sizeof(cause)), what);
}

void fs_stat_from(struct fs_stat *out, const struct stat *st)
{
	out->mode = st->st_mode;
	out->uid = st->st_uid;
	out->gid = st->st_gid;
	out->size = (uint64_t)st->st_size;
	out->nlink = st->st_nlink;
	out->ino = st->st_ino;
	out->dev = st->st_dev;
	out->rdev = st->st_rdev;
	out->blocks = (uint64_t)st->st_blocks;
	out->atime = (struct fs_time){ st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec };
	out->mtime = (struct fs_time){ st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec };
	out->ctime = (struct fs_time){ st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec };
}

static void release_now(struct timer *t)
{
	struct fs_release *r = container_of(t, struct fs_release, t);

	conn_release(r->c);
}

void fs_release_later(struct fs_release *r, struct conn *c)
{
	r->c = c;
	timer_arm(&r->t, 0, release_now);
}

void *fs_zalloc(size_t size)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, rounded);

	if (p)
		memset(p, 0, rounded);
	return p;
}
