/* Removing a directory tree: depth first, with a stack of open
 * directories (at most FS_DEPTH_MAX deep) instead of recursion, and never
 * through a symbolic link: every directory is opened with O_NOFOLLOW
 * relative to its parent, so a link swapped in meanwhile is only
 * unlinked, never followed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/util.h"

struct level {
	DIR *d;
	size_t len; /* of this directory's path in rel */
};

static int open_dir(int parent, const char *name, DIR **d)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*d = fdopendir(fd);
	if (!*d) {
		int r = -errno;

		close(fd);
		return r;
	}
	return 0;
}

static bool is_dir_entry(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int fs_remove_tree(int base, const char *name, char *where, size_t n)
{
	struct level stack[FS_DEPTH_MAX];
	char rel[PATH_MAX];
	struct stat st;
	int depth = 0, r = 0;

	snprintf(where, n, "%s", name);
	if (fstatat(base, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(base, name, 0) < 0 ? -errno : 0;
	if (str_copy(rel, sizeof(rel), name) < 0)
		return -ENAMETOOLONG;
	if ((r = open_dir(base, name, &stack[0].d)) < 0)
		return r;
	stack[0].len = strlen(rel);
	depth = 1;
	while (depth > 0) {
		struct level *top = &stack[depth - 1];
		struct dirent *de;
		int fd = dirfd(top->d);

		errno = 0;
		de = readdir(top->d);
		if (!de) {
			int parent;

			if (errno) {
				r = -errno;
				rel[top->len] = '\0';
				break;
			}
			/* Empty now: remove it from its parent. */
			closedir(top->d);
			depth--;
			rel[top->len] = '\0';
			parent = depth > 0 ? dirfd(stack[depth - 1].d) : base;
			if (unlinkat(parent, depth > 0 ? rel + stack[depth - 1].len + 1 : name,
				     AT_REMOVEDIR) < 0) {
				r = -errno;
				break;
			}
			continue;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(rel + top->len, sizeof(rel) - top->len, "/%s", de->d_name) >=
		    (int)(sizeof(rel) - top->len)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (!is_dir_entry(fd, de)) {
			if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
				continue;
			if (errno != EISDIR) {
				r = -errno;
				break;
			}
		}
		if (depth == FS_DEPTH_MAX) {
			r = -ELOOP;
			break;
		}
		if ((r = open_dir(fd, de->d_name, &stack[depth].d)) < 0)
			break;
		stack[depth].len = strlen(rel);
		depth++;
	}
	if (r < 0)
		snprintf(where, n, "%s", rel);
	while (depth > 0)
		closedir(stack[--depth].d);
	return r;
}
