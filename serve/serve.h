/* sbx serve: the HTTP/WebSocket endpoint the @deno/sandbox SDK drives
 * (docs/protocol/deno.md). One libwebsockets loop on one thread owns every
 * socket and every table below; agent calls, which libsbx makes blocking,
 * run on worker threads that own nothing of the loop's and hand their
 * results back through one locked queue (serve_post) and
 * lws_cancel_service. */
#ifndef SBX_SERVE_H
#define SBX_SERVE_H

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "launcher/sandbox.h"
#include "libsbx/sbx_fs.h"

#define SERVE_ID_LEN 28              /* sbx_loc_ + 20 */
#define SERVE_OWNER_LABEL "sbx.serve.owner"
#define SERVE_OWNER_LEN 32           /* hex of a 16-byte BLAKE2b of the token */
#define SERVE_MSG_MAX (64u << 20)    /* one incoming WebSocket message */
#define SERVE_READ_MAX (64u << 20)   /* readFile inline (base64 stays < 100 MiB) */
#define SERVE_OUT_HIGH (1u << 20)    /* a job's queued output before it waits */
#define SERVE_IN_HIGH (8u << 20)     /* a job's queued input before rx pauses */
#define SERVE_UNCLAIMED_MAX (16u << 20) /* a socket's unclaimed client streams */
#define SERVE_HELD_MAX 4096          /* messages held while a sandbox boots */
#define SERVE_TOKENS_MAX 256

struct serve_opts {
	const char *listen_addr;     /* 127.0.0.1 */
	int port;
	const char *tokens_file;
	const char *image;           /* NULL: minimal */
	unsigned session_grace_s;
	const char *agent;           /* development: every sandbox is this agent, no VM */
	unsigned max_sandboxes;      /* per token */
	uint64_t max_memory_mib;     /* per token, all its sandboxes */
	/* exposeHttp (serve/expose.c): the TLS listener, the domain its
	 * names end in, and its certificate (NULL: made by serve/tls.c) */
	const char *expose_addr;     /* NULL: no exposeHttp listener */
	int expose_port;
	const char *domain;
	const char *tls_cert, *tls_key;
	/* The API's listener: TLS with this certificate and key (NULL: plain) */
	const char *listen_cert, *listen_key;
};

/* A sandbox this server knows. */
enum sbox_state { SBOX_BOOTING, SBOX_READY, SBOX_DEAD };
struct sbox {
	struct sbox *next;
	char id[SERVE_ID_LEN + 1];
	char owner[SERVE_OWNER_LEN + 1];
	enum sbox_state state;
	bool session;
	struct sandbox sb;           /* valid once READY */
	unsigned nconns;
	json_t *labels;              /* the user's, for the list */
	time_t created;
	uint64_t kill_req;           /* a DELETE that came during the boot */
	bool boot_pending;           /* a boot thread holds this box */
	uint64_t memory_mib;
	bool umask_set;              /* fs.umask: the client's mask (else 022) */
	unsigned umask;
};

/* Input handed from the loop to a worker (stdin, upload bodies, signals). */
enum in_kind { IN_DATA, IN_EOF, IN_SIGNAL, IN_ERROR };
struct in_item {
	struct in_item *next;
	enum in_kind kind;
	int sig;
	size_t len;
	uint8_t data[];
};

/* A long call on a worker: a process, a streamed upload, a walk. Shared
 * by the loop and its worker under serve_lock; freed by the last of the
 * two to let go. */
struct job {
	struct job *next;            /* the connection's list (loop only) */
	unsigned refs;
	uint64_t conn_id;
	int efd;                     /* eventfd: the loop wakes the worker */
	bool cancelled;              /* the socket is gone */
	size_t queued;               /* output posted, not yet written out */
	bool throttled;              /* the worker waits for queued to drop */
	struct in_item *in_head, *in_tail;
	size_t in_bytes;
	bool rx_paused;              /* the loop paused the socket for us */
	/* processes */
	pid_t pid;
	bool exited;
	json_t *exit;                /* processWait's ok value */
	json_t *waiters;             /* ids of processWait calls */
	/* the server streams it sends on, and whether the client cancelled them */
	uint64_t sid[2];
	bool sid_cancelled[2];
	/* file handles (open ... fileClose): a path, an offset, the modes */
	uint64_t fh_id;
	char *path;
	uint64_t offset;
	bool fh_read, fh_write, fh_append;
	/* fileLock: the agent connection that holds the lock (closed, and
	 * the lock released, when the handle goes), a lock call running,
	 * and closed: the handle is gone (libsbx polls it while waiting) */
	struct sbx_conn *lock;
	bool lock_exclusive;
	bool locking;
	volatile sig_atomic_t closed;
	/* read-ahead of a handle read in sequence: bytes [ra_off, +ra_len) */
	uint8_t *ra;
	size_t ra_len;
	uint64_t ra_off, ra_next;
	/* a call the client may abort (its abortId): libsbx polls aborted */
	bool has_abort;
	json_int_t abort_id;
	volatile sig_atomic_t aborted;
};

