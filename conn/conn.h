/* One client connection to the agent: frame reassembly on the way in, an
 * output queue (with an optional spliced body) on the way out, HELLO and
 * AUTH, and the hand-off to the operation the client asked for. This and
 * struct agent (conn/agent.h) are all an operation (exec/, fs/, net/)
 * stands on; the server (server/) opens connections and routes. A
 * connection has two lifetimes: its socket's, and its operation's; it is
 * freed when both have ended. */
#ifndef SBX_CONN_H
#define SBX_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/loop.h"
#include "vsock/proto.h"

struct agent;
struct conn;

/* What an operation (exec, file transfer, …) plugs into its connection. */
struct conn_ops {
	const char *name;
	/* A frame arrived for the running operation. -errno with e filled:
	 * the connection fails with e (conn_fail). */
	int (*frame)(struct conn *c, const struct frame *f, struct proto_err *e);
	/* The output queue drained: the operation may produce more. */
	void (*writable)(struct conn *c);
	/* The client is gone (or the connection failed): wind down, then
	 * call conn_release. Called at most once. */
	void (*hangup)(struct conn *c);
	/* Free the operation's state. */
	void (*destroy)(struct conn *c);
	/* Optional, with conn_rx_sink(c, true): a frame's header came (its
	 * payload, 1..PROTO_FRAME_MAX bytes, not read yet). Returns the
	 * write end of a pipe that the payload is spliced into straight
	 * from the socket, bypassing frame(), or -1 to have the frame read
	 * and handed to frame() as usual. */
	int (*rx_sink)(struct conn *c, uint16_t type, uint32_t len);
	/* Required with rx_sink (conn_rx_sink stays off without it): the
	 * sink took nothing: -EAGAIN, its pipe is full (pause reading with
	 * conn_pause_rx until it drains, or the socket's EPOLLIN spins);
	 * another -errno (EPIPE: its reader is gone; never an error only a
	 * socket gives, which closes the connection), the rest of that
	 * payload is dropped. */
	void (*rx_sink_error)(struct conn *c, int err);
};

enum conn_state { CONN_HELLO, CONN_AUTH, CONN_OP, CONN_RUNNING };

struct conn {
	struct watch w;
	enum conn_state state;
	uint16_t version;       /* agreed in HELLO (vsock/proto.h) */
	struct buf rx;
	struct buf tx;
	int body_fd;            /* spliced after tx drains, body_left bytes */
	size_t body_left;
	bool body_copy;         /* read the body into tx instead (AF_VSOCK) */
	bool rx_sink_on;        /* frames are read header first (ops->rx_sink) */
	int rx_sink_fd;         /* the pipe a payload is spliced into, or -1 */
	size_t rx_body_left;    /* bytes of that payload still in the socket */
	const struct conn_ops *ops;
	void *op;
	bool rx_paused;         /* the operation asked us to stop reading */
	bool in_rx;             /* dispatching frames now */
	bool closing;           /* close the socket once tx drained */
	bool sock_closed;
	bool released;          /* the operation is finished with us */
	bool hung_up;           /* ops->hangup was called */
	bool taken;             /* the socket was handed to an operation */
	bool freed;             /* queued for freeing after this batch */
	size_t rx_after;        /* bytes received after the frame being dispatched */
	struct timer timer;     /* handshake timeout */
	uint8_t nonce[PROTO_NONCE_LEN]; /* the authentication challenge */
	const struct agent *agent; /* who serves it: config, routing (conn/agent.h) */
	struct conn *prev, *next;
};

/* The highest protocol version the agent picks (PROTO_VERSION); lowered
 * only to stand for an older agent in tests (server/server.c). */
extern uint16_t conn_version_max;

/* Starts serving an accepted, non-blocking socket for agent a: HELLO,
 * AUTH when a->auth_key() says so, then a->dispatch() with the request.
 * vsock: the socket is AF_VSOCK (bodies are copied, see body_copy). */
int conn_open(int fd, bool vsock, const struct agent *a);
/* Number of open connections. */
unsigned conn_count(void);
/* Tells every connection the agent is stopping (best effort). */
void conn_shutdown_all(int code, const char *why);

/* One dispatch style for every operation family (server/ops.c, net/ops.c;
 * fs/ops.c keeps the same table shape for its own handlers): a table of
 * the request frames a family serves and the function that starts each. */
struct conn_route {
	uint16_t type;
	/* -errno with e filled: the connection fails with e. */
	int (*start)(struct conn *c, const struct frame *f, struct proto_err *e);
};
/* The entry of table for frame type type, or NULL. */
const struct conn_route *conn_route_find(const struct conn_route *table, size_t n, uint16_t type);

/* Queues a frame; it is sent as soon as the socket takes it. */
int conn_send(struct conn *c, uint16_t type, const void *payload, size_t len);
/* The output queue, for encoders that append frames themselves; call
 * conn_flush afterwards. */
static inline struct buf *conn_txbuf(struct conn *c) { return &c->tx; }
void conn_flush(struct conn *c);
/* Queues a frame header for len bytes that are then spliced from fd (a
 * pipe holding at least len bytes; read from it instead when the client
 * is on vsock, see conn_open). Only when conn_tx_idle. */
int conn_send_spliced(struct conn *c, uint16_t type, int fd, size_t len);
/* Nothing queued: the operation may produce output. */
bool conn_tx_idle(const struct conn *c);
/* The socket can no longer carry anything (client gone or failed). */
static inline bool conn_dead(const struct conn *c) { return c->sock_closed || c->closing; }

/* Stop/restart reading frames (input back-pressure). */
void conn_pause_rx(struct conn *c, bool pause);

/* Payload splicing on the way in (ops->rx_sink): on, frames are read
 * header first, each header offered to ops->rx_sink. Off (call it before
 * closing a sink), what is left of a payload being spliced is dropped. */
void conn_rx_sink(struct conn *c, bool on);

/* Hands the raw socket to the operation, for operations that turn the
 * connection into a plain byte stream (port forwarding). Call it from the
 * request's dispatch, after the reply was queued: it flushes the queue
 * (blocking briefly if need be), unregisters the socket, and frees the
 * connection; the caller owns the returned fd. Also later, from another
 * connection's request, for a connection that waits (exec/output.c).
 * -EPROTO if the client sent bytes after the request (it must wait for
 * the reply; in the same read, or read since: a part of a frame), -EIO if the reply
 * could not be sent. The connection is unusable afterwards either way,
 * except that on -EPROTO it can still be failed with conn_fail. */
int conn_take_socket(struct conn *c);

/* Sends ERROR with e's code and message as they are, and closes; a
 * running operation gets hangup. The one way an error reaches the
 * client: an operation fills a struct proto_err (proto_fail, a decoder)
 * and returns it to conn/ (a route's start, a frame callback), or hands
 * it here itself where nothing called it (a timer, a child's exit). */
void conn_fail(struct conn *c, const struct proto_err *e);
/* The operation is done: flush what is queued, then close. */
void conn_finish(struct conn *c);
/* The operation is done after a hangup (the socket is already gone). */
void conn_release(struct conn *c);

#endif
