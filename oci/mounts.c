/* Host-side mounts of a container's rootfs: see mounts.h. Paths inside
 * the rootfs are resolved with openat2(2)'s RESOLVE_IN_ROOT, so that a
 * symbolic link of the container's cannot send a mkdir or a mount out of
 * it; the bind mounts use the mount API of open_tree(2), mount_setattr(2)
 * and move_mount(2) on those descriptors. */
#include "oci/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(char *msg, size_t n, int code, const char *what, const char *path)
{
	snprintf(msg, n, "%s %s: %s", what, path, strerror(code));
	return -code;
}

/* A path of the container's, opened inside the root. */
static int open_in_root(int root, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned)(flags | O_CLOEXEC), .mode = mode,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

/* Makes PATH (absolute, in the container) and its parents inside the root:
 * a directory, or an empty file when `file`. Returns an O_PATH descriptor
 * of it, or -errno. */
static int mount_point(int root, const char *path, bool file)
{
	char p[PATH_MAX];
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, len + 1);
	for (char *s = p + 1;; s++) {
		bool last = *s == '\0';
		char *slash, saved = *s;

		if (*s != '/' && !last)
			continue;
		*s = '\0';
		fd = open_in_root(root, p, O_PATH, 0);
		if (fd == -ENOENT) {
			int parent;

			slash = strrchr(p, '/');
			*slash = '\0';
			parent = open_in_root(root, slash == p ? "/" : p, O_PATH | O_DIRECTORY, 0);
			*slash = '/';
			if (parent < 0)
				return parent;
			if (last && file)
				fd = openat(parent, slash + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					    O_CLOEXEC, 0644);
			else
				fd = mkdirat(parent, slash + 1, 0755);
			if (fd < 0 && errno != EEXIST)
				fd = -errno;
			else if (fd >= 0 && last && file)
				close(fd);
			close(parent);
			if (fd < 0 && fd != -EEXIST)
				return fd;
			fd = open_in_root(root, p, O_PATH, 0);
		}
		if (fd < 0)
			return fd;
		*s = saved;
		if (last)
			return fd;
		close(fd);
	}
}

static int bind(int root, const struct oci_bind *b, char *msg, size_t n)
{
	struct mount_attr attr = { .attr_set = b->attr };
	unsigned rec = b->recursive ? AT_RECURSIVE : 0;
	struct stat src, dst;
	int target, tree, r = 0;

	if (stat(b->source, &src) < 0)
		return fail(msg, n, errno, "the bind mount source", b->source);
	if (!S_ISDIR(src.st_mode) && !S_ISREG(src.st_mode))
		return fail(msg, n, ENOTSUP, "the bind mount source (a directory or a file)",
			    b->source);
	target = mount_point(root, b->dest, !S_ISDIR(src.st_mode));
	if (target < 0)
		return fail(msg, n, -target, "the mount point in the rootfs of", b->dest);
	if (fstat(target, &dst) < 0 || S_ISDIR(dst.st_mode) != S_ISDIR(src.st_mode)) {
		close(target);
		snprintf(msg, n, "the bind mount of %s at %s: one is a directory, the other not",
			 b->source, b->dest);
		return -ENOTDIR;
	}
	tree = open_tree(AT_FDCWD, b->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (tree < 0 ||
	    (b->attr && mount_setattr(tree, "", AT_EMPTY_PATH | rec, &attr, sizeof(attr)) < 0) ||
	    move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		r = fail(msg, n, errno, "cannot bind-mount", b->source);
	if (tree >= 0)
		close(tree);
	close(target);
	return r;
}

/* The mount points of the tmpfs mounts. */
static int tmpfs_points(int root, const struct oci_spec *s, char *msg, size_t n)
{
	for (size_t i = 0; s->tmpfs[i]; i++) {
		char dest[PATH_MAX];
		int fd;

		snprintf(dest, sizeof(dest), "%.*s", (int)strcspn(s->tmpfs[i], ":"), s->tmpfs[i]);
		fd = mount_point(root, dest, false);
		if (fd < 0)
			return fail(msg, n, -fd, "the mount point in the rootfs of the tmpfs at", dest);
		close(fd);
	}
	return 0;
}

int oci_mounts_setup(const struct oci_spec *s, char *msg, size_t n)
{
	int root, r = 0;

	/* First the namespace: the rootfs is opened in it, since a mount
	 * point must be one of the namespace where it is mounted on. */
	if (s->nbinds && (unshare(CLONE_NEWNS) < 0 ||
			  mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0))
		return fail(msg, n, errno, "cannot make a mount namespace for", s->rootfs);
	root = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fail(msg, n, errno, "the root file system", s->rootfs);
	r = tmpfs_points(root, s, msg, n);
	for (size_t i = 0; i < s->nbinds && r == 0; i++)
		r = bind(root, &s->binds[i], msg, n);
	close(root);
	return r;
}
