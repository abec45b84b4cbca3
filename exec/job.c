/* Jobs: a started command, its streams, and the client attached to it
 * (see job.h). Output takes one of two paths:
 *
 *  - an attached job (an ordinary EXEC) sends its output straight from
 *    the command's pipe to the socket with splice(2) (read into the
 *    output queue for a vsock client, see conn/conn.c), and only while
 *    the socket has room, so a slow client slows the command;
 *  - a detached job reads its output into a bounded buffer per stream and
 *    sends from there; bytes leave the buffer only when the client
 *    acknowledges them (ACK), so a client that vanishes loses nothing and
 *    the next one resumes at the first unacknowledged byte. A full buffer
 *    stops the reading, and the command blocks.
 *
 * Every job's pipes are also handed to PID 1 (server_job_hold), which
 * keeps them open across a restart of this process. */
#include "exec/job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "conn/agent.h"
#include "exec/cgroup.h"
#include "exec/output.h"
#include "exec/ring.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "lib/util.h"

#define STDIN_QUEUE_MAX (256 * 1024)
#define PTY_CHUNK (64 * 1024)
#define SEND_CHUNK (256 * 1024)
#define KILL_GRACE_NS (2 * NSEC_PER_SEC)
#define PTY_LINGER_NS (50 * NSEC_PER_MSEC)
#define PTY_DRAIN_MAX_NS (1 * NSEC_PER_SEC)
#define PIPE_BIG (1024 * 1024)

struct stream {
	struct watch w;
	struct job *job;
	uint16_t type;        /* FT_STDOUT or FT_STDERR */
	bool open;
	bool is_pipe;
	bool grown;           /* pipe enlarged to PIPE_BIG */
	size_t drain_left;    /* after the exit: bytes of the pipe still to take */
	struct ring ring;     /* detached: bytes not yet acknowledged */
	uint64_t sent;        /* stream offset sent to the attached client */
};

struct job {
	struct job *prev, *next;
	struct child child;
	pid_t pid;            /* ours: reaping, signals, PID 1's hold */
	pid_t ns_pid;         /* the workload's own (its PID namespace): clients' */
	bool running;
	bool our_child;
	bool keep;
	bool pty;
	bool held;            /* PID 1 holds our fds */
	int status;
	uint64_t started_ns;
	char argv[JOB_ARGV_MAX];
	struct stream out, err;
	int out_sock;         /* direct stdout: our copy, or -1 (job.h) */
	struct watch in;
	bool in_open;
	bool in_eof;
	bool in_grown;        /* stdin pipe enlarged to PIPE_BIG */
	struct buf in_q;
	const struct agent *agent; /* the server that holds it (conn/agent.h) */
	struct conn *conn;    /* the attached client, or NULL */
	struct timer timer;   /* kill grace after a hang-up; PTY drain linger */
	uint64_t drain_deadline;
	bool hup;             /* attached job whose client went away: being killed */
	bool exit_sent;       /* to the current client */
	bool collected;       /* a client has the exit status: forget us */
	unsigned cgroup;      /* its own cgroup, 0: none */
	bool oom;             /* the kernel's OOM killer killed in it */
};

static struct job *jobs;
static unsigned njobs, ndetached;

static int job_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static int job_rx_sink(struct conn *c, uint16_t type, uint32_t len);
static void job_rx_sink_error(struct conn *c, int err);
static void job_writable(struct conn *c);
static void job_hangup(struct conn *c);
static void job_destroy(struct conn *c);

static const struct conn_ops job_ops = {
	.name = "job",
	.frame = job_frame,
	.writable = job_writable,
	.hangup = job_hangup,
	.destroy = job_destroy,
	.rx_sink = job_rx_sink,
	.rx_sink_error = job_rx_sink_error,
};

static void maybe_finish(struct job *j);
static void pump_rings(struct job *j);

bool job_room(bool keep)
{
	return njobs < JOBS_MAX && (!keep || ndetached < JOBS_DETACHED_MAX);
}

/* ---- streams ---- */

static void stream_close(struct stream *s)
{
	if (!s->open)
		return;
	loop_del(&s->w);
	close(s->w.fd);
	s->open = false;
}

