/* Files that appear whole or not at all, and temporary names, on directory
 * fds (lib/atomic.c). One library for both ends: the agent's file
 * operations, its SSH keys, and libsbx's downloads. */
#ifndef SBX_ATOMIC_H
#define SBX_ATOMIC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct atomic_file {
	int dirfd;             /* the target's directory (not owned) */
	char name[NAME_MAX + 1];
	int fd;                /* the new content, -1 when none */
	char tmp[NAME_MAX + 1];/* a named temporary; "" with O_TMPFILE */
};

/* Creates an invisible file (O_TMPFILE, else a unique dot-name) in dirfd
 * for name, mode 0600 until it is committed. */
int atomic_open(struct atomic_file *a, int dirfd, const char *name);
/* Optionally fsyncs, then makes the content appear as name: linked when
 * no_replace (-EEXIST if name exists), else renamed over it. sync_dir
 * fsyncs the directory afterwards (dirfd must not be O_PATH then). */
int atomic_commit(struct atomic_file *a, bool no_replace, bool sync_file, bool sync_dir);
/* Drops the content: nothing is left behind. */
void atomic_abort(struct atomic_file *a);
/* Replaces (or creates) name in dirfd with data[0..len), mode, fsynced. */
int atomic_write(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* Links an open file into dirfd as name (linkat AT_EMPTY_PATH, else
 * through /proc/self/fd). */
int atomic_link_fd(int fd, int dirfd, const char *name);
/* renameat2(RENAME_NOREPLACE), checked by hand where the file system has
 * no such flag (a small race, only there). */
int atomic_rename_noreplace(int olddir, const char *oldname, int newdir, const char *newname);

/* A random temporary name for name in the same directory:
 * ".<name>.sbx-XXXXXXXXXXXX" (shortened to fit NAME_MAX). */
void atomic_tmpname(const char *name, char out[NAME_MAX + 1]);
/* len random characters of alphabet (not NUL-terminated); never fails: without
 * the kernel's randomness, a clock-seeded generator stands in. */
void atomic_random_chars(char *out, size_t len, const char *alphabet);

#endif
