/* Codec for the file operations (docs/protocol/files.md): the request
 * frames 0x0020-0x003f, the stream and reply frames 0x0200-0x02ff, the
 * fixed stat record, directory entry batches and tree entries. Shared by
 * the agent (fs/) and libsbx (libsbx/fs_*.c), like the rest of the codec. */
#ifndef SBX_PROTO_FS_H
#define SBX_PROTO_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsock/proto.h"

enum fs_frame_type {
	/* requests, client -> agent; each starts one operation */
	FT_FS_WRITE = 0x0020,
	FT_FS_READ = 0x0021,
	FT_FS_STAT = 0x0022,
	FT_FS_READDIR = 0x0023,
	FT_FS_MKDIR = 0x0024,
	FT_FS_REMOVE = 0x0025,
	FT_FS_RENAME = 0x0026,
	FT_FS_COPY = 0x0027,
	FT_FS_CHMOD = 0x0028,
	FT_FS_CHOWN = 0x0029,
	FT_FS_SYMLINK = 0x002a,
	FT_FS_LINK = 0x002b,
	FT_FS_READLINK = 0x002c,
	FT_FS_REALPATH = 0x002d,
	FT_FS_TRUNCATE = 0x002e,
	FT_FS_UTIMES = 0x002f,
	FT_FS_MKTEMP = 0x0030,
	FT_FS_TREE_READ = 0x0031,
	FT_FS_TREE_WRITE = 0x0032,
	FT_FS_LOCK = 0x0033,     /* held until the client's FS_END or hangup */
	/* streams and replies */
	FT_FS_DATA = 0x0200,     /* both ways: file bytes */
	FT_FS_END = 0x0201,      /* both ways: u64 count [+ digest] */
	FT_FS_STAT_OK = 0x0202,  /* a->c: fields STAT, TARGET */
	FT_FS_PATH_OK = 0x0203,  /* a->c: a path */
	FT_FS_DIRENTS = 0x0204,  /* a->c: a batch of directory entries */
	FT_FS_ENTRY = 0x0205,    /* both ways: one entry of a tree */
	FT_FS_TREE_END = 0x0206, /* both ways: end of a tree, counts */
};

/* Request fields. One tag space for every request; which fields a
 * request takes is in the table in proto_fs.c (and files.md). */
enum {
	FS_PATH = 1,   /* the path operated on */
	FS_PATH2,      /* the second path: destination, new name */
	FS_USER,       /* user name or decimal uid to act as */
	FS_FLAGS,      /* u32, FS_F_* */
	FS_MODE,       /* u32, permission bits (07777) */
	FS_UID,        /* u32 */
	FS_GID,        /* u32 */
	FS_OFFSET,     /* u64 */
	FS_LENGTH,     /* u64 */
	FS_ATIME,      /* 12 bytes: struct fs_time */
	FS_MTIME,      /* 12 bytes */
	FS_TARGET,     /* a symbolic link's text */
	FS_PREFIX,     /* temporary names */
	FS_SUFFIX,
	FS_SIZE,       /* u64: the size about to be written (a hint) */
	FS_FIELD_MAX = FS_SIZE,
};

/* Request flags (FS_FLAGS) */
#define FS_F_CREATE_NEW 0x0001u /* fail with EEXIST when the target exists */
#define FS_F_NO_CREATE 0x0002u  /* fail with ENOENT when it does not */
#define FS_F_APPEND 0x0004u     /* write: append in place (not atomic) */
#define FS_F_IN_PLACE 0x0008u   /* write: truncate and write in place (not atomic) */
#define FS_F_MKDIRS 0x0010u     /* make missing parent directories */
#define FS_F_NO_VERIFY 0x0020u  /* no BLAKE2b digest of the body */
#define FS_F_NOFOLLOW 0x0040u   /* act on a symbolic link itself */
#define FS_F_RECURSIVE 0x0080u  /* remove: whole trees */
#define FS_F_STAT 0x0100u       /* readdir: a stat record with each entry */
#define FS_F_DIRECTORY 0x0200u  /* mktemp: a directory */
#define FS_F_EXCLUSIVE 0x0400u  /* lock: exclusive (else shared) */
#define FS_F_ALL 0x07ffu