static void stdin_close(struct job *j)
{
	if (!j->in_open)
		return;
	if (j->conn)
		conn_rx_sink(j->conn, false); /* before its fd goes */
	loop_del(&j->in);
	close(j->in.fd);
	j->in_open = false;
	buf_free(&j->in_q);
	if (j->conn)
		conn_pause_rx(j->conn, false);
}

static void streams_enable(struct job *j, bool on)
{
	if (j->out.open)
		loop_set(&j->out.w, on ? EPOLLIN : 0);
	if (j->err.open)
		loop_set(&j->err.w, on ? EPOLLIN : 0);
}

/* How many bytes of s may be taken now: what the pipe holds, and after
 * the exit only what it held at the exit. -1 when there is no more. */
static long pipe_avail(struct stream *s)
{
	int avail = 0;

	if (ioctl(s->w.fd, FIONREAD, &avail) < 0)
		return -1;
	if (!s->job->running) {
		if ((size_t)avail > s->drain_left)
			avail = (int)s->drain_left;
		if (avail == 0)
			return -1;
	}
	if (!s->grown && avail >= 65536) {
		/* A busy stream: a larger pipe means fewer wake-ups. */
		fcntl(s->w.fd, F_SETPIPE_SZ, PIPE_BIG);
		s->grown = true;
	}
	return avail;
}

/* Attached path: one chunk from the stream to the socket. Returns bytes
 * sent, 0 when nothing was there, -1 when the stream has ended. */
static long send_direct(struct stream *s)
{
	struct conn *c = s->job->conn;
	long avail;
	ssize_t n;

	if (s->is_pipe) {
		avail = pipe_avail(s);
		if (avail <= 0)
			return avail;
		if (avail > (long)PROTO_FRAME_MAX)
			avail = PROTO_FRAME_MAX;
		if (conn_send_spliced(c, s->type, s->w.fd, (size_t)avail) < 0)
			return -1;
		if (!s->job->running)
			s->drain_left -= (size_t)avail;
		return avail;
	}
	/* A PTY master cannot be spliced: read into the output queue. */
	if (buf_reserve(conn_txbuf(c), PROTO_HDR_LEN + PTY_CHUNK) < 0)
		return -1;
	n = read(s->w.fd, buf_tail(conn_txbuf(c)) + PROTO_HDR_LEN, PTY_CHUNK);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) /* EIO: every slave fd is closed */
		return -1;
	proto_hdr_put(buf_tail(conn_txbuf(c)), s->type, (uint32_t)n);
	buf_commit(conn_txbuf(c), PROTO_HDR_LEN + (size_t)n);
	conn_flush(c);
	return n;
}

/* Detached path: from the stream into its ring. Same returns. */
static long fill_ring(struct stream *s)
{
	long want = PTY_CHUNK;
	ssize_t n;

	if (ring_room(&s->ring) == 0)
		return 0;
	if (s->is_pipe) {
		want = pipe_avail(s);
		if (want <= 0)
			return want;
	}
	n = ring_fill(&s->ring, s->w.fd, (size_t)want);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0)
		return -1;
	if (s->is_pipe && !s->job->running)
		s->drain_left -= (size_t)n;
	return n;
}

static bool ring_full(const struct stream *s)
{
	return ring_room(&s->ring) == 0;
}

static void stream_event(struct watch *w, uint32_t events)
{
	struct stream *s = container_of(w, struct stream, w);
	struct job *j = s->job;
	long n;

	if (j->keep) {
		n = fill_ring(s);
		if (n < 0 || (n == 0 && (events & EPOLLHUP) && !ring_full(s)))
			stream_close(s);
		else if (ring_full(s))
			loop_set(&s->w, 0); /* until the client acknowledges */
		pump_rings(j);
	} else {
		if (!j->conn || !conn_tx_idle(j->conn)) {
			streams_enable(j, false);
			return;
		}
		n = send_direct(s);
		if (n < 0 || (n == 0 && (events & EPOLLHUP)))
			stream_close(s);
		if (j->conn && !conn_tx_idle(j->conn))
			streams_enable(j, false);
	}
	if (!j->running)
		maybe_finish(j);
}