/* What workers post to the loop. */
enum ev_kind {
	EV_SEND,        /* a text message for a socket */
	EV_READY,       /* the socket's sandbox answers: release its calls */
	EV_FAIL,        /* the sandbox could not be reached: close 1011 */
	EV_BOOTED,      /* a create finished (ok or not) */
	EV_PROC,        /* a process started (pid) or exited (exit) */
	EV_RESUME,      /* a job's input drained: read the socket again */
	EV_HTTP,        /* the answer to a deferred HTTP request */
	EV_KILLED,      /* a kill finished */
	EV_DONE,        /* a call with a job of its own ended */
};
struct event {
	struct event *next;
	enum ev_kind kind;
	uint64_t conn_id;            /* or the HTTP request's id */
	struct job *job;             /* EV_SEND from a job, EV_PROC */
	struct sbox *box;            /* EV_BOOTED, EV_KILLED */
	int status;                  /* EV_HTTP; EV_BOOTED: 0 or -errno */
	void *sess;                  /* EV_READY: the session connection */
	json_t *exit;                /* EV_PROC at exit */
	size_t len;
	char text[];                 /* EV_SEND/EV_HTTP body, EV_FAIL reason */
};

extern pthread_mutex_t serve_lock;

/* Posts an event to the loop (any thread). text may be NULL. */
void serve_post(enum ev_kind kind, uint64_t conn_id, struct job *job, const char *text,
		size_t len);
void serve_post_event(struct event *ev);
struct event *serve_event_new(enum ev_kind kind, uint64_t conn_id, const char *text, size_t len);
/* A server stream id: unique in this process, from a random start. */
uint64_t serve_stream_id(void);

/* Base64 of data, malloc'd (NULL: out of memory). */
char *serve_b64(const void *data, size_t len);

/* ---- tokens (serve/tokens.c) ---- */
int tokens_load(const char *path, char err[256]);
/* The owner hash of a token the file holds, or -EACCES (constant time
 * over the tokens). */
int tokens_check(const char *token, char owner[SERVE_OWNER_LEN + 1]);
int tokens_new(const char *path, char *out, size_t n, char err[256]);
const char *tokens_default_path(void);

/* ---- JSON-RPC answers (serve/rpc.c) ---- */
/* {"jsonrpc":"2.0","id":id,"result":{"ok":value}} (steals value). */
char *rpc_ok(json_t *id, json_t *value);
/* {"result":{"error":{constructorName, message, code}}} for -errno r. */
char *rpc_errno(json_t *id, int r, const char *msg);
char *rpc_error_class(json_t *id, const char *cls, const char *code, const char *msg);
/* A JSON-RPC level error. */
char *rpc_fault(json_t *id, int code, const char *msg);
char *rpc_aborted(json_t *id);
char *rpc_notify(const char *method, json_t *params);

/* ---- jobs (serve/job.c) ---- */
struct job *job_new(uint64_t conn_id);
void job_put(struct job *j);             /* drops a reference (takes the lock) */
/* Loop side: hands input to the worker; returns the bytes now waiting. */
size_t job_push(struct job *j, enum in_kind kind, int sig, const void *data, size_t len);
void job_kick(struct job *j);
/* Worker side: the next input (NULL: none), freed by the caller. */
struct in_item *job_pop(struct job *j, bool *resume);
/* Worker side: posts a message counted against the job's output budget. */
void job_send(struct job *j, char *text);
/* Worker side: waits (up to ms) until output drains, input arrives or
 * the job is cancelled; extra_fd (-1: none) is polled for POLLIN. Returns
 * the poll revents of extra_fd. */
int job_wait(struct job *j, int extra_fd, short extra_events, int ms);
bool job_cancelled(struct job *j);
bool job_may_send(struct job *j);
/* Worker side: records a server stream; has the client cancelled it? */
void job_stream_set(struct job *j, int slot, uint64_t sid);
bool job_stream_cancelled(struct job *j, int slot);

/* ---- methods (serve/methods.c, serve/proc.c) ---- */
struct call {
	uint64_t conn_id;
	json_t *id;
	json_t *params;
	char addr[PATH_MAX + 32];
	char token[65];
	char user[33];
	struct job *job;             /* for stream-carrying calls */
	bool job_done;               /* post EV_DONE when the call ends */
	unsigned umask;              /* the sandbox's fs.umask when the call came */
	struct sbx_fs_opts fsopts;   /* serve_fsopts: cancel = the job's aborted */
	int (*fn)(struct call *c);
};
/* Runs c->fn on a new detached worker thread; frees the call after. */
int call_start(struct call *c);
void call_free(struct call *c);
/* The worker ends a call by posting its answer. */
void call_answer(struct call *c, char *text);

