/* libsbx: files in a sandbox (docs/protocol/files.md). Every call opens
 * its own connection to the agent at addr, returns 0 or -errno, and fills
 * a struct sbx_error with a message naming the path and the cause ("no
 * such file or directory: /app/x"). Paths in the sandbox are absolute, or
 * relative to the sandbox's working directory. Transfers are streamed
 * (memory use does not grow with the size), verified with XXH3-128 at both
 * ends (BLAKE2b-256 with an agent of protocol version 1) unless asked not
 * to, and atomic: a failed upload leaves the old
 * file (or nothing) at the target, and a failed download leaves nothing
 * at the local destination. */
#ifndef SBX_SBX_FS_H
#define SBX_SBX_FS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libsbx/sbx.h"
#include "vsock/proto_fs.h"

/* What every call may take. Zero is the default. */
struct sbx_fs_opts {
	const char *user;  /* act as this user (name or uid): its permissions
			      apply; NULL: the sandbox's default user */
	bool no_verify;    /* transfers: skip the digests (XXH3-128, or BLAKE2b-256
			      with an agent of protocol version 1) */
	/* Transfers: called about 4 times a second with the bytes moved so
	 * far and the total (0 when unknown). */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
	/* Transfers: when this becomes non-zero (a signal handler may set
	 * it) the transfer stops, cleans up and fails with -EINTR. */
	const volatile sig_atomic_t *cancel;
};

/* What a transfer did. */
struct sbx_xfer {
	uint64_t bytes;      /* file bytes moved */
	uint64_t entries;    /* trees: entries (directories, files, links) */
	uint64_t skipped;    /* trees: special files left out */
	bool verified;       /* digests were compared */
	/* Single files: the body's digest, digest_len bytes: 16 for XXH3-128,
	 * 32 for BLAKE2b-256 (an agent of protocol version 1). */
	uint8_t digest[FS_DIGEST_LEN];
	size_t digest_len;
};

/* ---- metadata ---- */

/* stat (follow = true) or lstat. target, if not NULL, receives a
 * symbolic link's text (lstat of a link), else "". */
int sbx_fs_stat(const char *addr, const char *path, bool follow, const struct sbx_fs_opts *o,
		struct fs_stat *st, char *target, size_t target_size, struct sbx_error *err);

/* Directory entries, in batches as they arrive; fn returns non-zero to
 * stop (that value is returned). with_stat adds an lstat to each. */
typedef int (*sbx_dirent_fn)(void *arg, const struct fs_dirent *d);
int sbx_fs_readdir(const char *addr, const char *path, bool with_stat,
		   const struct sbx_fs_opts *o, sbx_dirent_fn fn, void *arg, struct sbx_error *err);

/* mode < 0: 0777 less the agent's umask; parents: mkdir -p. */
int sbx_fs_mkdir(const char *addr, const char *path, int mode, bool parents,
		 const struct sbx_fs_opts *o, struct sbx_error *err);
int sbx_fs_remove(const char *addr, const char *path, bool recursive, const struct sbx_fs_opts *o,
		  struct sbx_error *err);
/* flags: FS_F_CREATE_NEW (do not replace), FS_F_MKDIRS */
int sbx_fs_rename(const char *addr, const char *from, const char *to, uint32_t flags,
		  const struct sbx_fs_opts *o, struct sbx_error *err);
/* A file copied inside the sandbox, atomically; flags as rename. */
int sbx_fs_copy(const char *addr, const char *from, const char *to, uint32_t flags,
		const struct sbx_fs_opts *o, struct sbx_error *err);
int sbx_fs_chmod(const char *addr, const char *path, uint32_t mode, const struct sbx_fs_opts *o,
		 struct sbx_error *err);
/* uid/gid < 0: unchanged. */
int sbx_fs_chown(const char *addr, const char *path, int64_t uid, int64_t gid, bool follow,
		 const struct sbx_fs_opts *o, struct sbx_error *err);
/* Makes path a symbolic link to target; flags: FS_F_MKDIRS. */
int sbx_fs_symlink(const char *addr, const char *target, const char *path, uint32_t flags,
		   const struct sbx_fs_opts *o, struct sbx_error *err);
/* Makes path a hard link to existing; flags: FS_F_MKDIRS. */
int sbx_fs_link(const char *addr, const char *existing, const char *path, uint32_t flags,
		const struct sbx_fs_opts *o, struct sbx_error *err);
int sbx_fs_readlink(const char *addr, const char *path, char *out, size_t n,
		    const struct sbx_fs_opts *o, struct sbx_error *err);
int sbx_fs_realpath(const char *addr, const char *path, char *out, size_t n,
		    const struct sbx_fs_opts *o, struct sbx_error *err);
int sbx_fs_truncate(const char *addr, const char *path, uint64_t length,
		    const struct sbx_fs_opts *o, struct sbx_error *err);
/* NULL leaves that time alone; both NULL set both to now. nsec may be
 * FS_TIME_NOW or FS_TIME_OMIT. */
int sbx_fs_utimes(const char *addr, const char *path, const struct fs_time *atime,
		  const struct fs_time *mtime, bool follow, const struct sbx_fs_opts *o,
		  struct sbx_error *err);
/* A new empty file (or directory) with a random name in dir (NULL:
 * /tmp); its absolute path goes to out. */