/* Sends what the rings hold beyond what the client already has. */
static void pump_rings(struct job *j)
{
	struct stream *streams[] = { &j->out, &j->err };
	struct conn *c = j->conn;

	if (!c || conn_dead(c))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(streams) && conn_tx_idle(c); i++) {
		struct stream *s = streams[i];
		struct iovec iov[2];
		size_t mark, n;
		int k;

		if (s->ring.fd < 0 || (k = ring_peek(&s->ring, s->sent, SEND_CHUNK, iov)) == 0)
			continue;
		n = iov[0].iov_len + iov[1].iov_len;
		if (proto_begin(conn_txbuf(c), s->type, &mark) < 0 ||
		    buf_append(conn_txbuf(c), iov[0].iov_base, iov[0].iov_len) < 0 ||
		    (k == 2 && buf_append(conn_txbuf(c), iov[1].iov_base, iov[1].iov_len) < 0) ||
		    proto_end(conn_txbuf(c), mark) < 0) {
			struct proto_err e;

			proto_fail(&e, ENOMEM, "out of memory sending output");
			conn_fail(c, &e);
			return;
		}
		s->sent += n;
		conn_flush(c);
	}
}

/* ---- the end of a job ---- */

static void pty_linger(struct timer *t)
{
	struct job *j = container_of(t, struct job, timer);

	/* The terminal stayed quiet: whoever still holds it is not the
	 * command we were asked to run. */
	stream_close(&j->out);
	maybe_finish(j);
}

static void exit_status_of(const struct job *j, struct exit_status *x)
{
	memset(x, 0, sizeof(*x));
	if (WIFSIGNALED(j->status)) {
		x->how = EXIT_SIGNALED;
		x->value = WTERMSIG(j->status);
		x->flags = (WCOREDUMP(j->status) ? EXIT_F_CORE : 0) |
			   (j->oom && x->value == SIGKILL ? EXIT_F_OOM : 0);
	} else {
		x->how = EXIT_EXITED;
		x->value = WEXITSTATUS(j->status);
	}
}

/* Takes what is left in a stream after the exit; false while it must
 * wait (a full ring or queue, or a PTY that may still deliver). */
static bool drain(struct job *j, struct stream *s)
{
	while (s->open) {
		long n;

		if (j->keep) {
			if (ring_full(s))
				return false;
			n = fill_ring(s);
		} else {
			if (!conn_tx_idle(j->conn))
				return false;
			n = send_direct(s);
		}
		if (n < 0) {
			stream_close(s);
		} else if (n == 0) {
			if (s->is_pipe || time_mono_ns() >= j->drain_deadline) {
				stream_close(s);
			} else {
				if (!timer_armed(&j->timer))
					timer_arm(&j->timer, PTY_LINGER_NS, pty_linger);
				return false;
			}
		} else if (!s->is_pipe) {
			timer_cancel(&j->timer);
		}
	}
	return true;
}

/* After the exit: deliver what the command left in its streams, then
 * EXIT. Runs again whenever the queue drains or a client attaches. */
static void maybe_finish(struct job *j)
{
	struct exit_status x;

	if (j->running || j->hup || (!j->keep && !j->conn))
		return;
	if (!drain(j, &j->out) || !drain(j, &j->err))
		return;
	if (j->keep) {
		pump_rings(j);
		if ((j->out.ring.fd >= 0 && j->out.sent < j->out.ring.hdr->end) ||
		    (j->err.ring.fd >= 0 && j->err.sent < j->err.ring.hdr->end))
			return;
	}
	if (!j->conn || j->exit_sent || !conn_tx_idle(j->conn))
		return;
	timer_cancel(&j->timer);
	exit_status_of(j, &x);
	j->exit_sent = true;
	proto_exit_put(conn_txbuf(j->conn), &x);
	if (j->keep) {
		/* Stay until the client acknowledges it has the status. */
		conn_flush(j->conn);
		return;
	}
	stdin_close(j);
	conn_finish(j->conn);
}

