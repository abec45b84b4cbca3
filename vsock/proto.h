/* The sbx wire protocol codec (docs/PROTOCOL.md), shared by the agent and
 * the host client so both ends run the same code. Decoders check sizes
 * before touching a byte and never allocate more than a frame's payload
 * allows; encoders append to a bounded struct buf. */
#ifndef SBX_PROTO_H
#define SBX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* The versions this code speaks, lowest to highest; a client offers the
 * range, the agent picks the highest both speak (docs/PROTOCOL.md).
 * Version 2 is version 1 with XXH3-128 file digests instead of BLAKE2b-256
 * (docs/protocol/files.md, "Integrity"); nothing else differs. */
#define PROTO_VERSION_MIN 1
#define PROTO_VERSION 2
#define PROTO_MAGIC "SBX"             /* 4 bytes with its NUL */
#define PROTO_HDR_LEN 8
#define PROTO_FRAME_MAX (1u << 20)    /* payload cap, bytes */
#define PROTO_MSG_MAX 4096            /* error and exit messages */
#define PROTO_NONCE_LEN 32
#define PROTO_AUTH_LEN 32
#define PROTO_DEFAULT_PORT 1024

/* Frame types by range; each feature's frames are defined and named in
 * its own codec file (vsock/proto_<feature>.h):
 *   0x0001-0x000f  hello, errors              (this file)
 *   0x0010-0x001f  commands                   (this file)
 *   0x0020-0x003f  file operations, requests  (proto_fs.h)
 *   0x0040-0x005f  ports and SSH, requests    (proto_net.h)
 *   0x0060-0x007f  the sandbox: shutdown, info, ready, sessions (this file)
 *   0x0100-0x01ff  command streams            (this file)
 *   0x0200-0x02ff  file streams and replies   (proto_fs.h)
 *   0x0300-0x03ff  net streams and replies    (proto_net.h) */
#define FT_FS_FIRST 0x0020
#define FT_FS_LAST 0x003f
#define FT_FS_STREAM_FIRST 0x0200
#define FT_FS_STREAM_LAST 0x02ff
#define FT_NET_FIRST 0x0040
#define FT_NET_LAST 0x005f
#define FT_NET_STREAM_FIRST 0x0300
#define FT_NET_STREAM_LAST 0x03ff

enum frame_type {
	FT_HELLO = 0x0001,
	FT_HELLO_OK = 0x0002,
	FT_AUTH = 0x0003,
	FT_ERROR = 0x0004,
	FT_OK = 0x0005,
	FT_EXEC = 0x0010,
	FT_ATTACH = 0x0011,
	FT_PS = 0x0012,
	FT_OUTPUT = 0x0013,
	FT_SHUTDOWN = 0x0060,
	FT_SESSION = 0x0061,
	FT_EXTEND = 0x0062,
	FT_ENV = 0x0063,
	FT_ENV_LIST = 0x0064,
	FT_LIFETIME = 0x0065,
	FT_SET_TIME = 0x0066,
	FT_FREEZE = 0x0067,
	FT_IDENTITY = 0x0068,
	FT_INFO = 0x0070,
	FT_INFO_OK = 0x0071,
	FT_READY = 0x0072,
	FT_STDIN = 0x0100,
	FT_STDIN_EOF = 0x0101,
	FT_SIGNAL = 0x0102,
	FT_RESIZE = 0x0103,
	FT_ACK = 0x0104,
	FT_STARTED = 0x0110,
	FT_STDOUT = 0x0111,
	FT_STDERR = 0x0112,
	FT_EXIT = 0x0113,
	FT_ATTACHED = 0x0114,
	FT_OUTPUT_OK = 0x0115,
	FT_PS_ENTRY = 0x0120,
};

/* EXEC fields and flags */
enum { EXEC_ARG = 1, EXEC_ENV, EXEC_CWD, EXEC_USER, EXEC_FLAGS, EXEC_PTY, EXEC_STDOUT_CONN };
/* OUTPUT_OK's payload and EXEC's STDOUT_CONN: the id of a connection
 * waiting to be a command's standard output. */
#define PROTO_OUTPUT_ID_LEN 16
#define EXEC_F_CLEAR_ENV 0x1u
#define EXEC_F_STDIN 0x2u
#define EXEC_F_NO_STDOUT 0x4u
#define EXEC_F_NO_STDERR 0x8u
#define EXEC_F_DETACH 0x10u   /* the command outlives its client */
#define EXEC_F_ALL 0x1fu

/* ATTACH fields */
enum { ATTACH_PID = 1 };

/* PS_ENTRY fields */
enum { PS_PID = 1, PS_ARGV, PS_STATE, PS_STARTED_NS, PS_STATUS, PS_FLAGS };
enum { PS_RUNNING = 0, PS_EXITED = 1, PS_SIGNALED = 2 };
#define PS_F_DETACHED 0x1u
#define PS_F_ATTACHED 0x2u
#define PS_F_PTY 0x4u

/* ACK flags */
#define ACK_F_EXIT 0x1u       /* the client has the EXIT frame: forget the job */

