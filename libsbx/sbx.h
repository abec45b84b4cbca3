/* libsbx: the C client library for sbx agents. Connect to an address
 * (unix:PATH, vsock:CID:PORT, hybrid:PATH:PORT), run commands with live
 * stdin/stdout/stderr, ask who is there. Every call returns 0 or -errno
 * and fills a struct sbx_error with a message naming what failed. */
#ifndef SBX_H
#define SBX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vsock/proto.h"

struct sbx_error {
	int code;       /* positive errno */
	char msg[1024];
};

/* Fills err (when not NULL) with code (a positive or negative errno, 0
 * meaning EIO) and the message; returns -code. For libsbx's own modules
 * and its callers alike. */
int sbx_fail(struct sbx_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- connections ---- */

/* The sandbox token to prove on every later connection made by this
 * thread (NULL: none).
 * With a token, sbx_connect waits for the agent's challenge and answers it
 * before returning (one round trip more). */
void sbx_set_token(const char *token);
/* For clients that speak the handshake themselves (libsbx/net.c): is a token
 * set, and the AUTH answer to a HELLO_OK nonce (-ENOKEY without one). */
bool sbx_has_token(void);
int sbx_auth_answer(const uint8_t nonce[PROTO_NONCE_LEN], uint8_t mac[PROTO_AUTH_LEN]);

/* Connects to addr and says hello (the reply is read lazily, with the
 * first answer, so a request can follow without a round trip). */
struct sbx_conn;
int sbx_connect(const char *addr, struct sbx_conn **out, struct sbx_error *err);
void sbx_close(struct sbx_conn *c);
/* The socket, for poll(2). */
int sbx_fd(const struct sbx_conn *c);

/* Queues a frame / sends everything queued (blocking). */
int sbx_send(struct sbx_conn *c, uint16_t type, const void *payload, size_t len,
	     struct sbx_error *err);
int sbx_flush(struct sbx_conn *c, struct sbx_error *err);
/* The output queue, for encoders from vsock/proto.h. */
struct buf *sbx_txbuf(struct sbx_conn *c);
/* Reads the next frame other than HELLO_OK (checked on the way). ERROR
 * frames become -code with the agent's message in err. timeout_ms < 0
 * waits forever; -EAGAIN when nothing came in time. The frame points into
 * the connection's buffer and is valid until the next call. */
int sbx_recv(struct sbx_conn *c, struct frame *f, int timeout_ms, struct sbx_error *err);
/* Non-blocking I/O for event loops: sends what it can, reads what is
 * there; returns the bytes read (0: none yet), and true in *want_write
 * when output is still queued. */
int sbx_pump(struct sbx_conn *c, bool *want_write, struct sbx_error *err);
/* A whole frame already received, if any (no I/O). 1 = got one, 0 = none. */
int sbx_next_frame(struct sbx_conn *c, struct frame *f, struct sbx_error *err);

/* ---- commands ---- */

struct sbx_exec_opts {
	const char *const *argv;   /* NULL-terminated, argv[0] is the program */
	const char *const *env;    /* NULL-terminated NAME=value overrides, or NULL */
	bool clear_env;
	const char *cwd;           /* NULL: the sandbox default */
	const char *user;          /* NULL: the sandbox default */
	bool stdin_pipe;           /* else the command's stdin is /dev/null */
	bool no_stdout, no_stderr;
	bool tty;
	unsigned short rows, cols; /* with tty */
	bool detach;               /* the command outlives this client */
	/* sbx_exec_io only, not with tty, detach or no_stdout: the command's
	 * stdout is a second connection of its own (OUTPUT, docs/PROTOCOL.md
	 * "Direct standard output"), which it writes into directly: no pipe,
	 * no frames, no relay in the agent. Its bytes reach out_fd
	 * unordered with stderr's, and the EXIT is reported only after its
	 * end of file. */
	bool direct_stdout;
	pid_t attach_pid;          /* for cli_exec_attached: attach instead of exec */
};

struct sbx_exit {
	int how;        /* EXIT_EXITED, EXIT_SIGNALED, EXIT_NOT_STARTED */
	int code;       /* exit code; 126/127 when not started */
	int signal;     /* when EXIT_SIGNALED */
	bool core;
	bool oom;       /* killed by the kernel's out-of-memory killer */
	bool detached;  /* no status: the client detached (sbx_io.detach_keys,
			   sbx_io.on_extra), the command runs on */
	char msg[PROTO_MSG_MAX + 1];
};

/* The shell-style status: the exit code, 128+N for signal N. */
int sbx_exit_status(const struct sbx_exit *x);

/* Sends an EXEC request on a connection from sbx_connect (which it then
 * carries). */
int sbx_exec_send(struct sbx_conn *c, const struct sbx_exec_opts *o, struct sbx_error *err);

/* One event from a running command. */
enum sbx_event_kind { SBX_EV_STARTED, SBX_EV_STDOUT, SBX_EV_STDERR, SBX_EV_EXIT };
struct sbx_event {
	enum sbx_event_kind kind;
	pid_t pid;                /* STARTED (also for ATTACHED) */
	uint64_t out_base, err_base; /* ATTACHED: where the output resumes */
	const uint8_t *data;      /* STDOUT/STDERR, valid until the next call */
	size_t len;
	struct sbx_exit exit;     /* EXIT */
};
/* Decodes an exec frame into an event. */
int sbx_exec_event(const struct frame *f, struct sbx_event *ev, struct sbx_error *err);

int sbx_exec_stdin(struct sbx_conn *c, const void *data, size_t len, struct sbx_error *err);
int sbx_exec_stdin_eof(struct sbx_conn *c, struct sbx_error *err);
int sbx_exec_signal(struct sbx_conn *c, int sig, struct sbx_error *err);
int sbx_exec_resize(struct sbx_conn *c, unsigned short rows, unsigned short cols,
		    struct sbx_error *err);

/* Runs a command to completion on connection c: in_fd feeds its stdin
 * (-1: none), stdout/stderr go to out_fd/err_fd (-1: discard). extra_fd,
 * when >= 0, is polled too and on_extra called when it is readable (the
 * CLI uses it for a signalfd, to forward signals and window sizes). */
struct sbx_io {
	int in_fd, out_fd, err_fd;
	/* Attached to a detached command: these two bytes read from in_fd
	 * (Ctrl-P Ctrl-Q, "\x10\x11", as Docker) end the loop with
	 * exit->detached instead of reaching the command; NULL: none. */
	const char *detach_keys;
	/* in_fd is read for the detach keys only: what else comes is
	 * dropped, its end is no end of the command's input (sbx attach
	 * without -i on a terminal). */
	bool keys_only;
	/* With detach_keys: this byte read from in_fd (a terminal's VEOF,
	 * Ctrl-D, when attach reads it key by key) ends the command's input
	 * as a terminal in line mode would: the bytes before it go, then the
	 * end of input; in_fd is then read for the detach keys only. 0: none. */
	char eof_key;
	int extra_fd;
	/* 0 to go on, SBX_IO_DETACH to detach now, or -errno. */
#define SBX_IO_DETACH 1
	int (*on_extra)(void *arg, struct sbx_conn *c, struct sbx_error *err);
	void (*on_started)(void *arg, pid_t pid);
	void *arg;
};
int sbx_exec_io(struct sbx_conn *c, const struct sbx_exec_opts *o, const struct sbx_io *io,
		struct sbx_exit *exit, struct sbx_error *err);

/* Runs stdio for an ATTACH to a detached command: the output resumes at
 * the first byte no client acknowledged; this client acknowledges what it
 * writes out, and the EXIT, after which the agent forgets the command. */
int sbx_attach_io(struct sbx_conn *c, pid_t pid, bool stdin_pipe, const struct sbx_io *io,
		  struct sbx_exit *exit, struct sbx_error *err);

/* Starts a detached command and returns its pid at once. */
int sbx_exec_detached(const char *addr, const struct sbx_exec_opts *o, pid_t *pid,
		      struct sbx_error *err);

/* PS: calls fn for each command the agent knows. */
int sbx_ps(const char *addr, void (*fn)(void *arg, const struct ps_entry *p), void *arg,
	   struct sbx_error *err);

/* ENV: the sandbox environment for commands started afterwards. list
 * calls fn with each NAME=value; set takes NAME=value entries, unset
 * names. */
int sbx_env_list(const char *addr, void (*fn)(void *arg, const char *entry), void *arg,
		 struct sbx_error *err);
int sbx_env_set(const char *addr, const char *const *entries, struct sbx_error *err);
int sbx_env_unset(const char *addr, const char *const *names, struct sbx_error *err);

/* Lifetime. SESSION opens a session and returns the connection that holds
 * it (close it to end the session) with the lifetime; EXTEND adds seconds;
 * SET_TIME sets the guest's wall clock to the host's and, if left_ns is
 * not 0, the lifetime left. */
int sbx_session(const char *addr, struct sbx_conn **out, struct lifetime *l,
		struct sbx_error *err);
int sbx_extend(const char *addr, uint64_t seconds, struct lifetime *l, struct sbx_error *err);
int sbx_set_time(const char *addr, uint64_t left_ns, struct lifetime *l, struct sbx_error *err);
/* FREEZE: the sandbox's writable disk synced and its writers blocked until
 * the returned connection is closed (or 5 minutes pass), for a copy. */
int sbx_freeze(const char *addr, struct sbx_conn **out, struct sbx_error *err);
/* IDENTITY: a template's fresh clone (proving the template's token) takes
 * its own configuration (the text of etc/sbx/config: token, environment,
 * labels, lifetime counted from now, host name), seed for its RNG and the
 * host's wall clock; the answer is its lifetime. */
int sbx_identity(const char *addr, const char *config, size_t len, const uint8_t *seed,
		 size_t seed_len, struct lifetime *l, struct sbx_error *err);
/* SHUTDOWN: power the sandbox off; reason may be NULL. */
int sbx_shutdown(const char *addr, const char *reason, struct sbx_error *err);

/* sbx_exec_io on a new connection to addr, without extras. */
int sbx_run(const char *addr, const struct sbx_exec_opts *o, int in_fd, int out_fd, int err_fd,
	    struct sbx_exit *exit, struct sbx_error *err);

/* ---- the agent ---- */

int sbx_info(const char *addr, struct info *out, struct sbx_error *err);

#endif