static void job_free(struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	njobs--;
	if (j->keep)
		ndetached--;
	reap_unwatch(&j->child);
	timer_cancel(&j->timer);
	exec_output_end(&j->out_sock);
	stream_close(&j->out);
	stream_close(&j->err);
	stdin_close(j);
	ring_close(&j->out.ring);
	ring_close(&j->err.ring);
	buf_free(&j->in_q);
	if (j->cgroup)
		cgroup_done(j->cgroup);
	if (j->held)
		j->agent->job_done(j->pid);
	/* Its watches may still be in this batch of events. */
	loop_free_later(j);
}

static void kill_group(struct job *j, int sig)
{
	if (j->running && j->pid > 0)
		kill(-j->pid, sig);
}

static void kill_timeout(struct timer *t)
{
	kill_group(container_of(t, struct job, timer), SIGKILL);
}

static void ended(struct job *j, int status)
{
	struct stream *streams[] = { &j->out, &j->err };
	int avail;

	j->running = false;
	j->status = status;
	j->oom = j->cgroup && WIFSIGNALED(status) && cgroup_oom_killed(j->cgroup);
	/* A direct stdout ends with the command, as a pipe's output is not
	 * waited for past the exit: its client gets its end of file after
	 * what the command wrote (already queued in the socket), background
	 * writers EPIPE. */
	exec_output_end(&j->out_sock);
	timer_cancel(&j->timer);
	if (j->held)
		j->agent->job_status(j->pid, status);
	if (j->hup) {
		/* Killed after its client went away: nobody to tell. */
		if (j->conn)
			conn_release(j->conn);
		else
			job_free(j);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(streams); i++) {
		struct stream *s = streams[i];

		if (s->open && s->is_pipe)
			s->drain_left = ioctl(s->w.fd, FIONREAD, &avail) == 0 ? (size_t)avail : 0;
	}
	j->drain_deadline = time_mono_ns() + PTY_DRAIN_MAX_NS;
	maybe_finish(j);
}

static void on_exit_status(struct child *ch, int status)
{
	ended(container_of(ch, struct job, child), status);
}

void job_status_from_init(pid_t pid, int status)
{
	for (struct job *j = jobs; j; j = j->next)
		if (j->pid == pid && j->running && !j->our_child) {
			ended(j, status);
			return;
		}
}

/* ---- standard input ---- */

static void stdin_write(struct job *j)
{
	while (buf_len(&j->in_q)) {
		ssize_t n = write(j->in.fd, buf_head(&j->in_q), buf_len(&j->in_q));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			/* EPIPE: the command closed its input; drop the rest. */
			stdin_close(j);
			return;
		}
		buf_consume(&j->in_q, (size_t)n);
	}
	if (buf_len(&j->in_q) == 0) {
		buf_shrink(&j->in_q, 0);
		if (j->in_eof) {
			if (j->pty) {
				struct termios t;
				char eof = 4;

				/* A terminal has no EOF of its own: type the
				 * EOF character, as a user at it would. */
				if (tcgetattr(j->in.fd, &t) == 0)
					eof = (char)t.c_cc[VEOF];
				if (write(j->in.fd, &eof, 1) < 0)
					log_debug(errno, "cannot write EOF to the terminal");
				j->in_eof = false;
				loop_set(&j->in, 0);
			} else {
				stdin_close(j);
			}
			return;
		}
	}
	loop_set(&j->in, buf_len(&j->in_q) ? EPOLLOUT : 0);
	if (j->conn)
		conn_pause_rx(j->conn, buf_len(&j->in_q) >= STDIN_QUEUE_MAX);
}

static void stdin_event(struct watch *w, uint32_t events)
{
	stdin_write(container_of(w, struct job, in));
}

/* ---- frames from the attached client ---- */

