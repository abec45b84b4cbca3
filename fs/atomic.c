/* Atomic files: new content is written to a file nobody can see (an
 * O_TMPFILE inode, or a unique dot-name where the file system has no
 * O_TMPFILE), fsynced, and only then given its name, by linking it (when
 * the name must be new) or by renaming it over the old file. Until that
 * last step the target is untouched, and an aborted write leaves nothing:
 * an O_TMPFILE inode vanishes with its fd even if the agent is killed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define TMP_TRIES 100

int fs_renameat_noreplace(int olddir, const char *oldname, int newdir, const char *newname)
{
	struct stat st;

	if (syscall(SYS_renameat2, olddir, oldname, newdir, newname, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* A file system without RENAME_NOREPLACE: check, then rename (a
	 * small race, only there). */
	if (fstatat(newdir, newname, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	return renameat(olddir, oldname, newdir, newname) < 0 ? -errno : 0;
}

int fs_link_fd(int fd, int dirfd, const char *name)
{
	char proc[64];

	if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno == EEXIST)
		return -EEXIST;
	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on older kernels, and the
	 * capability is off while acting as another user. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

int fs_atomic_open(struct fs_atomic *a, int dirfd, const char *name)
{
	a->dirfd = dirfd;
	a->tmp[0] = '\0';
	if (str_copy(a->name, sizeof(a->name), name) < 0)
		return -ENAMETOOLONG;
	/* 0600 while it is written; the final mode is set before it gets
	 * its name. */
	a->fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (a->fd >= 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
		return -errno;
	for (int i = 0; i < TMP_TRIES; i++) {
		fs_tmpname(name, a->tmp);
		a->fd = openat(dirfd, a->tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
			       0600);
		if (a->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	a->tmp[0] = '\0';
	return -errno;
}

/* Renames the named temporary into place. */
static int commit_named(struct fs_atomic *a, bool no_replace)
{
	int r = no_replace ? fs_renameat_noreplace(a->dirfd, a->tmp, a->dirfd, a->name) :
		renameat(a->dirfd, a->tmp, a->dirfd, a->name) < 0 ? -errno : 0;

	if (r < 0)
		return r;
	a->tmp[0] = '\0';
	return 0;
}

/* Links the O_TMPFILE inode into place. Replacing needs a name first,
 * since only rename(2) replaces atomically; that name lives for the two
 * system calls between link and rename. */
static int commit_tmpfile(struct fs_atomic *a, bool no_replace)
{
	char tmp[NAME_MAX + 1];
	int r = -EEXIST;

	if (no_replace)
		return fs_link_fd(a->fd, a->dirfd, a->name);
	for (int i = 0; i < TMP_TRIES && r == -EEXIST; i++) {
		fs_tmpname(a->name, tmp);
		r = fs_link_fd(a->fd, a->dirfd, tmp);
	}
	if (r < 0)
		return r;
	if (renameat(a->dirfd, tmp, a->dirfd, a->name) < 0) {
		r = -errno;
		unlinkat(a->dirfd, tmp, 0);
		return r;
	}
	return 0;
}

int fs_atomic_commit(struct fs_atomic *a, bool no_replace, bool sync_file, bool sync_dir)
{
	int r;

	if (sync_file && fsync(a->fd) < 0)
		return -errno;
	r = a->tmp[0] ? commit_named(a, no_replace) : commit_tmpfile(a, no_replace);
	if (r < 0)
		return r;
	fd_close(&a->fd);
	if (sync_dir && fsync(a->dirfd) < 0 && errno != EINVAL && errno != EBADF)
		return -errno;
	return 0;
}

void fs_atomic_abort(struct fs_atomic *a)
{
	if (a->tmp[0]) {
		unlinkat(a->dirfd, a->tmp, 0);
		a->tmp[0] = '\0';
	}
	fd_close(&a->fd);
}
