/* libsbx: commands. EXEC and ATTACH, their events, stdin, signals and
 * window sizes, and the loop that relays a command's streams to local fds
 * with back-pressure both ways (docs/PROTOCOL.md, "Exec"). */
#include "libsbx/sbx.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/util.h"
#include "libsbx/conn.h"

int sbx_exit_status(const struct sbx_exit *x)
{
	return x->how == EXIT_SIGNALED ? 128 + x->signal : x->code;
}

/* EXEC, its stdout on the OUTPUT connection out_id when not NULL. */
static int exec_put(struct sbx_conn *c, const struct sbx_exec_opts *o, const uint8_t *out_id,
		    struct sbx_error *err)
{
	struct exec_req req = { 0 };
	size_t n;
	int r;

	for (n = 0; o->argv[n]; n++)
		;
	req.argv = (char **)o->argv;
	req.argc = n;
	for (n = 0; o->env && o->env[n]; n++)
		;
	req.env = (char **)o->env;
	req.envc = n;
	req.cwd = (char *)o->cwd;
	req.user = (char *)o->user;
	req.flags = (o->clear_env ? EXEC_F_CLEAR_ENV : 0) | (o->stdin_pipe ? EXEC_F_STDIN : 0) |
		    (o->no_stdout ? EXEC_F_NO_STDOUT : 0) | (o->no_stderr ? EXEC_F_NO_STDERR : 0) |
		    (o->detach ? EXEC_F_DETACH : 0);
	req.pty = o->tty;
	req.rows = o->rows ? o->rows : 24;
	req.cols = o->cols ? o->cols : 80;
	if (out_id) {
		req.out_conn = true;
		memcpy(req.out_id, out_id, sizeof(req.out_id));
	}
	if (req.argc == 0)
		return sbx_fail(err, EINVAL, "no command given");
	r = proto_exec_put(&c->tx, &req);
	if (r < 0)
		return sbx_fail(err, r, "the command is too large to send (arguments and environment "
			    "must fit in %u bytes)", PROTO_FRAME_MAX);
	return 0;
}

int sbx_exec_send(struct sbx_conn *c, const struct sbx_exec_opts *o, struct sbx_error *err)
{
	if (o->direct_stdout)
		return sbx_fail(err, EINVAL, "a direct stdout needs sbx_exec_io");
	return exec_put(c, o, NULL, err);
}

/* Opens the OUTPUT connection for a direct stdout (to c's address) and
 * gets its id. Waited for as the stdio loop waits: what io->extra_fd
 * brings (the signals that make an impatient client leave) still counts. */
static int output_open(struct sbx_conn *c, const struct sbx_io *io, struct sbx_conn **out,
		       uint8_t id[PROTO_OUTPUT_ID_LEN], struct sbx_error *err)
{
	struct sbx_conn *oc;
	struct frame f;
	int r;

	if ((r = sbx_connect(c->addr, &oc, err)) < 0)
		return r;
	if ((r = sbx_send(oc, FT_OUTPUT, NULL, 0, err)) < 0)
		goto fail;
	while ((r = sbx_next_frame(oc, &f, err)) == 0) {
		struct pollfd p[2] = { { .fd = oc->fd, .events = POLLIN },
				       { .fd = io->extra_fd, .events = POLLIN } };
		bool want_write;

		if ((r = sbx_pump(oc, &want_write, err)) < 0)
			goto fail;
		if (r > 0)
			continue;
		if (want_write)
			p[0].events |= POLLOUT;
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			r = sbx_fail(err, errno, "poll");
			goto fail;
		}
		/* No command yet: whatever it does (a forwarded signal
		 * would find none), only its failure matters here. */
		if (p[1].revents && (r = io->on_extra(io->arg, c, err)) < 0)
			goto fail;
	}
	if (r < 0)
		goto fail;
	if (f.type != FT_OUTPUT_OK || f.len != PROTO_OUTPUT_ID_LEN) {
		r = sbx_fail(err, EPROTO, "%s answered OUTPUT with %s (%u bytes)", c->addr,
			     proto_type_name(f.type), f.len);
		goto fail;
	}
	memcpy(id, f.payload, PROTO_OUTPUT_ID_LEN);
	*out = oc;
	return 0;