static int on_ack(struct job *j, const struct frame *f, struct proto_err *e)
{
	struct stream *streams[] = { &j->out, &j->err };
	struct ack a;

	if (proto_ack_decode(f, &a, e) < 0)
		return -e->code;
	if (!j->keep)
		return proto_fail(e, EPROTO, "ACK is for detached commands");
	for (size_t i = 0; i < ARRAY_SIZE(streams); i++) {
		struct stream *s = streams[i];
		uint64_t off = i == 0 ? a.out_off : a.err_off;
		uint64_t acked = s->ring.fd >= 0 ? s->ring.hdr->acked : 0;

		if (off < acked || off > s->sent)
			return proto_fail(e, EINVAL, "ACK of %s offset %llu, but %llu-%llu were sent",
				    i == 0 ? "stdout" : "stderr", (unsigned long long)off,
				    (unsigned long long)acked, (unsigned long long)s->sent);
		if (s->ring.fd < 0)
			continue;
		ring_ack(&s->ring, off);
		if (s->open && !ring_full(s))
			loop_set(&s->w, EPOLLIN);
	}
	if (a.flags & ACK_F_EXIT) {
		if (!j->exit_sent)
			return proto_fail(e, EPROTO, "ACK of an EXIT that was not sent");
		j->collected = true;
		conn_finish(j->conn);
		return 0;
	}
	if (!j->running)
		maybe_finish(j);
	return 0;
}

static int job_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct job *j = c->op;
	uint16_t rows, cols;
	int sig;

	switch (f->type) {
	case FT_STDIN:
		if (!j->in_open)
			return 0; /* the command stopped reading: discard */
		if (j->in_eof)
			return proto_fail(e, EPROTO, "STDIN after STDIN_EOF");
		{
			const uint8_t *p = f->payload;
			size_t left = f->len;

			/* Straight from the frame when nothing waits before it;
			 * only what the pipe does not take is copied. */
			while (left && buf_len(&j->in_q) == 0) {
				ssize_t n = write(j->in.fd, p, left);

				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno != EAGAIN) {
					stdin_close(j); /* EPIPE: it stopped reading */
					return 0;
				}
				if (n <= 0) {
					/* A full pipe: a busy stream. A larger
					 * one means fewer wake-ups, both sides. */
					if (j->pty || j->in_grown)
						break;
					j->in_grown = true;
					if (fcntl(j->in.fd, F_SETPIPE_SZ, PIPE_BIG) < 0)
						break;
					continue;
				}
				p += n;
				left -= (size_t)n;
			}
			if (left && buf_append(&j->in_q, p, left) < 0)
				return proto_fail(e, ENOBUFS, "standard input queue overflow");
		}
		stdin_write(j);
		return 0;
	case FT_STDIN_EOF:
		if (f->len != 0)
			return proto_fail(e, EBADMSG, "STDIN_EOF payload is %u bytes, expected 0", f->len);
		if (j->in_open && !j->in_eof) {
			j->in_eof = true;
			stdin_write(j);
		}
		return 0;
	case FT_SIGNAL:
		if (proto_signal_decode(f, &sig, e) < 0)
			return -e->code;
		kill_group(j, sig);
		return 0;
	case FT_RESIZE: {
		struct winsize ws = { 0 };

		if (proto_resize_decode(f, &rows, &cols, e) < 0)
			return -e->code;
		if (!j->pty)
			return proto_fail(e, EINVAL, "RESIZE: the command has no terminal");
		ws.ws_row = rows;
		ws.ws_col = cols;
		/* The kernel sends SIGWINCH to the foreground group. */
		if (j->out.open)
			ioctl(j->out.w.fd, TIOCSWINSZ, &ws);
		return 0;
	}
	case FT_ACK:
		return on_ack(j, f, e);
	default:
		return proto_fail(e, EPROTO, "unexpected %s frame during a command",
				  proto_type_name(f->type));
	}
	return 0;
}

/* STDIN payloads go from the socket straight into the command's pipe
 * (conn_rx_sink) whenever nothing waits in the queue before them: no copy
 * through us, and the pipe is the only buffer. */
static int job_rx_sink(struct conn *c, uint16_t type, uint32_t len)
{
	struct job *j = c->op;

	(void)len;
	if (!j || type != FT_STDIN || !j->in_open || j->in_eof || j->pty || buf_len(&j->in_q))
		return -1;
	if (!j->in_grown) {
		/* A larger pipe means fewer wake-ups, both sides. */
		j->in_grown = true;
		fcntl(j->in.fd, F_SETPIPE_SZ, PIPE_BIG);
	}
	return j->in.fd;
}