/* Times: nsec 0..999999999, or one of these. */
#define FS_TIME_NOW 0xffffffffu
#define FS_TIME_OMIT 0xfffffffeu
struct fs_time {
	int64_t sec;
	uint32_t nsec;
};
#define FS_TIME_LEN 12

#define FS_PATH_MAX 4095  /* bytes of a path, without the NUL */
#define FS_NAME_MAX 255   /* bytes of one name in a directory */
#define FS_USER_MAX 32
#define FS_AFFIX_MAX 255  /* mktemp prefix and suffix */
/* A body's digest (docs/protocol/files.md, "Integrity"): BLAKE2b-256
 * (libsodium crypto_generichash) in protocol version 1, XXH3-128 from
 * version 2 on. FS_DIGEST_LEN is the longer, for buffers. */
#define FS_DIGEST_LEN 32
#define FS_DIGEST_BLAKE2B_LEN 32
#define FS_DIGEST_XXH3_LEN 16
#define FS_DIRENTS_MAX (60 * 1024) /* what an agent puts in one DIRENTS */
/* A file body is never longer than the size its stat announced (a file
 * that grows while it is read is sent as it was), except for a file of
 * size 0, which in /proc and /sys says nothing: at most this much. */
#define FS_PSEUDO_MAX (1024 * 1024)

/* A decoded request. Strings are NUL-terminated copies (NULL when not
 * given); `have` has bit (1 << tag) for every field present. */
struct fs_req {
	uint16_t type;
	uint32_t have;
	char *path, *path2, *user, *target, *prefix, *suffix;
	uint32_t flags, mode, uid, gid;
	uint64_t offset, length, size;
	struct fs_time atime, mtime;
	void *mem;
};
#define FS_HAVE(tag) (1u << (tag))
static inline bool fs_req_has(const struct fs_req *r, int tag)
{
	return (r->have & FS_HAVE(tag)) != 0;
}

/* The name of a frame type in this feature's ranges, or "unknown". */
const char *proto_fs_type_name(uint16_t type);

/* Encodes r as a request of type r->type: strings that are not NULL,
 * numbers whose bit is set in r->have. */
int proto_fs_req_put(struct buf *b, const struct fs_req *r);
/* Decodes and checks a request (allowed and required fields, flags,
 * sizes, strings). Free with proto_fs_req_free. */
int proto_fs_req_decode(const struct frame *f, struct fs_req *r, struct proto_err *e);
void proto_fs_req_free(struct fs_req *r);

/* ---- the stat record: 100 bytes, little-endian ---- */
struct fs_stat {
	uint32_t mode; /* type and permission bits, Linux values */
	uint32_t uid, gid;
	uint64_t size, nlink, ino, dev, rdev, blocks;
	struct fs_time atime, mtime, ctime;
};
#define FS_STAT_LEN 100
void proto_fs_stat_put(uint8_t p[FS_STAT_LEN], const struct fs_stat *st);
int proto_fs_stat_get(const uint8_t *p, size_t len, struct fs_stat *st, struct proto_err *e);

/* STAT_OK: fields 1 STAT, 2 TARGET (a symbolic link's text, when the
 * request did not follow it). */
enum { FS_OK_STAT = 1, FS_OK_TARGET = 2 };
int proto_fs_stat_ok_put(struct buf *b, const struct fs_stat *st, const char *target,
			 size_t target_len);
/* target (may be NULL) receives the link text, NUL-terminated. */
int proto_fs_stat_ok_decode(const struct frame *f, struct fs_stat *st, char *target,
			    size_t target_size, struct proto_err *e);