/* ENV fields and operations */
enum { ENV_OP = 1, ENV_ENTRY, ENV_NAME };
enum { ENV_LIST = 1, ENV_SET, ENV_UNSET };

/* LIFETIME / SET_TIME fields */
enum { LIFE_KIND = 1, LIFE_LEFT_NS, LIFE_REALTIME_NS, LIFE_SESSIONS, LIFE_GRACE_LEFT_NS };
enum { LIFE_NONE = 0, LIFE_DURATION = 1, LIFE_SESSION = 2 };

/* IDENTITY fields (a template's clone, docs/PROTOCOL.md "Templates"):
 * the clone's configuration text, seed for the guest's RNG, the host's
 * wall clock */
enum { IDENT_CONFIG = 1, IDENT_SEED, IDENT_REALTIME_NS };
#define IDENT_SEED_MIN 32
#define IDENT_SEED_MAX 512

/* INFO_OK fields */
enum { INFO_VERSION = 1, INFO_HOSTNAME, INFO_KERNEL, INFO_UPTIME_NS, INFO_PID1,
       INFO_LIFETIME_KIND, INFO_LIFETIME_LEFT_NS, INFO_SESSIONS, INFO_JOBS, INFO_GRACE_LEFT_NS };

/* SHUTDOWN fields */
enum { SHUTDOWN_REASON = 1 };
#define PROTO_REASON_MAX 63

/* READY fields: CLOCK_BOOTTIME instants in the guest, in ns */
enum { READY_UPTIME_NS = 1, READY_START_NS, READY_LISTEN_NS, READY_MODULES_NS };

/* EXIT.how */
enum { EXIT_EXITED = 0, EXIT_SIGNALED = 1, EXIT_NOT_STARTED = 2 };
#define EXIT_F_CORE 0x1u
#define EXIT_F_OOM 0x2u    /* killed by the kernel's out-of-memory killer */

#define PROTO_SIG_MAX 64
#define PROTO_WINSIZE_MAX 9999

struct frame {
	uint16_t type;
	uint32_t len;
	const uint8_t *payload;
};

/* An error as the ERROR frame carries it: code is a positive errno, msg
 * names what failed. Decoders fill it; so do the agent's operations,
 * which hand it to conn_fail (conn/conn.h), the one way they report. */
struct proto_err {
	int code;
	char msg[PROTO_MSG_MAX + 1];
};

const char *proto_type_name(uint16_t type);

/* Parses one frame from p[0..avail). Returns the frame's total size when a
 * whole frame is there, 0 when more bytes are needed, or -errno (with e
 * filled) for a bad header. f->payload points into p. */
long proto_frame_parse(const uint8_t *p, size_t avail, struct frame *f, struct proto_err *e);
void proto_hdr_put(uint8_t hdr[PROTO_HDR_LEN], uint16_t type, uint32_t len);

/* Appends a whole frame. */
int proto_put(struct buf *b, uint16_t type, const void *payload, size_t len);
/* For variable payloads: begin reserves the header and returns its offset
 * from buf_head; end writes the length. */
int proto_begin(struct buf *b, uint16_t type, size_t *mark);
int proto_end(struct buf *b, size_t mark);
int proto_field_put(struct buf *b, uint16_t tag, const void *val, size_t len);
int proto_field_put_str(struct buf *b, uint16_t tag, const char *s);
int proto_field_put_u32(struct buf *b, uint16_t tag, uint32_t v);
int proto_field_put_u64(struct buf *b, uint16_t tag, uint64_t v);

/* Field iteration: returns 1 and fills tag/val/len for each field, 0 at the
 * end, -EBADMSG (e filled) for a truncated field. */
struct field_iter {
	const uint8_t *p;
	size_t left;
	uint16_t frame_type;
};
void proto_fields(struct field_iter *it, const struct frame *f);
int proto_field_next(struct field_iter *it, uint16_t *tag, const uint8_t **val,
		     uint32_t *len, struct proto_err *e);

