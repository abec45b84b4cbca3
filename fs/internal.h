/* What the pieces of fs/ share: acting as a user, paths, error replies,
 * the body sender. Not for outside fs/
 * (fs/fs.h is the public side). */
#ifndef SBX_FS_INTERNAL_H
#define SBX_FS_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <sodium.h>

#include "conn/conn.h"
#include "lib/atomic.h"
#include "lib/hasher.h"
#include "lib/tree.h"
#include "lib/loop.h"
#include "lib/user.h"
#include "vsock/proto_fs.h"

/* ---- cred.c: whose permissions an operation uses ---- */

/* The user a request acts as. Operations run with its fsuid, fsgid and
 * groups (setfsuid/setfsgid/setgroups around the system calls, restored
 * after), so the kernel checks permissions as it would for that user's
 * own processes. */
struct config;

struct fs_cred {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[USER_GROUPS_MAX];
	bool other;     /* not the agent's own identity: switch */
	bool entered;
	char name[33];
};

/* user: a name or decimal uid; NULL means the sandbox's default user
 * (cfg's). -ENOENT: no such user. */
int fs_cred_init(const struct config *cfg, const char *user, struct fs_cred *cr);
int fs_cred_enter(struct fs_cred *cr);
void fs_cred_leave(struct fs_cred *cr);
/* True when acting as root (permission checks are bypassed). */
static inline bool fs_cred_is_root(const struct fs_cred *cr) { return cr->uid == 0; }

/* ---- path.c ---- */

/* Joins path to base unless it is absolute. -EINVAL for an empty path,
 * -ENAMETOOLONG when the result does not fit. */
int fs_path_join(const char *base, const char *path, char *out, size_t n);
/* Splits an absolute path into its directory and last name, ignoring
 * trailing slashes. -EISDIR for "/" and names "." or "..". */
int fs_path_split(const char *path, char *dir, size_t dirn, char *name, size_t namen);
/* Replaces path by what its last component points to while that is a
 * symbolic link (at most 40 times: -ELOOP). A dangling link yields the
 * path it names. */
int fs_path_follow(char *path, size_t n);
/* mkdir -p: every missing directory of path, with mode (umask applies). */
int fs_mkdir_p(const char *path, mode_t mode);
/* The umask of the agent (read once). */
mode_t fs_umask(void);


/* ---- errors ---- */

/* Fills e with "<cause>: <what>" (err: errno, either sign; 0 is EIO), the
 * form of every file error; returns -code. */
int fs_err(struct proto_err *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The stat record of st. */
void fs_stat_from(struct fs_stat *out, const struct stat *st);

/* ---- send.c: a file body to the client ---- */

struct fs_sender {
	int fd;
	int pipe[2];        /* for splice(2); -1 when copying */
	size_t chunk;       /* bytes per DATA frame */
	uint64_t off;
	uint64_t left;      /* still wanted; UINT64_MAX: until EOF */
	uint64_t sent;
	bool verify;
	bool active;
	bool use_splice;
	uint64_t size;      /* a regular file's size when opened (0: none said) */
	struct hasher h;
};
void fs_sender_init(struct fs_sender *s);
/* fs_sender_pump's failure for a body that ended before its file's size
 * when opened: not an errno, so that a file system's own ENODATA (FUSE,
 * virtio-fs) stays what it is. fs_sender_err names it. */
#define FS_SHRANK (-0x10000)
/* Starts sending fd (which the sender then owns) from off, at most len
 * bytes; the pipe is made once and reused by later files. */
int fs_sender_start(struct fs_sender *s, int fd, uint64_t off, uint64_t len, bool verify,
		    const struct conn *c);
/* How much of a file with stat st a body from off sends: no more than
 * len, nor than the size st announces (FS_PSEUDO_MAX for size 0). */
uint64_t fs_send_len(const struct stat *st, uint64_t off, uint64_t len);
/* Queues DATA frames while the connection takes them, and the END when
 * the body is done. Returns 1 when END is queued, 0 when the output
 * queue is busy (call again from `writable`), 2 when it stopped to let
 * other connections run (call again soon), -errno on a read error. */
int fs_sender_pump(struct fs_sender *s, struct conn *c);
void fs_sender_close(struct fs_sender *s);
/* fs_err for what fs_sender_pump returned: a verified body whose file
 * ended early, before its size or the bytes already sent (FS_SHRANK), is
 * EBADMSG, "file changed while it was read". */
int fs_sender_err(struct proto_err *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A deeper socket send buffer for a connection that streams bodies: the
 * agent then hashes the next chunk while the client still drains the
 * last (1 GiB unverified: 0.23 s -> 0.07 s). Bounded per connection. */
void fs_sender_deepen(struct conn *c);

/* ---- the operations ---- */
/* Each takes connection c over, or returns -errno with e filled. */
int fs_write_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		   struct proto_err *e);
int fs_read_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		  struct proto_err *e);
int fs_readdir_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		     struct proto_err *e);
int fs_copy_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *from,
		  const char *to, struct proto_err *e);
int fs_tree_read_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		       struct proto_err *e);
int fs_tree_write_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
			struct proto_err *e);
int fs_lock_start(struct conn *c, struct fs_req *r, struct fs_cred *cr, const char *path,
		  struct proto_err *e);

/* Calls conn_release(c) on the next turn of the loop. For hangup
 * callbacks: sock_close() in conn/conn.c looks at the connection again
 * after the callback returns, so releasing it synchronously there would
 * free it twice. Cancel with fs_release_cancel in destroy. */
struct fs_release {
	struct timer t;
	struct conn *c;
};
void fs_release_later(struct fs_release *r, struct conn *c);
static inline void fs_release_cancel(struct fs_release *r) { timer_cancel(&r->t); }

/* Zeroed memory aligned for the hash state (libsodium declares it
 * 64-byte aligned); free with free(3) or loop_free_later. */
void *fs_zalloc(size_t size);

/* Starts a body digest of the kind connection c agreed on in HELLO
 * (XXH3-128, or BLAKE2b-256 for a version 1 client: lib/hasher.h). */
static inline void fs_hash_init(struct hasher *h, const struct conn *c)
{
	hasher_init(h, proto_fs_digest_len(c->version));
}

#endif