fail:
	sbx_close(oc);
	return r;
}

int sbx_exec_event(const struct frame *f, struct sbx_event *ev, struct sbx_error *err)
{
	struct exit_status x;
	struct proto_err pe;
	uint32_t pid;

	memset(ev, 0, sizeof(*ev));
	switch (f->type) {
	case FT_STARTED:
		if (proto_u32_decode(f, &pid, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		ev->kind = SBX_EV_STARTED;
		ev->pid = (pid_t)pid;
		return 0;
	case FT_STDOUT:
	case FT_STDERR:
		ev->kind = f->type == FT_STDOUT ? SBX_EV_STDOUT : SBX_EV_STDERR;
		ev->data = f->payload;
		ev->len = f->len;
		return 0;
	case FT_ATTACHED: {
		struct attached a;

		if (proto_attached_decode(f, &a, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		ev->kind = SBX_EV_STARTED;
		ev->pid = (pid_t)a.pid;
		ev->out_base = a.out_base;
		ev->err_base = a.err_base;
		return 0;
	}
	case FT_EXIT:
		if (proto_exit_decode(f, &x, &pe) < 0)
			return sbx_fail(err, pe.code, "%s", pe.msg);
		ev->kind = SBX_EV_EXIT;
		ev->exit.how = x.how;
		ev->exit.core = x.flags & EXIT_F_CORE;
		ev->exit.oom = x.flags & EXIT_F_OOM;
		if (x.how == EXIT_SIGNALED)
			ev->exit.signal = x.value;
		else
			ev->exit.code = x.value;
		memcpy(ev->exit.msg, x.msg, sizeof(ev->exit.msg));
		return 0;
	default:
		return sbx_fail(err, EPROTO, "unexpected %s frame from the agent",
			    proto_type_name(f->type));
	}
}

int sbx_exec_stdin(struct sbx_conn *c, const void *data, size_t len, struct sbx_error *err)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };
	ssize_t n;

	if (buf_len(&c->tx) || len > PROTO_FRAME_MAX || !c->hello_done)
		return sbx_send(c, FT_STDIN, data, len, err);
	/* Nothing queued: send header and data from where they are, and
	 * queue only what the socket did not take. */
	proto_hdr_put(hdr, FT_STDIN, (uint32_t)len);
	n = writev(c->fd, iov, 2);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return sbx_conn_lost(c, err, errno);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(hdr)) {
		if (buf_append(&c->tx, hdr + n, sizeof(hdr) - (size_t)n) < 0 ||
		    buf_append(&c->tx, data, len) < 0)
			return sbx_fail(err, ENOBUFS, "output queue full");
		return 0;
	}
	n -= (ssize_t)sizeof(hdr);
	if ((size_t)n < len && buf_append(&c->tx, (const uint8_t *)data + n, len - (size_t)n) < 0)
		return sbx_fail(err, ENOBUFS, "output queue full");
	return 0;
}

int sbx_exec_stdin_eof(struct sbx_conn *c, struct sbx_error *err)
{
	return sbx_send(c, FT_STDIN_EOF, NULL, 0, err);
}

int sbx_exec_signal(struct sbx_conn *c, int sig, struct sbx_error *err)
{
	int r = proto_u32_put(&c->tx, FT_SIGNAL, (uint32_t)sig);

	return r < 0 ? sbx_fail(err, r, "cannot queue a signal") : 0;
}

int sbx_exec_resize(struct sbx_conn *c, unsigned short rows, unsigned short cols,
		    struct sbx_error *err)
{
	int r = proto_resize_put(&c->tx, rows, cols);

	return r < 0 ? sbx_fail(err, r, "cannot queue a resize") : 0;
}

static int write_out(int fd, const uint8_t *p, size_t n, struct sbx_error *err)
{
	int r;

	if (fd < 0)
		return 0;
	r = fd_write_all(fd, p, n);
	return r < 0 ? sbx_fail(err, r, "cannot write the command's output: %s", strerror(-r)) : 0;
}

#define STDIN_CHUNK (256 * 1024)

/* Looks for the detach keys k[0] k[1] in the n bytes of stdin at d, with
 * *held telling that the last read ended with k[0] (held back). Returns
 * how many bytes of d go to the command (d may gain the held byte in
 * front; it has room for one more), and sets *found when the keys came:
 * what followed them is dropped. */
static size_t detach_scan(const char *k, uint8_t *d, size_t n, bool *held, bool *found)
{
	*found = false;
	if (*held) {
		*held = false;
		if (n > 0 && d[0] == (uint8_t)k[1]) {
			*found = true;
			return 0;
		}
		memmove(d + 1, d, n);
		d[0] = (uint8_t)k[0];
		n++;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (d[i] == (uint8_t)k[0] && d[i + 1] == (uint8_t)k[1]) {
			*found = true;
			return i;
		}
	}
	if (n > 0 && d[n - 1] == (uint8_t)k[0]) {
		*held = true;
		n--;
	}
	return n;
}

/* A direct stdout is read in chunks of this size. */
#define DIRECT_CHUNK (1024 * 1024)

/* A direct stdout's next bytes to out_fd: 1, 0 at its end, or -errno. */
static int direct_read(struct sbx_conn *oc, uint8_t *b, int out_fd, struct sbx_error *err)
{
	ssize_t n = read(oc->fd, b, DIRECT_CHUNK);
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n < 0)
		return sbx_fail(err, errno, "the command's standard output connection to %s broke: %s",
				oc->addr, strerror(errno));
	if (n == 0)
		return 0;
	r = write_out(out_fd, b, (size_t)n, err);
	return r < 0 ? r : 1;
}