static void job_rx_sink_error(struct conn *c, int err)
{
	struct job *j = c->op;

	if (!j)
		return;
	if (err == -EAGAIN) {
		/* The pipe is full: read on when the command has taken some. */
		loop_set(&j->in, EPOLLOUT);
		conn_pause_rx(c, true);
		return;
	}
	/* EPIPE: it stopped reading; any other error: the pipe failed
	 * (conn/conn.c keeps the socket's own errors). The command sees its
	 * stdin end, the rest is dropped. */
	if (err != -EPIPE)
		log_warn(-err, "stdin of command %d", j->pid);
	stdin_close(j);
}

static void job_writable(struct conn *c)
{
	struct job *j = c->op;

	if (j->keep)
		pump_rings(j);
	else if (j->running)
		streams_enable(j, true);
	if (!j->running)
		maybe_finish(j);
}

static void job_hangup(struct conn *c)
{
	struct job *j = c->op;

	if (j->keep) {
		/* A detached job waits for the next client. */
		j->conn = NULL;
		conn_release(c);
		return;
	}
	j->hup = true;
	stream_close(&j->out);
	stream_close(&j->err);
	stdin_close(j);
	if (!j->running) {
		conn_release(c);
		return;
	}
	/* The client is gone and cannot collect anything: hang up on the
	 * command as a terminal would, then make sure. */
	kill_group(j, SIGHUP);
	kill_group(j, SIGCONT);
	timer_arm(&j->timer, KILL_GRACE_NS, kill_timeout);
}

static void job_destroy(struct conn *c)
{
	struct job *j = c->op;

	c->op = NULL;
	if (j->conn == c)
		j->conn = NULL;
	if (!j->keep || j->collected)
		job_free(j);
}

/* ---- creating, attaching, listing ---- */

static uint64_t acked_of(const struct stream *s)
{
	return s->ring.fd >= 0 ? s->ring.hdr->acked : 0;
}

static void attach(struct job *j, struct conn *c)
{
	j->conn = c;
	j->exit_sent = false;
	j->out.sent = acked_of(&j->out);
	j->err.sent = acked_of(&j->err);
	c->ops = &job_ops;
	c->op = j;
	conn_rx_sink(c, j->in_open && !j->pty);
}

/* A detached job's stream gets a ring: its own (restored), or a new one. */
static int stream_init(struct job *j, struct stream *s, uint16_t type, int fd, int ring_fd)
{
	int r = 0;

	s->job = j;
	s->type = type;
	s->ring.fd = -1;
	if (j->keep && ring_fd >= 0)
		r = ring_open(&s->ring, ring_fd);
	else if (j->keep && fd >= 0)
		r = ring_create(&s->ring, j->agent->config()->output_buffer,
				type == FT_STDOUT ? "sbx-stdout" : "sbx-stderr");
	else if (ring_fd >= 0)
		close(ring_fd);
	if (r < 0)
		log_warn(r, "no output buffer for command %d", j->pid);
	if (fd < 0)
		return r;
	s->is_pipe = !j->pty;
	s->open = true;
	fd_set_nonblock(fd, true);
	loop_add(&s->w, fd, EPOLLIN, stream_event);
	if (r < 0) {
		/* Without a buffer it cannot wait for a reader. */
		stream_close(s);
	}
	return r;
}

