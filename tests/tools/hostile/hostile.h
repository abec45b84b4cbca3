/* sbx-hostile: what the case files share. A case is data (one bad frame
 * and the ERROR it must get, run by bad_frame_check) or, where it needs
 * more than one frame, a function; each area (frames.c, exec.c, fs.c,
 * net.c, control.c, conns.c, auth.c) holds a table of its cases, main.c
 * runs them in turn and checks the server's health after each. */
#ifndef SBX_HOSTILE_H
#define SBX_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "vsock/addr.h"
#include "vsock/proto.h"

#define RECV_MS 15000            /* an answer takes at most this long (> HANDSHAKE_S) */
#define SETTLE_MS 8000           /* for the server to give back fds and memory */
#define HANDSHAKE_S 10           /* server/conn.c HANDSHAKE_NS */
#define CONN_MAX 1024            /* server/server.c CONN_MAX */

/* main.c: the agent under test and what the run was told. */
extern struct addr agent;
extern pid_t server;
extern const char *scratch;
extern const char *token;        /* $HOSTILE_TOKEN: the agent's, for the auth: cases */
extern uint8_t auth_key[32];
extern long rss_slack_kib;
extern char why[2048];           /* why the case failed */
extern int base_fds;
extern long base_rss;
extern long worst_rss_delta;

int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ms(void);

/* ---- client.c: a raw client ---- */

struct peer {
	int fd;
	struct buf rx;
	size_t consumed; /* bytes of rx the last frame returned used */
	bool eof;
};

/* One field of a request: tag, bytes, length. A list ends with tag 0. */
struct field {
	uint16_t tag;
	const void *data;
	size_t len;
};

int peer_open(struct peer *p);
void peer_close(struct peer *p);
int send_raw(struct peer *p, const void *data, size_t len);
int send_buf(struct peer *p, struct buf *b);
int send_frame(struct peer *p, uint16_t type, const void *payload, size_t len);
int send_hello(struct peer *p);
int send_exec(struct peer *p, char **argv, char **env, const char *cwd, uint32_t flags);
int send_fields(struct peer *p, uint16_t type, const struct field *fields);
int recv_frame(struct peer *p, struct frame *f, int timeout_ms);
int recv_answer(struct peer *p, struct frame *f, int timeout_ms);
int expect_eof(struct peer *p);
int expect_error(struct peer *p, int code, const char *text);
int expect_answer(struct peer *p, uint16_t want, const char *what, char *text, size_t n);
int expect_exit(struct peer *p, int how, int value, const char *text, struct buf *out);
const uint8_t *u32le(uint32_t v);
int request_error(uint16_t type, const void *payload, size_t len, int code, const char *text);
int run(char **argv, char **env, const char *cwd, uint32_t flags, int how, int value,
	const char *text, struct buf *out);
int out_is(struct buf *out, const char *want);
int exit_prints(struct peer *p, const char *want);
int run_prints(char **argv, char **env, const char *cwd, const char *want);
char *long_path(size_t len);
int open_exec(struct peer *p, const struct exec_req *r);
int start_cmd(struct peer *p, bool pty, uint32_t flags, pid_t *pid);
int hello_for_nonce(struct peer *p, uint8_t nonce[PROTO_NONCE_LEN]);
int fs_expect(uint16_t type, const char *path, const char *path2, const char *target,
	      uint32_t flags, uint16_t want, char *text, size_t n);
int fs_error(uint16_t type, const char *path, const char *path2, uint32_t flags, int code,
	     const char *text);

/* ---- health.c: the server's health ---- */

int fd_count(pid_t pid);
long rss_kib(pid_t pid);
int echo_works(void);
int procs_with(const char *marker);
int wait_procs_gone(const char *marker, int ms);
int healthy(void);

/* ---- a case as data ---- */

/* Where the bad frame is sent. */
enum bad_start {
	AFTER_HELLO,    /* after HELLO (and AUTH, with a token) */
	NO_HELLO,       /* where HELLO belongs */
	AFTER_NONCE,    /* after HELLO_OK asked for the token, instead of AUTH */
	IN_COMMAND,     /* during a running `sleep 30` */
	IN_PTY_COMMAND, /* the same, with a terminal */
};

/* What it is made of. */
enum bad_shape {
	PAYLOAD, /* a frame of .type around .bytes */
	FIELDS,  /* HELLO and a frame of .type made of .fields, in one write */
	HEADER,  /* only a header of .type claiming .claim bytes, with flags .hdr_flags */
	RAW,     /* .bytes as they are */
};

struct bad_frame {
	enum bad_start start;
	enum bad_shape shape;
	uint16_t type;
	const char *bytes;
	size_t len;
	struct field fields[4];
	uint32_t claim;
	uint8_t hdr_flags;
	int code;               /* the ERROR it must get, then the end of the connection */
	const char *text;       /* ... with a message containing this */
};

/* Bytes of a string literal (NULs inside count), for .bytes/.len and fields. */
#define BYTES(s) .bytes = (s), .len = sizeof(s) - 1
#define FIELD(tag, s) { (tag), (s), sizeof(s) - 1 }
#define ZEROS_8 "\0\0\0\0\0\0\0\0"
#define ZEROS_32 ZEROS_8 ZEROS_8 ZEROS_8 ZEROS_8

int bad_frame_check(const struct bad_frame *c);

struct hostile_case {
	const char *name;
	int (*fn)(void);          /* a case as code, or (fn NULL) */
	struct bad_frame frame;   /* as data */
	const char *bug;          /* a failure here is a bug reported to the owner of the code */
};

struct hostile_area {
	const struct hostile_case *cases;
	size_t n;
};

#define HOSTILE_AREA(name, table) \
	const struct hostile_area name = { (table), sizeof(table) / sizeof((table)[0]) }

extern const struct hostile_area hostile_frames, hostile_exec, hostile_fs, hostile_net,
	hostile_control, hostile_conns, hostile_auth;

#endif
