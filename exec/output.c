/* OUTPUT connections: each waits, under a random id, for the EXEC that
 * names it (EXEC's STDOUT_CONN field); then its socket becomes that
 * command's fd 1, so the command writes straight into the connection: no
 * pipe, no frames, no copy through the agent. Only an authenticated
 * connection gets here (conn/ dispatches requests after AUTH), and only an
 * authenticated EXEC can claim it. A connection that no EXEC claims
 * within OUTPUT_WAIT_NS is failed with ETIMEDOUT. */
#include "exec/output.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/util.h"

#define OUTPUT_WAIT_NS (10 * NSEC_PER_SEC)

struct output {
	struct conn *c;
	uint8_t id[PROTO_OUTPUT_ID_LEN];
	struct timer timer;
	bool linked;
	struct output *prev, *next;
};

static struct output *waiting;

static void output_unlink(struct output *o)
{
	if (!o->linked)
		return;
	if (o->prev)
		o->prev->next = o->next;
	else
		waiting = o->next;
	if (o->next)
		o->next->prev = o->prev;
	o->linked = false;
	timer_cancel(&o->timer);
}

static int output_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	(void)c;
	return proto_fail(e, EPROTO, "unexpected %s frame: this connection waits to be a command's "
			  "standard output", proto_type_name(f->type));
}

static void output_hangup(struct conn *c)
{
	output_unlink(c->op);
	conn_release(c);
}

static void output_destroy(struct conn *c)
{
	struct output *o = c->op;

	c->op = NULL;
	output_unlink(o);
	free(o);
}

static const struct conn_ops output_ops = {
	.name = "output",
	.frame = output_frame,
	.hangup = output_hangup,
	.destroy = output_destroy,
};

static void output_timeout(struct timer *t)
{
	struct output *o = container_of(t, struct output, timer);
	struct proto_err e;

	proto_fail(&e, ETIMEDOUT, "no EXEC named this OUTPUT connection within %llu seconds",
		   (unsigned long long)(OUTPUT_WAIT_NS / NSEC_PER_SEC));
	conn_fail(o->c, &e);
}

int exec_output(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct output *o;

	if (f->len != 0)
		return proto_fail(e, EBADMSG, "OUTPUT payload is %u bytes, expected 0", f->len);
	o = calloc(1, sizeof(*o));
	if (!o)
		return proto_fail(e, ENOMEM, "out of memory");
	if (getrandom(o->id, sizeof(o->id), 0) != sizeof(o->id)) {
		free(o);
		return proto_fail(e, EAGAIN, "no randomness for an OUTPUT id");
	}
	o->c = c;
	o->linked = true;
	o->next = waiting;
	if (waiting)
		waiting->prev = o;
	waiting = o;
	timer_arm(&o->timer, OUTPUT_WAIT_NS, output_timeout);
	c->ops = &output_ops;
	c->op = o;
	/* A failure here is a connection already gone: its hangup unlinks. */
	if (conn_send(c, FT_OUTPUT_OK, o->id, sizeof(o->id)) < 0 && !conn_dead(c))
		return proto_fail(e, ENOMEM, "out of memory");
	return 0;
}

int exec_output_claim(const uint8_t id[PROTO_OUTPUT_ID_LEN], struct proto_err *e)
{
	struct output *o;
	struct conn *c;
	int fd, r;

	for (o = waiting; o; o = o->next)
		if (!memcmp(o->id, id, sizeof(o->id)))
			break;
	if (!o)
		return proto_fail(e, ENOENT, "no OUTPUT connection waits under that id (it timed out, "
				  "went away or was used)");
	c = o->c;
	output_unlink(o);
	fd = conn_take_socket(c);
	if (fd == -EPROTO) {
		proto_fail(e, EPROTO, "the client sent bytes on its OUTPUT connection after OUTPUT");
		conn_fail(c, e);
		return -EPROTO;
	}
	if (fd < 0)
		return proto_fail(e, EPIPE, "the OUTPUT connection went away");
	if ((r = fd_set_nonblock(fd, false)) < 0) {
		close(fd);
		return proto_fail(e, -r, "cannot make the OUTPUT connection blocking: %s", strerror(-r));
	}
	return fd;
}

void exec_output_end(int *fd)
{
	static const struct linger off = { 0 };

	if (*fd < 0)
		return;
	/* The command shares this socket (its fd 1), and SO_LINGER is the
	 * socket's, not the fd's: were it set, our close, when last, would
	 * sleep in the kernel (6.1 virtio_transport_close ->
	 * virtio_transport_wait_close) until the client hangs up or the
	 * linger time ends. Cleared right before the close; what the
	 * command wrote is queued before the shutdown either way. (A
	 * holder that sets it again between the two and drops its copy
	 * there too makes us wait at most until the client, which has its
	 * end of file from the shutdown, hangs up: libsbx does at once.) */
	shutdown(*fd, SHUT_WR);
	setsockopt(*fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off));
	fd_close(fd);
}