/* Where the stdio loop of a command is: its frames and input, or (direct
 * stdout) its EXIT received, the output connection left to read to its
 * end (the agent closes the first one after EXIT). */
enum io_state { IO_RUNNING, IO_DRAINING };

/* The stdio loop of a command whose request was sent. With ack, output is
 * acknowledged as it is written out (detached commands). With oc (then
 * the loop's, closed as soon as it reads its end), the command's stdout
 * comes raw on that connection (direct stdout): EXIT is reported once it
 * ended too. */
static int stream_io(struct sbx_conn *c, struct sbx_conn *oc, bool stdin_pipe, bool ack,
		     const struct sbx_io *io, struct sbx_exit *exit, struct sbx_error *err)
{
	bool in_open = (stdin_pipe || io->keys_only) && io->in_fd >= 0, want_write = false,
	     held = false, keys_only = io->keys_only;
	enum io_state state = IO_RUNNING;
	uint8_t *direct = NULL;
	struct ack a = { 0 };
	int r;

	if (oc) {
		if (!(direct = malloc(DIRECT_CHUNK))) {
			r = sbx_fail(err, ENOMEM, "out of memory");
			goto out;
		}
		/* Anything that came behind OUTPUT_OK is the command's. */
		if (buf_len(&oc->rx) && (r = write_out(io->out_fd, buf_head(&oc->rx),
						       buf_len(&oc->rx), err)) < 0)
			goto out;
		buf_consume(&oc->rx, buf_len(&oc->rx));
	}

	if (stdin_pipe && io->in_fd < 0 && (r = sbx_exec_stdin_eof(c, err)) < 0)
		goto out;
	for (;;) {
		struct pollfd p[4] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 },
				       { .fd = oc ? oc->fd : -1, .events = POLLIN } };
		struct frame f;
		struct sbx_event ev;

		/* The agent closes the first connection after EXIT: draining,
		 * only the direct stdout is left to read to its end. */
		if (state == IO_DRAINING && !oc) {
			r = 0;
			goto out;
		}
		while (state == IO_RUNNING && (r = sbx_next_frame(c, &f, err)) == 1) {
			if ((r = sbx_exec_event(&f, &ev, err)) < 0)
				goto out;
			if (ev.kind == SBX_EV_STDOUT) {
				r = write_out(io->out_fd, ev.data, ev.len, err);
				a.out_off += ev.len;
			} else if (ev.kind == SBX_EV_STDERR) {
				r = write_out(io->err_fd, ev.data, ev.len, err);
				a.err_off += ev.len;
			} else if (ev.kind == SBX_EV_STARTED) {
				a.out_off = ev.out_base;
				a.err_off = ev.err_base;
				if (io->on_started)
					io->on_started(io->arg, ev.pid);
				continue;
			} else if (ev.kind == SBX_EV_EXIT) {
				*exit = ev.exit;
				r = 0;
				if (oc) {
					state = IO_DRAINING;
					break;
				}
				if (ack) {
					/* We have the status: the agent may forget it. */
					a.flags = ACK_F_EXIT;
					if ((r = proto_ack_put(&c->tx, &a)) == 0)
						r = sbx_flush(c, err);
				}
				goto out;
			}
			if (r < 0)
				goto out;
			/* Written out: the agent may drop it. */
			if (ack && (r = proto_ack_put(&c->tx, &a)) < 0)
				goto out;
		}
		if (state == IO_RUNNING) {
			if (r < 0 || (r = sbx_pump(c, &want_write, err)) < 0)
				goto out;
			if (r > 0)
				continue; /* parse what came in before waiting */
			p[0] = (struct pollfd){ .fd = c->fd,
						.events = POLLIN | (want_write ? POLLOUT : 0) };
			/* Read more input only when the queue to the agent is short. */
			if (in_open && buf_len(&c->tx) < STDIN_CHUNK)
				p[1] = (struct pollfd){ .fd = io->in_fd, .events = POLLIN };
		}
		if (io->extra_fd >= 0)
			p[2] = (struct pollfd){ .fd = io->extra_fd, .events = POLLIN };
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = sbx_fail(err, errno, "poll");
			goto out;
		}
		if (p[3].revents) {
			if ((r = direct_read(oc, direct, io->out_fd, err)) < 0)
				goto out;
			if (r == 0) {
				/* Closed at its end: the agent never waits
				 * for us to hang up. */
				sbx_close(oc);
				oc = NULL;
			}
			r = 0;
		}
		if (p[1].revents) {
			ssize_t n;

			/* Read straight into the queue behind a frame header:
			 * no copy between. */
			if ((r = buf_reserve(&c->tx, PROTO_HDR_LEN + STDIN_CHUNK)) < 0) {
				r = sbx_fail(err, r, "out of memory");
				goto out;
			}
			n = read(io->in_fd, buf_tail(&c->tx) + PROTO_HDR_LEN, STDIN_CHUNK - 1);
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				r = sbx_fail(err, errno, "cannot read standard input: %s", strerror(errno));
				goto out;
			}
			if (n >= 0 && io->detach_keys) {
				uint8_t *d = buf_tail(&c->tx) + PROTO_HDR_LEN, *e;
				bool found, eof = false;

				n = (ssize_t)detach_scan(io->detach_keys, d, (size_t)n, &held, &found);
				if (io->eof_key && !keys_only && n > 0 &&
				    (e = memchr(d, (uint8_t)io->eof_key, (size_t)n))) {
					n = e - d;
					eof = true;
				}
				if (n > 0 && !keys_only) {
					proto_hdr_put(buf_tail(&c->tx), FT_STDIN, (uint32_t)n);
					buf_commit(&c->tx, PROTO_HDR_LEN + (size_t)n);
				}
				if (eof) {
					/* The end of input; the keys still detach. */
					keys_only = true;
					if ((r = sbx_exec_stdin_eof(c, err)) < 0)
						goto out;
				}
				if (found)
					goto out_detach;
				if (eof || (n == 0 && held))
					continue; /* or only the first key so far */
				if (keys_only && n > 0)
					continue;
			}
			if (n == 0) {
				in_open = false;
				if (!keys_only)
					r = sbx_exec_stdin_eof(c, err);
			} else if (n > 0 && !io->detach_keys) {
				proto_hdr_put(buf_tail(&c->tx), FT_STDIN, (uint32_t)n);
				buf_commit(&c->tx, PROTO_HDR_LEN + (size_t)n);
			}
			if (r < 0)
				goto out;
		}
		if (p[2].revents) {
			if ((r = io->on_extra(io->arg, c, err)) < 0)
				goto out;
			if (r == SBX_IO_DETACH)
				goto out_detach;
		}
	}