/* Sets e and returns -code. */
int proto_fail(struct proto_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Exact payload size check for fixed-size frames. */
int proto_want_len(const struct frame *f, size_t len, struct proto_err *e);

/* ---- messages ---- */
int proto_hello_put(struct buf *b, uint16_t vmin, uint16_t vmax);
int proto_hello_decode(const struct frame *f, uint16_t *vmin, uint16_t *vmax, struct proto_err *e);

struct hello_ok {
	uint16_t version;
	uint16_t flags; /* bit 0: authentication required */
	uint8_t nonce[PROTO_NONCE_LEN];
};
#define HELLO_F_AUTH 0x1u
/* AUTH: the proof of the token for a HELLO_OK nonce (HMAC-SHA-512-256,
 * libsodium's crypto_auth, keyed with a BLAKE2b hash of the token). */
#define PROTO_TOKEN_MIN 16
#define PROTO_TOKEN_MAX 256
void proto_auth_key(const char *token, uint8_t key[32]);
void proto_auth_mac(const uint8_t key[32], const uint8_t nonce[PROTO_NONCE_LEN],
		    uint8_t mac[PROTO_AUTH_LEN]);
/* Constant time; true when mac proves the key. */
bool proto_auth_check(const uint8_t key[32], const uint8_t nonce[PROTO_NONCE_LEN],
		      const uint8_t mac[PROTO_AUTH_LEN]);

int proto_hello_ok_put(struct buf *b, const struct hello_ok *h);
int proto_hello_ok_decode(const struct frame *f, struct hello_ok *h, struct proto_err *e);

int proto_error_put(struct buf *b, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* msg receives a NUL-terminated copy, cut to msglen - 1. */
int proto_error_decode(const struct frame *f, int *code, char *msg, size_t msglen,
		       struct proto_err *e);

struct exec_req {
	char **argv; /* NULL-terminated */
	size_t argc;
	char **env;  /* NULL-terminated "NAME=value" */
	size_t envc;
	char *cwd;   /* NULL when not given */
	char *user;  /* NULL when not given */
	uint32_t flags;
	bool pty;
	uint16_t rows, cols;
	bool out_conn; /* STDOUT_CONN given: out_id names the connection */
	uint8_t out_id[PROTO_OUTPUT_ID_LEN];
	void *mem;   /* one allocation holding everything above */
};
int proto_exec_put(struct buf *b, const struct exec_req *r);
int proto_exec_decode(const struct frame *f, struct exec_req *r, struct proto_err *e);
void proto_exec_free(struct exec_req *r);

int proto_u32_put(struct buf *b, uint16_t type, uint32_t v);
int proto_u32_decode(const struct frame *f, uint32_t *v, struct proto_err *e);
int proto_signal_decode(const struct frame *f, int *sig, struct proto_err *e);
int proto_resize_put(struct buf *b, uint16_t rows, uint16_t cols);
int proto_resize_decode(const struct frame *f, uint16_t *rows, uint16_t *cols, struct proto_err *e);

struct exit_status {
	uint8_t how;   /* EXIT_* */
	uint8_t flags; /* EXIT_F_* */
	int32_t value;
	char msg[PROTO_MSG_MAX + 1];
};
int proto_exit_put(struct buf *b, const struct exit_status *x);
int proto_exit_decode(const struct frame *f, struct exit_status *x, struct proto_err *e);

struct info {
	char version[64];
	char hostname[65];
	char kernel[65];
	uint64_t uptime_ns;
	bool pid1;
	uint32_t lifetime_kind;   /* LIFE_* */
	uint64_t lifetime_left_ns;
	uint32_t sessions;
	uint32_t jobs;
	uint64_t grace_left_ns;   /* session lifetime, no session: until shutdown */
};
/* What the agent tells the host when it is ready (docs/PROTOCOL.md). */
struct ready_info {
	uint64_t uptime_ns;   /* when it sent READY */
	uint64_t start_ns;    /* PID 1's first instruction */
	uint64_t listen_ns;   /* the listening socket existed */
	uint64_t modules_ns;  /* time spent loading kernel modules */
};
int proto_ready_put(struct buf *b, const struct ready_info *r);
int proto_ready_decode(const struct frame *f, struct ready_info *r, struct proto_err *e);

/* SHUTDOWN: reason may be NULL. */
int proto_shutdown_put(struct buf *b, const char *reason);
int proto_shutdown_decode(const struct frame *f, char reason[PROTO_REASON_MAX + 1],
			  struct proto_err *e);

/* ATTACHED: the reply to ATTACH (and to a detached EXEC's client). */
struct attached {
	uint32_t pid;
	uint32_t flags;        /* PS_F_PTY */
	uint64_t out_base;     /* stream offsets the data frames that follow start at */
	uint64_t err_base;
};
int proto_attached_put(struct buf *b, const struct attached *a);
int proto_attached_decode(const struct frame *f, struct attached *a, struct proto_err *e);

struct ack {
	uint64_t out_off;      /* bytes of each stream received in all */
	uint64_t err_off;
	uint32_t flags;        /* ACK_F_* */
};
int proto_ack_put(struct buf *b, const struct ack *a);
int proto_ack_decode(const struct frame *f, struct ack *a, struct proto_err *e);

struct ps_entry {
	uint32_t pid;
	char argv[256];
	uint32_t state;        /* PS_* */
	uint64_t started_ns;   /* CLOCK_REALTIME in the guest */
	int32_t status;        /* exit code or signal */
	uint32_t flags;        /* PS_F_* */
};
int proto_ps_entry_put(struct buf *b, const struct ps_entry *p);
int proto_ps_entry_decode(const struct frame *f, struct ps_entry *p, struct proto_err *e);

/* LIFETIME: the reply to EXTEND and SET_TIME. */
struct lifetime {
	uint32_t kind;         /* LIFE_* */
	uint64_t left_ns;      /* duration: until power-off */
	uint64_t realtime_ns;  /* the guest's wall clock when it answered */
};
int proto_lifetime_put(struct buf *b, uint16_t type, const struct lifetime *l);
int proto_lifetime_decode(const struct frame *f, struct lifetime *l, struct proto_err *e);

int proto_info_ok_put(struct buf *b, const struct info *i);
int proto_info_ok_decode(const struct frame *f, struct info *i, struct proto_err *e);

#endif