int sbx_fs_mktemp(const char *addr, const char *dir, const char *prefix, const char *suffix,
		  bool directory, char *out, size_t n, const struct sbx_fs_opts *o,
		  struct sbx_error *err);

/* An advisory lock on path (flock(2) and a whole-file fcntl lock, as the
 * guest's own programs see them), shared or exclusive; waits while others
 * hold it (o->cancel stops the wait: -EINTR). The lock lasts as long as
 * the connection returned in *held: sbx_fs_unlock releases it and waits
 * for the agent to confirm; sbx_close(*held) releases it too, without
 * waiting. */
int sbx_fs_lock(const char *addr, const char *path, bool exclusive, const struct sbx_fs_opts *o,
		struct sbx_conn **held, struct sbx_error *err);
/* Releases a lock of sbx_fs_lock and closes its connection (always). */
int sbx_fs_unlock(struct sbx_conn *held, struct sbx_error *err);

/* ---- files ---- */

/* How a file is written. */
struct sbx_write_opts {
	uint32_t flags;        /* FS_F_CREATE_NEW, NO_CREATE, APPEND, IN_PLACE, MKDIRS */
	bool set_mode;
	uint32_t mode;         /* default: the old file's, or 0666 less umask */
	bool set_uid, set_gid; /* default: the acting user (a replaced file
				  keeps its owner when acting as root) */
	uint32_t uid, gid;
	bool set_times;
	struct fs_time atime, mtime;
	bool has_size;
	uint64_t size;         /* the size to come, if known: the agent
				  refuses at once what cannot fit */
	bool has_offset;
	uint64_t offset;       /* with FS_F_IN_PLACE: write at this offset,
				  nothing truncated */
};

/* Uploads everything read from fd (until EOF) to path. */
int sbx_fs_write_fd(const char *addr, int fd, const char *path, const struct sbx_write_opts *w,
		    const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err);
int sbx_fs_write_buf(const char *addr, const void *data, size_t len, const char *path,
		     const struct sbx_write_opts *w, const struct sbx_fs_opts *o,
		     struct sbx_error *err);

/* For programs that produce the bytes themselves: open, write any number
 * of times, then close (which commits) or abort (nothing is written). */
struct sbx_fs_writer;
int sbx_fs_writer_open(const char *addr, const char *path, const struct sbx_write_opts *w,
		       const struct sbx_fs_opts *o, struct sbx_fs_writer **out,
		       struct sbx_error *err);
int sbx_fs_writer_write(struct sbx_fs_writer *wr, const void *data, size_t len,
			struct sbx_error *err);
int sbx_fs_writer_close(struct sbx_fs_writer *wr, struct sbx_xfer *x, struct sbx_error *err);
void sbx_fs_writer_abort(struct sbx_fs_writer *wr);

/* Streams path (from offset, at most length bytes; length < 0: to the
 * end) into fd. st, if not NULL, receives the file's stat. The bytes are
 * written as they come: on a digest mismatch fd already has them, and
 * the call fails. */
int sbx_fs_read_fd(const char *addr, const char *path, uint64_t offset, int64_t length, int fd,
		   const struct sbx_fs_opts *o, struct fs_stat *st, struct sbx_xfer *x,
		   struct sbx_error *err);

/* Downloads: which of the sandbox's permission bits a local file or
 * directory gets. By default its bits less this process's umask, and
 * never setuid, setgid or sticky: the sandbox chose them. */
#define SBX_DL_PRESERVE 0x10000u   /* the bits as they are, but setuid and
				      setgid (cp -p); a single file keeps
				      its times too */
#define SBX_DL_KEEP_SETID 0x20000u /* with PRESERVE: setuid and setgid too,
				      a program the sandbox wrote running
				      as its local owner */

/* Downloads a file to the local path atomically (a temporary file in the
 * same directory, renamed over local once complete and verified), with
 * the remote permission bits as flags (SBX_DL_*) say. A body longer than
 * the size the agent announced fails (EPROTO) and leaves nothing. */
int sbx_fs_download(const char *addr, const char *remote, const char *local, uint32_t flags,
		    const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err);

/* ---- trees ---- */

/* Copies the local tree at local (a directory, file or link) to remote:
 * a new remote directory appears whole or not at all; into an existing
 * one the tree merges, file by file. Modes, times and symbolic links are
 * kept; special files are skipped (counted). flags: FS_F_CREATE_NEW
 * (remote must not exist), FS_F_MKDIRS. */
int sbx_fs_upload_tree(const char *addr, const char *local, const char *remote, uint32_t flags,
		       const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err);
/* The other way; the same rules for local, and flags may add SBX_DL_*.
 * Only the directories the download makes get the remote modes and
 * times; one that was there (local itself, in a merge) keeps its own. At
 * most SBX_DL_DIRS_MAX directories; a file longer than announced fails. */
#define SBX_DL_DIRS_MAX (1024 * 1024)
/* The cap in force: SBX_DL_DIRS_MAX. A test-only hook: the unit test of
 * the cap (tests/unit/test_fs_download.c) lowers it, so that a hostile
 * agent's million directories need not be made on disk to check it. */
extern size_t sbx_dl_dirs_max;
int sbx_fs_download_tree(const char *addr, const char *remote, const char *local, uint32_t flags,
			 const struct sbx_fs_opts *o, struct sbx_xfer *x, struct sbx_error *err);

#endif