out:
	free(direct);
	sbx_close(oc);
	return r;
out_detach:
	/* What was typed before the keys still reaches the command. */
	memset(exit, 0, sizeof(*exit));
	exit->detached = true;
	r = sbx_flush(c, err);
	free(direct);
	sbx_close(oc);
	return r < 0 ? r : 0;
}

int sbx_exec_io(struct sbx_conn *c, const struct sbx_exec_opts *o, const struct sbx_io *io,
		struct sbx_exit *exit, struct sbx_error *err)
{
	uint8_t id[PROTO_OUTPUT_ID_LEN];
	struct sbx_conn *oc = NULL;
	int r;

	if (!o->direct_stdout) {
		r = exec_put(c, o, NULL, err);
		return r < 0 ? r : stream_io(c, NULL, o->stdin_pipe, o->detach, io, exit, err);
	}
	if (o->tty || o->detach || o->no_stdout)
		return sbx_fail(err, EINVAL, "a direct stdout does not go with %s",
				o->tty ? "a terminal" : o->detach ? "detach" : "no_stdout");
	if ((r = output_open(c, io, &oc, id, err)) < 0)
		return r;
	if ((r = exec_put(c, o, id, err)) < 0) {
		sbx_close(oc);
		return r;
	}
	return stream_io(c, oc, o->stdin_pipe, false, io, exit, err);
}