/* The digest length of a connection that agreed on this protocol
 * version: FS_DIGEST_BLAKE2B_LEN or FS_DIGEST_XXH3_LEN. */
size_t proto_fs_digest_len(uint16_t version);
/* END: u64 count, then the digest (dlen bytes) unless the transfer is
 * unverified (digest NULL). */
int proto_fs_end_put(struct buf *b, uint64_t count, const uint8_t *digest, size_t dlen);
/* An END of exactly 8 or 8 + dlen bytes. digest may be NULL;
 * *has_digest tells whether one came. */
int proto_fs_end_decode(const struct frame *f, size_t dlen, uint64_t *count, uint8_t *digest,
			bool *has_digest, struct proto_err *e);

/* PATH_OK: the path bytes, 1..FS_PATH_MAX, no NUL. */
int proto_fs_path_ok_decode(const struct frame *f, char *out, size_t n, struct proto_err *e);

/* ---- DIRENTS: u8 flags (bit 0: stat records follow names), then
 * entries: u16 name length, u8 type (DT_*), name, [stat record]. ---- */
#define FS_DIRENTS_F_STAT 0x01u
struct fs_dirent {
	char name[FS_NAME_MAX + 1];
	uint8_t type;
	bool has_stat;
	struct fs_stat st;
};
/* Begins a DIRENTS frame in b; add entries while proto_fs_dirents_room
 * allows, then proto_end. */
int proto_fs_dirents_begin(struct buf *b, bool with_stat, size_t *mark);
size_t proto_fs_dirent_len(size_t namelen, bool with_stat);
int proto_fs_dirent_put(struct buf *b, const char *name, size_t namelen, uint8_t type,
			const struct fs_stat *st);
struct fs_dirent_iter {
	const uint8_t *p;
	size_t left;
	bool with_stat;
};
int proto_fs_dirents_iter(struct fs_dirent_iter *it, const struct frame *f, struct proto_err *e);
/* 1 and fills d for each entry, 0 at the end, -errno for a bad entry. */
int proto_fs_dirent_next(struct fs_dirent_iter *it, struct fs_dirent *d, struct proto_err *e);

/* ---- trees: ENTRY fields 1 PATH (relative; empty for the root),
 * 2 STAT, 3 TARGET (symbolic links). Regular files are followed by
 * their DATA frames and an END. TREE_END: 3 x u64. ---- */
enum { FS_ENTRY_PATH = 1, FS_ENTRY_STAT = 2, FS_ENTRY_TARGET = 3 };
struct fs_entry {
	char path[FS_PATH_MAX + 1];
	struct fs_stat st;
	char target[FS_PATH_MAX + 1];
};
int proto_fs_entry_put(struct buf *b, const char *path, const struct fs_stat *st,
		       const char *target);
int proto_fs_entry_decode(const struct frame *f, struct fs_entry *en, struct proto_err *e);

struct fs_tree_end {
	uint64_t entries; /* ENTRY frames sent */
	uint64_t bytes;   /* file bytes sent */
	uint64_t skipped; /* entries left out (sockets, devices, fifos) */
};
#define FS_TREE_END_LEN 24
int proto_fs_tree_end_put(struct buf *b, const struct fs_tree_end *t);
int proto_fs_tree_end_decode(const struct frame *f, struct fs_tree_end *t, struct proto_err *e);

/* The wording of a file error, the same from every libc: "no such file
 * or directory" for ENOENT (err of either sign); unusual codes fall back
 * to strerror in lower case. */
const char *proto_fs_strerror(int err, char *buf, size_t n);

/* A tree entry's relative path: empty (the root), or names separated by
 * single '/', none empty, "." or "..", no NUL, no leading or trailing
 * '/'. Returns 0 or -EINVAL with e filled. */
int proto_fs_relpath_check(const char *p, size_t len, struct proto_err *e);

#endif
