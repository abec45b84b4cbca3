/* Directory trees on directory fds (lib/tree.c), one library for both
 * ends: walking down a received tree without following links, removing a
 * tree, and writing a tree that arrives entry by entry in pre-order (each
 * directory before what it holds). A new tree is built in a hidden
 * directory next to the destination and renamed into place at the end, so
 * it appears whole or not at all; into an existing directory it merges,
 * each file replaced atomically. Directory modes and times are applied
 * last, deepest first, and only to the directories the write made: one
 * that was there before (the destination of a merge included) keeps its
 * own. */
#ifndef SBX_TREE_H
#define SBX_TREE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lib/atomic.h"
#include "lib/buf.h"

#define TREE_DEPTH_MAX 128 /* directories open at once, removing or reading */

/* Opens the directory rel (a checked relative path) beneath root without
 * following any symbolic link: O_PATH fds. Caches the last one. */
struct tree_walk {
	int rootfd;
	int fd;            /* the cached directory, or -1 */
	size_t len;
	char rel[PATH_MAX];
};
void tree_walk_init(struct tree_walk *w, int rootfd);
/* The fd of directory rel[0..len) (rootfd when len is 0); owned by w. */
int tree_walk_dir(struct tree_walk *w, const char *rel, size_t len);
void tree_walk_close(struct tree_walk *w);

/* Removes name in dirfd and everything below it, never following a link.
 * On failure, where says which path (name/...) it was at. */
int tree_remove(int dirfd, const char *name, char *where, size_t n);

struct tree_dir_attr {
	size_t name;    /* offset of its relative path in names */
	size_t len;
	uint32_t mode;
	struct timespec times[2];
};

struct tree_write {
	/* How, set between tree_write_init and tree_write_open: */
	bool create_new;         /* the destination must not exist */
	bool follow_dest;        /* the destination may be a link to a directory */
	bool sync_files;         /* fsync each file of a tree, not only the syncfs at the end */
	bool set_owner;          /* give everything uid and gid */
	uid_t uid;
	gid_t gid;
	mode_t mode_mask;        /* the permission bits kept of those sent (07777) */
	size_t dirs_max;
	/* The destination. */
	int parentfd;            /* its directory (owned) */
	char name[NAME_MAX + 1]; /* its name in it */
	bool dest_exists, dest_is_dir;
	char tmpdir[NAME_MAX + 1]; /* the hidden new tree; "" when merging */
	int rootfd;              /* the tree's root directory, once known */
	bool root_seen;
	bool root_is_dir;
	struct tree_walk walk;
	/* The file being received: write its data to a.fd. */
	bool in_file;
	bool direct;             /* created under its name in a new tree */
	struct atomic_file a;
	/* Directories whose mode and times are applied at the end. */
	struct tree_dir_attr *dirs;
	size_t ndirs, dirs_cap;
	struct buf names;
	struct tree_dir_attr root_attr;
	/* The relative path ("" = the root) a failed finish was working on. */
	char at[PATH_MAX];
};

/* At most dirs_max directories and names_max bytes of their paths (else
 * -E2BIG). */
void tree_write_init(struct tree_write *tw, size_t dirs_max, size_t names_max);
/* The destination is name in parentfd (which tw now owns). */
int tree_write_open(struct tree_write *tw, int parentfd, const char *name);
/* The first entry, the root, decides what the destination becomes: a
 * directory, a file (then in_file) or a symbolic link to target. */
int tree_write_root(struct tree_write *tw, mode_t mode, const char *target,
		    const struct timespec times[2]);
/* An entry below the root, at the relative path path. -EPROTO when the
 * root is no directory, -EINVAL for a type other than a directory, file
 * or link, -E2BIG past the limits. */
int tree_write_child(struct tree_write *tw, const char *path, mode_t mode, const char *target,
		     const struct timespec times[2]);
/* The file being received is complete: its mode and times, then it
 * appears. */
int tree_write_file_end(struct tree_write *tw, mode_t mode, const struct timespec times[2]);
/* The last entry came: directory attributes, syncfs, and a new tree is
 * renamed into place. */
int tree_write_finish(struct tree_write *tw);
/* Undoes what can be undone: the file in progress, and a new tree as a
 * whole. A merge keeps what was committed. */
void tree_write_abort(struct tree_write *tw);
/* Aborts, then closes and frees everything. */
void tree_write_free(struct tree_write *tw);

#endif