int sbx_attach_io(struct sbx_conn *c, pid_t pid, bool stdin_pipe, const struct sbx_io *io,
		  struct sbx_exit *exit, struct sbx_error *err)
{
	size_t mark;
	int r;

	if ((r = proto_begin(&c->tx, FT_ATTACH, &mark)) < 0 ||
	    (r = proto_field_put_u32(&c->tx, ATTACH_PID, (uint32_t)pid)) < 0 ||
	    (r = proto_end(&c->tx, mark)) < 0)
		return sbx_fail(err, r, "cannot queue ATTACH");
	return stream_io(c, NULL, stdin_pipe, true, io, exit, err);
}

int sbx_exec_detached(const char *addr, const struct sbx_exec_opts *o, pid_t *pid,
		      struct sbx_error *err)
{
	struct sbx_exec_opts d = *o;
	struct sbx_conn *c;
	struct sbx_event ev;
	struct frame f;
	int r;

	d.detach = true;
	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	if ((r = sbx_exec_send(c, &d, err)) < 0 || (r = sbx_recv(c, &f, -1, err)) < 0 ||
	    (r = sbx_exec_event(&f, &ev, err)) < 0)
		goto out;
	if (ev.kind == SBX_EV_EXIT) {
		r = sbx_fail(err, ev.exit.code == 127 ? ENOENT : EACCES, "%s", ev.exit.msg);
		goto out;
	}
	if (ev.kind != SBX_EV_STARTED) {
		r = sbx_fail(err, EPROTO, "the agent did not answer STARTED");
		goto out;
	}
	*pid = ev.pid;
out:
	sbx_close(c);
	return r;
}

int sbx_run(const char *addr, const struct sbx_exec_opts *o, int in_fd, int out_fd, int err_fd,
	    struct sbx_exit *exit, struct sbx_error *err)
{
	struct sbx_io io = { .in_fd = in_fd, .out_fd = out_fd, .err_fd = err_fd, .extra_fd = -1 };
	struct sbx_conn *c;
	int r;

	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	r = sbx_exec_io(c, o, &io, exit, err);
	sbx_close(c);
	return r;
}
