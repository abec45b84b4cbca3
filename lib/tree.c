/* Directory trees on directory fds, for both ends: walking down a
 * received tree without following links, removing a tree, and writing one
 * that arrives entry by entry, in pre-order, so that a new tree appears
 * whole or not at all (see tree.h). The agent's FS_TREE_WRITE
 * (fs/tree_write.c) and libsbx's tree downloads (libsbx/fs_tree.c) are adapters
 * between this and the protocol. */
#include "lib/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

/* ---- walking a received tree ---- */

void tree_walk_init(struct tree_walk *w, int rootfd)
{
	w->rootfd = rootfd;
	w->fd = -1;
	w->len = 0;
	w->rel[0] = '\0';
}

void tree_walk_close(struct tree_walk *w)
{
	fd_close(&w->fd);
	w->len = 0;
}

/* Opens rel[from..len) component by component beneath fd. */
static int walk_from(int fd, const char *rel, size_t from, size_t len)
{
	char name[NAME_MAX + 1];
	int cur = fd;

	while (from < len) {
		size_t end = from;
		int next;

		while (end < len && rel[end] != '/')
			end++;
		if (end - from > NAME_MAX) {
			if (cur != fd)
				close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(name, rel + from, end - from);
		name[end - from] = '\0';
		/* O_NOFOLLOW with O_DIRECTORY: a symbolic link here is an
		 * error (ENOTDIR), never a way out of the tree. */
		next = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cur != fd)
			close(cur);
		if (next < 0)
			return -errno;
		cur = next;
		from = end + 1;
	}
	if (cur == fd && (cur = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -errno;
	return cur;
}

int tree_walk_dir(struct tree_walk *w, const char *rel, size_t len)
{
	int fd;

	if (len == 0)
		return w->rootfd;
	if (len >= sizeof(w->rel))
		return -ENAMETOOLONG;
	if (w->fd >= 0 && len == w->len && memcmp(rel, w->rel, len) == 0)
		return w->fd;
	/* Pre-order streams mostly go one level down from the last one. */
	if (w->fd >= 0 && len > w->len && memcmp(rel, w->rel, w->len) == 0 && rel[w->len] == '/')
		fd = walk_from(w->fd, rel, w->len + 1, len);
	else
		fd = walk_from(w->rootfd, rel, 0, len);
	if (fd < 0) {
		tree_walk_close(w);
		return fd;
	}
	fd_close(&w->fd);
	w->fd = fd;
	w->len = len;
	memcpy(w->rel, rel, len);
	w->rel[len] = '\0';
	return fd;
}

/* ---- removing a tree: depth first, with a stack of open directories (at
 * most TREE_DEPTH_MAX deep) instead of recursion, and never through a
 * symbolic link: every directory is opened with O_NOFOLLOW relative to its
 * parent, so a link swapped in meanwhile is only unlinked, never followed. */

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

int tree_remove(int base, const char *name, char *where, size_t n)
{
	struct level stack[TREE_DEPTH_MAX];
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
		if (depth == TREE_DEPTH_MAX) {
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

/* ---- writing a tree that arrives entry by entry ---- */

void tree_write_init(struct tree_write *tw, size_t dirs_max, size_t names_max)
{
	memset(tw, 0, sizeof(*tw));
	tw->parentfd = tw->rootfd = tw->a.fd = -1;
	tw->uid = (uid_t)-1;
	tw->gid = (gid_t)-1;
	tw->dirs_max = dirs_max;
	tw->mode_mask = 07777;
	tree_walk_init(&tw->walk, -1);
	buf_init(&tw->names, names_max);
}

int tree_write_open(struct tree_write *tw, int parentfd, const char *name)
{
	struct stat st;

	tw->parentfd = parentfd;
	if (str_copy(tw->name, sizeof(tw->name), name) < 0)
		return -ENAMETOOLONG;
	if (fstatat(parentfd, name, &st, tw->follow_dest ? 0 : AT_SYMLINK_NOFOLLOW) == 0) {
		tw->dest_exists = true;
		tw->dest_is_dir = S_ISDIR(st.st_mode);
	} else if (errno != ENOENT) {
		return -errno;
	}
	return 0;
}

static void set_at(struct tree_write *tw, const char *rel, size_t len)
{
	len = MIN(len, sizeof(tw->at) - 1);
	memcpy(tw->at, rel, len);
	tw->at[len] = '\0';
}

static int set_dir_attrs(struct tree_write *tw, int fd, const struct tree_dir_attr *da)
{
	if (tw->set_owner && fchown(fd, tw->uid, tw->gid) < 0)
		return -errno;
	if (fchmod(fd, da->mode & tw->mode_mask) < 0 || futimens(fd, da->times) < 0)
		return -errno;
	return 0;
}

/* Deepest first: reversed pre-order puts every directory after all it
 * holds. */
static int apply_dir_attrs(struct tree_write *tw)
{
	int r = 0;

	while (tw->ndirs > 0) {
		const struct tree_dir_attr *da = &tw->dirs[--tw->ndirs];
		const char *rel = (const char *)buf_head(&tw->names) + da->name;
		size_t plen = da->len;
		int pfd, fd;

		while (plen > 0 && rel[plen - 1] != '/')
			plen--;
		set_at(tw, rel, da->len);
		pfd = tree_walk_dir(&tw->walk, rel, plen ? plen - 1 : 0);
		if (pfd < 0)
			return pfd;
		fd = openat(pfd, rel + plen, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		r = set_dir_attrs(tw, fd, da);
		close(fd);
		if (r < 0)
			return r;
	}
	/* A directory that was there before keeps its own mode and times. */
	if (tw->root_is_dir && tw->rootfd >= 0 && !tw->dest_exists) {
		set_at(tw, "", 0);
		r = set_dir_attrs(tw, tw->rootfd, &tw->root_attr);
	}
	return r;
}

static int remember_dir(struct tree_write *tw, const char *path, mode_t mode,
			const struct timespec times[2])
{
	struct tree_dir_attr *da;
	size_t len = strlen(path);
	int r;

	if (tw->ndirs == tw->dirs_cap) {
		size_t cap = tw->dirs_cap ? tw->dirs_cap * 2 : 64;
		struct tree_dir_attr *grown;

		if (cap > tw->dirs_max)
			return -E2BIG;
		grown = realloc(tw->dirs, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		tw->dirs = grown;
		tw->dirs_cap = cap;
	}
	da = &tw->dirs[tw->ndirs];
	da->name = buf_len(&tw->names);
	da->len = len;
	da->mode = mode;
	da->times[0] = times[0];
	da->times[1] = times[1];
	if ((r = buf_append(&tw->names, path, len + 1)) < 0)
		return r == -ENOBUFS ? -E2BIG : r;
	tw->ndirs++;
	return 0;
}

int tree_write_root(struct tree_write *tw, mode_t mode, const char *target,
		    const struct timespec times[2])
{
	mode_t type = mode & S_IFMT;
	char tmp[NAME_MAX + 1];
	int r;

	tw->root_seen = true;
	if (type == S_IFDIR) {
		if (tw->dest_exists && !tw->dest_is_dir)
			return -ENOTDIR;
		if (tw->dest_exists && tw->create_new)
			return -EEXIST;
		tw->root_attr.mode = mode;
		tw->root_attr.times[0] = times[0];
		tw->root_attr.times[1] = times[1];
		if (tw->dest_exists) {
			/* Where follow_dest, the destination was named by the
			 * user and may be a link to a directory; only what is
			 * below it comes from the other end. */
			tw->rootfd = openat(tw->parentfd, tw->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
					    (tw->follow_dest ? 0 : O_NOFOLLOW));
		} else {
			r = -EEXIST;
			for (int i = 0; i < 100 && r == -EEXIST; i++) {
				atomic_tmpname(tw->name, tmp);
				r = mkdirat(tw->parentfd, tmp, 0700) < 0 ? -errno : 0;
			}
			if (r < 0)
				return r;
			str_copy(tw->tmpdir, sizeof(tw->tmpdir), tmp);
			tw->rootfd = openat(tw->parentfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					    O_CLOEXEC);
		}
		if (tw->rootfd < 0)
			return -errno;
		tw->root_is_dir = true;
		tree_walk_init(&tw->walk, tw->rootfd);
		return 0;
	}
	if (tw->dest_exists && tw->dest_is_dir)
		return -EISDIR;
	if (tw->dest_exists && tw->create_new)
		return -EEXIST;
	if (type == S_IFREG) {
		tw->direct = false;
		if ((r = atomic_open(&tw->a, tw->parentfd, tw->name)) < 0)
			return r;
		tw->in_file = true;
		return 0;
	}
	if (type != S_IFLNK)
		return -EINVAL;
	/* A link is made under a temporary name and renamed into place. */
	atomic_tmpname(tw->name, tmp);
	if (symlinkat(target, tw->parentfd, tmp) < 0)
		return -errno;
	r = tw->create_new ? atomic_rename_noreplace(tw->parentfd, tmp, tw->parentfd, tw->name) :
	    renameat(tw->parentfd, tmp, tw->parentfd, tw->name) < 0 ? -errno : 0;
	if (r < 0) {
		unlinkat(tw->parentfd, tmp, 0);
		return r;
	}
	if (tw->set_owner)
		(void)!fchownat(tw->parentfd, tw->name, tw->uid, tw->gid, AT_SYMLINK_NOFOLLOW);
	utimensat(tw->parentfd, tw->name, times, AT_SYMLINK_NOFOLLOW);
	return 0;
}

int tree_write_child(struct tree_write *tw, const char *path, mode_t mode, const char *target,
		     const struct timespec times[2])
{
	size_t plen = strlen(path);
	const char *leaf;
	char tmp[NAME_MAX + 1];
	struct stat st;
	int pfd, r;

	if (!tw->root_is_dir)
		return -EPROTO;
	while (plen > 0 && path[plen - 1] != '/')
		plen--;
	leaf = path + plen;
	pfd = tree_walk_dir(&tw->walk, path, plen ? plen - 1 : 0);
	if (pfd < 0)
		return pfd;
	switch (mode & S_IFMT) {
	case S_IFDIR:
		/* 0700 until the end, so it can be filled whatever its mode. */
		if (mkdirat(pfd, leaf, 0700) < 0) {
			if (errno != EEXIST)
				return -errno;
			if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return -errno;
			if (!S_ISDIR(st.st_mode))
				return -EEXIST;
			/* There before (or sent twice): its mode and times
			 * stay what they are. */
			return 0;
		}
		return remember_dir(tw, path, mode, times);
	case S_IFREG:
		if (tw->tmpdir[0]) {
			/* Inside a new tree nothing is visible yet: write the
			 * file under its own name. */
			tw->a.dirfd = pfd;
			tw->a.tmp[0] = '\0';
			str_copy(tw->a.name, sizeof(tw->a.name), leaf);
			tw->a.fd = openat(pfd, leaf, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW |
					  O_CLOEXEC, 0600);
			if (tw->a.fd < 0)
				return -errno;
			tw->direct = true;
		} else {
			if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
				return -EISDIR;
			if ((r = atomic_open(&tw->a, pfd, leaf)) < 0)
				return r;
			tw->direct = false;
		}
		tw->in_file = true;
		return 0;
	case S_IFLNK:
		if (tw->tmpdir[0]) {
			if (symlinkat(target, pfd, leaf) < 0)
				return -errno;
		} else {
			atomic_tmpname(leaf, tmp);
			if (symlinkat(target, pfd, tmp) < 0)
				return -errno;
			if (renameat(pfd, tmp, pfd, leaf) < 0) {
				r = -errno;
				unlinkat(pfd, tmp, 0);
				return r;
			}
		}
		if (tw->set_owner && fchownat(pfd, leaf, tw->uid, tw->gid, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (utimensat(pfd, leaf, times, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return 0;
	default:
		return -EINVAL;
	}
}

int tree_write_file_end(struct tree_write *tw, mode_t mode, const struct timespec times[2])
{
	int fd = tw->a.fd, r;

	if (tw->set_owner && fchown(fd, tw->uid, tw->gid) < 0)
		return -errno;
	if (fchmod(fd, mode & tw->mode_mask) < 0 || futimens(fd, times) < 0)
		return -errno;
	if (tw->direct) {
		/* Durable with the whole tree: one syncfs before it is
		 * renamed into place. */
		fd_close(&tw->a.fd);
		r = 0;
	} else if (!tw->root_is_dir) {
		/* The root itself is this file. */
		r = atomic_commit(&tw->a, tw->create_new, true, true);
	} else {
		/* The parent is an O_PATH fd: the syncfs at the end covers it. */
		r = atomic_commit(&tw->a, false, tw->sync_files, false);
	}
	if (r == 0)
		tw->in_file = false;
	return r;
}

int tree_write_finish(struct tree_write *tw)
{
	int r;

	if ((r = apply_dir_attrs(tw)) < 0)
		return r;
	if (!tw->root_is_dir)
		return 0;
	set_at(tw, "", 0);
	if (syncfs(tw->rootfd) < 0)
		return -errno;
	if (tw->tmpdir[0]) {
		if ((r = atomic_rename_noreplace(tw->parentfd, tw->tmpdir, tw->parentfd,
						 tw->name)) < 0)
			return r;
		tw->tmpdir[0] = '\0';
		if (fsync(tw->parentfd) < 0 && errno != EBADF && errno != EINVAL)
			return -errno;
	}
	tw->root_is_dir = false; /* nothing left to undo */
	return 0;
}

void tree_write_abort(struct tree_write *tw)
{
	char where[PATH_MAX];

	if (tw->in_file) {
		if (tw->direct)
			fd_close(&tw->a.fd);
		else
			atomic_abort(&tw->a);
		tw->in_file = false;
	}
	if (tw->tmpdir[0]) {
		/* Nothing of a new tree stays. */
		tree_walk_close(&tw->walk);
		fd_close(&tw->rootfd);
		tree_remove(tw->parentfd, tw->tmpdir, where, sizeof(where));
		tw->tmpdir[0] = '\0';
	} else if (tw->root_is_dir) {
		/* A merge keeps what was committed, with its directories'
		 * attributes applied. */
		apply_dir_attrs(tw);
	}
	tw->ndirs = 0;
	tw->root_is_dir = false;
}

void tree_write_free(struct tree_write *tw)
{
	tree_write_abort(tw);
	tree_walk_close(&tw->walk);
	fd_close(&tw->rootfd);
	fd_close(&tw->parentfd);
	free(tw->dirs);
	tw->dirs = NULL;
	buf_free(&tw->names);
}