struct job *job_new(const struct agent *a, const struct job_spawned *sp, struct conn *c)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		int fds[] = { sp->out_fd, sp->err_fd, sp->in_fd, sp->out_ring, sp->err_ring };
		int out_sock = sp->out_sock;

		exec_output_end(&out_sock);
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return NULL;
	}
	j->agent = a;
	j->out_sock = sp->out_sock;
	j->pid = sp->pid;
	j->ns_pid = sp->ns_pid > 0 ? sp->ns_pid : sp->pid;
	j->pty = sp->pty;
	j->keep = sp->keep;
	j->our_child = sp->our_child;
	j->started_ns = sp->started_ns;
	j->cgroup = sp->cgroup;
	j->running = !sp->exited;
	j->status = sp->status;
	memcpy(j->argv, sp->argv, sizeof(j->argv));
	buf_init(&j->in_q, STDIN_QUEUE_MAX + PROTO_FRAME_MAX);
	/* A pid is unique among live processes, but a forgotten job's pid
	 * can come back (either one: a new workloads' namespace counts from
	 * 1 again): the old ones make way, one with the same real pid and
	 * another with the same namespace pid alike. */
	for (struct job *o = jobs, *next; o; o = next) {
		next = o->next;
		if ((o->pid == j->pid || o->ns_pid == j->ns_pid) && !o->running && !o->conn) {
			log_warn(0, "forgetting the uncollected status of an earlier pid %d (%d in the "
				 "workloads' namespace)", o->pid, o->ns_pid);
			job_free(o);
		}
	}
	j->next = jobs;
	if (jobs)
		jobs->prev = j;
	jobs = j;
	njobs++;
	if (j->keep)
		ndetached++;
	stream_init(j, &j->out, FT_STDOUT, sp->out_fd, sp->out_ring);
	stream_init(j, &j->err, FT_STDERR, sp->err_fd, sp->err_ring);
	if (sp->in_fd >= 0) {
		j->in_open = true;
		fd_set_nonblock(sp->in_fd, true);
		loop_add(&j->in, sp->in_fd, 0, stdin_event);
	}
	if (j->our_child && j->running)
		reap_watch(&j->child, j->pid, on_exit_status);
	{
		struct job_fds h = { .out = sp->out_fd, .err = sp->err_fd,
				     .out_ring = j->out.ring.fd, .err_ring = j->err.ring.fd };

		j->held = sp->held || a->job_hold(j->pid, j->ns_pid, j->keep, j->pty, j->started_ns,
						  j->argv, &h) == 0;
	}
	if (c) {
		attach(j, c);
		proto_u32_put(conn_txbuf(c), FT_STARTED, (uint32_t)j->ns_pid);
		conn_flush(c);
		if (!j->keep && !conn_tx_idle(c))
			streams_enable(j, false);
	}
	if (!j->running)
		ended(j, j->status);
	return j;
}

int job_attach(pid_t pid, struct conn *c, struct proto_err *e)
{
	struct attached a = { .pid = (uint32_t)pid };
	struct job *j;

	for (j = jobs; j; j = j->next)
		if (j->ns_pid == pid && (j->running || !j->collected))
			break;
	if (!j)
		return -ESRCH;
	if (!j->keep)
		return proto_fail(e, EBUSY, "command %d belongs to the client that started it", pid);
	if (j->conn) {
		/* The newest client wins: the old one may be a dead peer
		 * whose connection has not timed out yet. */
		struct conn *old = j->conn;
		struct proto_err busy;

		j->conn = NULL;
		old->op = NULL;
		old->ops = NULL;
		proto_fail(&busy, EBUSY, "another client attached to command %d", pid);
		conn_fail(old, &busy);
	}
	attach(j, c);
	a.flags = j->pty ? PS_F_PTY : 0;
	a.out_base = acked_of(&j->out);
	a.err_base = acked_of(&j->err);
	proto_attached_put(conn_txbuf(c), &a);
	conn_flush(c);
	pump_rings(j);
	if (!j->running)
		maybe_finish(j);
	return 0;
}

void job_list(struct conn *c)
{
	for (struct job *j = jobs; j; j = j->next) {
		struct ps_entry p = { .pid = (uint32_t)j->ns_pid, .started_ns = j->started_ns };

		str_copy(p.argv, sizeof(p.argv), j->argv);
		if (j->running) {
			p.state = PS_RUNNING;
		} else if (WIFSIGNALED(j->status)) {
			p.state = PS_SIGNALED;
			p.status = WTERMSIG(j->status);
		} else {
			p.state = PS_EXITED;
			p.status = WEXITSTATUS(j->status);
		}
		p.flags = (j->keep ? PS_F_DETACHED : 0) | (j->conn ? PS_F_ATTACHED : 0) |
			  (j->pty ? PS_F_PTY : 0);
		if (proto_ps_entry_put(conn_txbuf(c), &p) < 0)
			break;
	}
}

unsigned job_count(void)
{
	return njobs;
}
