/* Atomic files, for both ends (the agent's fs/ and net/, libsbx): new
 * content is written to a file nobody can see (an O_TMPFILE inode, or a
 * unique dot-name where the file system has no O_TMPFILE), fsynced, and
 * only then given its name, by linking it (when the name must be new) or
 * by renaming it over the old file. Until that last step the target is
 * untouched, and an aborted write leaves nothing: an O_TMPFILE inode
 * vanishes with its fd even if the process is killed. */
#include "lib/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define TMP_TRIES 100

void atomic_random_chars(char *out, size_t len, const char *alphabet)
{
	static uint64_t counter;
	size_t nchars = strlen(alphabet);
	uint8_t rnd[64];

	while (len > 0) {
		size_t n = MIN(len, sizeof(rnd));

		/* Uniqueness comes from O_EXCL and retries; randomness only
		 * makes a collision with another writer unlikely. */
		if (getrandom(rnd, n, GRND_NONBLOCK) != (ssize_t)n) {
			uint64_t x = time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ ++counter;

			for (size_t i = 0; i < n; i++, x = x * 6364136223846793005ULL + 1)
				rnd[i] = (uint8_t)(x >> 56);
		}
		for (size_t i = 0; i < n; i++)
			*out++ = alphabet[rnd[i] % nchars];
		len -= n;
	}
}

void atomic_tmpname(const char *name, char out[NAME_MAX + 1])
{
	char suffix[13];
	int keep;

	atomic_random_chars(suffix, 12, "0123456789abcdefghijklmnopqrstuvwxyz");
	suffix[12] = '\0';
	/* "." + name + ".sbx-" + 12 characters must fit in NAME_MAX. */
	keep = (int)MIN(strlen(name), (size_t)(NAME_MAX - 18));
	snprintf(out, NAME_MAX + 1, ".%.*s.sbx-%s", keep, name, suffix);
}

int atomic_rename_noreplace(int olddir, const char *oldname, int newdir, const char *newname)
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

int atomic_link_fd(int fd, int dirfd, const char *name)
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

int atomic_open(struct atomic_file *a, int dirfd, const char *name)
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
		atomic_tmpname(name, a->tmp);
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
static int commit_named(struct atomic_file *a, bool no_replace)
{
	int r = no_replace ? atomic_rename_noreplace(a->dirfd, a->tmp, a->dirfd, a->name) :
		renameat(a->dirfd, a->tmp, a->dirfd, a->name) < 0 ? -errno : 0;

	if (r < 0)
		return r;
	a->tmp[0] = '\0';
	return 0;
}

/* Links the O_TMPFILE inode into place. Replacing needs a name first,
 * since only rename(2) replaces atomically; that name lives for the two
 * system calls between link and rename. */
static int commit_tmpfile(struct atomic_file *a, bool no_replace)
{
	char tmp[NAME_MAX + 1];
	int r = -EEXIST;

	if (no_replace)
		return atomic_link_fd(a->fd, a->dirfd, a->name);
	for (int i = 0; i < TMP_TRIES && r == -EEXIST; i++) {
		atomic_tmpname(a->name, tmp);
		r = atomic_link_fd(a->fd, a->dirfd, tmp);
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

int atomic_commit(struct atomic_file *a, bool no_replace, bool sync_file, bool sync_dir)
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

void atomic_abort(struct atomic_file *a)
{
	if (a->tmp[0]) {
		unlinkat(a->dirfd, a->tmp, 0);
		a->tmp[0] = '\0';
	}
	fd_close(&a->fd);
}

int atomic_write(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	struct atomic_file a;
	int r;

	if ((r = atomic_open(&a, dirfd, name)) < 0)
		return r;
	if (fchmod(a.fd, mode) < 0)
		r = -errno;
	else if ((r = fd_write_all(a.fd, data, len)) == 0)
		r = atomic_commit(&a, false, true, false);
	if (r < 0)
		atomic_abort(&a);
	return r;
}