int m_env_get(struct call *c);
int m_env_set(struct call *c);
int m_env_delete(struct call *c);
int m_env_to_object(struct call *c);
int m_read_file(struct call *c);
int m_read_text_file(struct call *c);
int m_write_file(struct call *c);
int m_write_text_file(struct call *c);
int m_mkdir(struct call *c);
int m_read_dir(struct call *c);
int m_stat(struct call *c);
int m_lstat(struct call *c);
int m_remove(struct call *c);
int m_rename(struct call *c);
int m_copy_file(struct call *c);
int m_chmod(struct call *c);
int m_chown(struct call *c);
int m_symlink(struct call *c);
int m_link(struct call *c);
int m_read_link(struct call *c);
int m_real_path(struct call *c);
int m_truncate(struct call *c);
int m_make_temp_dir(struct call *c);
int m_make_temp_file(struct call *c);
int m_spawn(struct call *c);
int m_utime(struct call *c);

/* shared by the file methods (serve/methods.c) */
/* Was the call aborted by the client (the abort method)? */
bool serve_call_aborted(struct call *c);
const struct sbx_fs_opts *serve_fsopts(struct call *c);
/* Deno's error message "<strerror> (os error N): <op> '<path>'". */
char *serve_fs_fail(struct call *c, int r, const char *op, const char *path, const char *path2);
json_t *serve_file_info(const struct fs_stat *st);
int serve_read_mem(struct call *c, const char *path, uint64_t offset, int64_t length,
		   uint8_t **data, size_t *len, struct sbx_error *err);
int serve_parse_date(json_t *v, struct fs_time *t);

/* walk and expandGlob (serve/walk.c) */
int m_walk(struct call *c);
int m_expand_glob(struct call *c);
/* A JavaScript RegExp's source as a POSIX extended regular expression
 * (what the two share); -EINVAL with the reason in msg otherwise. */
int serve_js_regex(const char *source, const char *flags, char **out, char *msg, size_t n);
/* A glob (Deno std's globToRegExp options) as an anchored POSIX ERE. */
int serve_glob_regex(const char *glob, bool extended, bool globstar, char **out, char *msg,
		     size_t n);

/* file handles (serve/handles.c) */
int m_open(struct call *c);   /* open and create */
int m_file_read(struct call *c);
int m_file_write(struct call *c);
int m_file_stat(struct call *c);
int m_file_seek(struct call *c);
int m_file_truncate(struct call *c);
int m_file_sync(struct call *c);
int m_file_utime(struct call *c);
int m_file_lock(struct call *c);
int m_file_unlock(struct call *c); /* also fileClose of a locked handle */

/* The Deno calls (serve/deno.c). */
int m_spawn_deno(struct call *c);
int m_spawn_deno_repl(struct call *c);
int m_deno_http_wait(struct call *c);
int m_deno_repl_eval(struct call *c);
int m_deno_repl_call(struct call *c);
int m_deno_repl_close(struct call *c);

/* fetch: an HTTP request from inside the sandbox (serve/fetch.c). */
int m_fetch(struct call *c);

/* SIGTERM-style names (serve/proc.c). */
const char *proc_signal_name(int sig);
int proc_signal_number(const char *name);

/* Deno's name for an errno (deno.md §6) and the errno's symbol. */
const char *errno_class(int e);
const char *errno_symbol(int e);

/* ---- exposures (serve/expose.c, serve/tls.c) ---- */
struct tls_files {
	char dir[PATH_MAX];
	char ca[PATH_MAX + 16], cert[PATH_MAX + 300], key[PATH_MAX + 300];
};
/* The CA and the certificate for base and *.base under the data
 * directory, made when missing. */
int tls_ensure(const char *base, struct tls_files *out, char err[256]);
/* Opens the exposeHttp listener (a vhost of ctx) when o asks for one. */
int expose_start(struct lws_context *ctx, const struct serve_opts *o);
/* POST /api/v3/sandbox/<id>/expose/<what>: answered through EV_HTTP. */
void expose_rest(struct sbox *b, uint64_t req_id, const char *what);
/* The exposeHttp call of a socket of b: answered through EV_SEND. */
void expose_rpc(uint64_t conn_id, struct sbox *b, json_t *id, json_t *params);
/* The lowest TCP port process pid (or a child) listens on in the sandbox
 * at addr, waiting up to 10 s for it to listen (any thread). */
int serve_pid_port(const char *addr, const char *token, pid_t pid, unsigned *port,
		   char err[256]);
/* A sandbox found again at start: its exposeHttp names (kept in its
 * state directory) route again, their relays started anew if gone. */
void expose_adopt(const struct sbox *b);
/* b ended: its names answer 404 from now on. */
void expose_forget(const char *box_id);
/* b's boot ended (b->state READY or DEAD): calls that waited for it go on. */
void expose_booted(struct sbox *b);

/* ---- the server (serve/serve.c) ---- */
int serve_run(const struct serve_opts *o);
int serve_main(int argc, char **argv);

#endif
