/* The EXEC operation: starts a command for a connection and relays its
 * stdin, stdout and stderr (or its terminal) until it ends, then sends
 * EXIT after all the output it wrote. Output moves from the command's pipe
 * to the socket with splice(2), and only while the socket has room, so a
 * client that does not read makes the command block rather than making us
 * buffer. */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "exec/reap.h"
#include "exec/spawn.h"
#include "exec/user.h"
#include "lib/log.h"
#include "lib/util.h"
#include "server/conn.h"
#include "server/server.h"

#define STDIN_QUEUE_MAX (256 * 1024)
#define PTY_CHUNK (64 * 1024)
#define KILL_GRACE_NS (2 * NSEC_PER_SEC)
#define PTY_LINGER_NS (50 * NSEC_PER_MSEC)
#define PTY_DRAIN_MAX_NS (1 * NSEC_PER_SEC)
#define PIPE_BIG (1024 * 1024)

struct exec_op;

/* One output stream: the read end of a pipe, or the PTY master. */
struct stream {
	struct watch w;
	struct exec_op *op;
	uint16_t type;        /* FT_STDOUT or FT_STDERR */
	bool open;
	bool is_pipe;
	bool grown;           /* pipe enlarged to PIPE_BIG */
	size_t drain_left;    /* after exit: bytes still to send (pipes) */
};

struct exec_op {
	struct conn *conn;
	struct child child;
	pid_t pid;
	bool running;         /* started and not reaped yet */
	int status;
	bool pty;
	struct stream out, err;
	struct watch in;      /* stdin sink: pipe write end or a dup of the master */
	struct buf in_q;
	bool in_open;
	bool in_eof;          /* STDIN_EOF received */
	struct timer timer;   /* kill grace after a hang-up; PTY drain linger */
	uint64_t drain_deadline;
	bool hup;
	bool exit_sent;
};

static void exec_frame(struct conn *c, const struct frame *f);
static void exec_writable(struct conn *c);
static void exec_hangup(struct conn *c);
static void exec_destroy(struct conn *c);

static const struct conn_ops exec_ops = {
	.name = "exec",
	.frame = exec_frame,
	.writable = exec_writable,
	.hangup = exec_hangup,
	.destroy = exec_destroy,
};

static void maybe_finish(struct exec_op *op);

static void stream_close(struct stream *s)
{
	if (!s->open)
		return;
	loop_del(&s->w);
	close(s->w.fd);
	s->open = false;
}

static void stdin_close(struct exec_op *op)
{
	if (!op->in_open)
		return;
	loop_del(&op->in);
	close(op->in.fd);
	op->in_open = false;
	buf_free(&op->in_q);
	conn_pause_rx(op->conn, false);
}

static void streams_enable(struct exec_op *op, bool on)
{
	if (op->out.open)
		loop_set(&op->out.w, on ? EPOLLIN : 0);
	if (op->err.open)
		loop_set(&op->err.w, on ? EPOLLIN : 0);
}

/* Sends one chunk of s to the client. Returns bytes sent, 0 when nothing
 * was available, -1 when the stream has ended. */
static long stream_send(struct stream *s)
{
	struct conn *c = s->op->conn;
	int avail = 0;
	ssize_t n;

	if (s->is_pipe) {
		if (ioctl(s->w.fd, FIONREAD, &avail) < 0)
			return -1;
		if (s->op->running || s->op->exit_sent) {
			if (avail == 0)
				return 0;
		} else {
			/* After exit, only what was in the pipe at exit. */
			if ((size_t)avail > s->drain_left)
				avail = (int)s->drain_left;
			if (avail == 0)
				return -1;
			s->drain_left -= (size_t)avail;
		}
		if (!s->grown && avail >= 65536) {
			/* A busy stream: a larger pipe means fewer wake-ups. */
			fcntl(s->w.fd, F_SETPIPE_SZ, PIPE_BIG);
			s->grown = true;
		}
		if ((size_t)avail > PROTO_FRAME_MAX)
			avail = PROTO_FRAME_MAX;
		return conn_send_spliced(c, s->type, s->w.fd, (size_t)avail) < 0 ? -1 : avail;
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

static void stream_event(struct watch *w, uint32_t events)
{
	struct stream *s = container_of(w, struct stream, w);
	struct exec_op *op = s->op;
	long n;

	if (!conn_tx_idle(op->conn)) {
		streams_enable(op, false);
		return;
	}
	n = stream_send(s);
	if (n < 0 || (n == 0 && (events & EPOLLHUP)))
		stream_close(s);
	if (!conn_tx_idle(op->conn))
		streams_enable(op, false);
	if (!op->running)
		maybe_finish(op);
}

static void pty_linger(struct timer *t)
{
	struct exec_op *op = container_of(t, struct exec_op, timer);

	/* The terminal stayed quiet: whoever still holds it is not the
	 * command we were asked to run. */
	stream_close(&op->out);
	maybe_finish(op);
}

/* After the command was reaped: send what it left in its streams, then
 * EXIT. Runs whenever the queue drains until that is done. */
static void maybe_finish(struct exec_op *op)
{
	struct exit_status x = { 0 };
	struct stream *streams[] = { &op->out, &op->err };

	if (op->running || op->exit_sent || op->hup)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(streams); i++) {
		struct stream *s = streams[i];
		long n;

		while (s->open && conn_tx_idle(op->conn)) {
			n = stream_send(s);
			if (n < 0) {
				stream_close(s);
			} else if (n == 0) {
				if (s->is_pipe) {
					stream_close(s);
				} else if (time_mono_ns() >= op->drain_deadline) {
					stream_close(s);
				} else {
					if (!timer_armed(&op->timer))
						timer_arm(&op->timer, PTY_LINGER_NS, pty_linger);
					return;
				}
			} else if (!s->is_pipe) {
				timer_cancel(&op->timer);
			}
		}
		if (s->open)
			return; /* the queue is full; exec_writable calls again */
	}
	if (!conn_tx_idle(op->conn))
		return;
	timer_cancel(&op->timer);
	if (WIFSIGNALED(op->status)) {
		x.how = EXIT_SIGNALED;
		x.value = WTERMSIG(op->status);
		x.flags = WCOREDUMP(op->status) ? EXIT_F_CORE : 0;
	} else {
		x.how = EXIT_EXITED;
		x.value = WEXITSTATUS(op->status);
	}
	op->exit_sent = true;
	stdin_close(op);
	proto_exit_put(conn_txbuf(op->conn), &x);
	conn_finish(op->conn);
}

static void kill_group(struct exec_op *op, int sig)
{
	if (op->running && op->pid > 0)
		kill(-op->pid, sig);
}

static void kill_timeout(struct timer *t)
{
	struct exec_op *op = container_of(t, struct exec_op, timer);

	kill_group(op, SIGKILL);
}

static void on_exit_status(struct child *ch, int status)
{
	struct exec_op *op = container_of(ch, struct exec_op, child);
	struct stream *streams[] = { &op->out, &op->err };
	int avail;

	op->running = false;
	op->status = status;
	timer_cancel(&op->timer);
	if (op->hup) {
		conn_release(op->conn);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(streams); i++) {
		struct stream *s = streams[i];

		if (s->open && s->is_pipe)
			s->drain_left = ioctl(s->w.fd, FIONREAD, &avail) == 0 ? (size_t)avail : 0;
	}
	op->drain_deadline = time_mono_ns() + PTY_DRAIN_MAX_NS;
	maybe_finish(op);
}

/* ---- standard input ---- */

static void stdin_write(struct exec_op *op)
{
	while (buf_len(&op->in_q)) {
		ssize_t n = write(op->in.fd, buf_head(&op->in_q), buf_len(&op->in_q));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			/* EPIPE: the command closed its input; drop the rest. */
			stdin_close(op);
			return;
		}
		buf_consume(&op->in_q, (size_t)n);
	}
	if (buf_len(&op->in_q) == 0) {
		buf_shrink(&op->in_q, 0);
		if (op->in_eof) {
			if (op->pty) {
				struct termios t;
				char eof = 4;

				/* A terminal has no EOF of its own: type the
				 * EOF character, as a user at it would. */
				if (tcgetattr(op->in.fd, &t) == 0)
					eof = (char)t.c_cc[VEOF];
				if (write(op->in.fd, &eof, 1) < 0)
					log_debug(errno, "cannot write EOF to the terminal");
				op->in_eof = false;
				loop_set(&op->in, 0);
			} else {
				stdin_close(op);
			}
			return;
		}
	}
	loop_set(&op->in, buf_len(&op->in_q) ? EPOLLOUT : 0);
	conn_pause_rx(op->conn, buf_len(&op->in_q) >= STDIN_QUEUE_MAX);
}

static void stdin_event(struct watch *w, uint32_t events)
{
	struct exec_op *op = container_of(w, struct exec_op, in);

	stdin_write(op);
}

/* ---- frames from the client ---- */

static void exec_frame(struct conn *c, const struct frame *f)
{
	struct exec_op *op = c->op;
	struct proto_err e;
	uint16_t rows, cols;
	int sig;

	switch (f->type) {
	case FT_STDIN:
		if (!op->in_open)
			return; /* the command stopped reading: discard */
		if (op->in_eof) {
			conn_fail(c, EPROTO, "STDIN after STDIN_EOF");
			return;
		}
		if (buf_append(&op->in_q, f->payload, f->len) < 0) {
			conn_fail(c, ENOBUFS, "standard input queue overflow");
			return;
		}
		stdin_write(op);
		return;
	case FT_STDIN_EOF:
		if (f->len != 0) {
			conn_fail(c, EBADMSG, "STDIN_EOF payload is %u bytes, expected 0", f->len);
			return;
		}
		if (op->in_open && !op->in_eof) {
			op->in_eof = true;
			stdin_write(op);
		}
		return;
	case FT_SIGNAL:
		if (proto_signal_decode(f, &sig, &e) < 0) {
			conn_fail(c, e.code, "%s", e.msg);
			return;
		}
		kill_group(op, sig);
		return;
	case FT_RESIZE: {
		struct winsize ws = { 0 };

		if (proto_resize_decode(f, &rows, &cols, &e) < 0) {
			conn_fail(c, e.code, "%s", e.msg);
			return;
		}
		if (!op->pty) {
			conn_fail(c, EINVAL, "RESIZE: the command has no terminal");
			return;
		}
		ws.ws_row = rows;
		ws.ws_col = cols;
		/* The kernel sends SIGWINCH to the foreground group. */
		if (op->out.open)
			ioctl(op->out.w.fd, TIOCSWINSZ, &ws);
		return;
	}
	default:
		conn_fail(c, EPROTO, "unexpected %s frame during EXEC", proto_type_name(f->type));
	}
}

static void exec_writable(struct conn *c)
{
	struct exec_op *op = c->op;

	if (op->running)
		streams_enable(op, true);
	else
		maybe_finish(op);
}

static void exec_hangup(struct conn *c)
{
	struct exec_op *op = c->op;

	op->hup = true;
	stream_close(&op->out);
	stream_close(&op->err);
	stdin_close(op);
	if (!op->running) {
		conn_release(c);
		return;
	}
	/* The client is gone and cannot collect anything: hang up on the
	 * command as a terminal would, then make sure. */
	kill_group(op, SIGHUP);
	kill_group(op, SIGCONT);
	timer_arm(&op->timer, KILL_GRACE_NS, kill_timeout);
}

static void exec_destroy(struct conn *c)
{
	struct exec_op *op = c->op;

	reap_unwatch(&op->child);
	timer_cancel(&op->timer);
	stream_close(&op->out);
	stream_close(&op->err);
	stdin_close(op);
	buf_free(&op->in_q);
	/* Its watches may still be in this batch of events. */
	loop_free_later(op);
	c->op = NULL;
}

/* ---- starting ---- */

static void not_started(struct conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void not_started(struct conn *c, int code, const char *fmt, ...)
{
	struct exit_status x = { .how = EXIT_NOT_STARTED, .value = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x.msg, sizeof(x.msg), fmt, ap);
	va_end(ap);
	proto_exit_put(conn_txbuf(c), &x);
	conn_finish(c);
}

/* The command's environment: see "Environment" in docs/PROTOCOL.md. */
static int build_env(const struct exec_req *req, const struct user *u, char ***envp, size_t *envc)
{
	const struct config *cfg = server_config();
	static const char *const names[] = { "HOME", "USER", "LOGNAME", "SHELL", "PATH" };
	const char *values[] = { u->home, u->name, u->name, u->shell, SPAWN_DEFAULT_PATH };
	int r = 0;

	*envp = NULL;
	*envc = 0;
	if (!(req->flags & EXEC_F_CLEAR_ENV)) {
		for (size_t i = 0; r == 0 && i < cfg->envc; i++) {
			char name[256];
			const char *eq = strchr(cfg->env[i], '=');
			size_t len = (size_t)(eq - cfg->env[i]);

			if (len >= sizeof(name))
				continue;
			memcpy(name, cfg->env[i], len);
			name[len] = '\0';
			r = config_env_set(envp, envc, name, eq + 1);
		}
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(names); i++)
			if (!config_env_get(*envp, names[i]))
				r = config_env_set(envp, envc, names[i], values[i]);
	}
	for (size_t i = 0; r == 0 && i < req->envc; i++) {
		char *eq = strchr(req->env[i], '=');

		*eq = '\0'; /* the request owns this copy */
		r = config_env_set(envp, envc, req->env[i], eq + 1);
		*eq = '=';
	}
	if (r == 0 && !*envp) {
		*envp = calloc(1, sizeof(char *));
		if (!*envp)
			r = -ENOMEM;
	}
	return r;
}

static void free_env(char **env, size_t envc)
{
	for (size_t i = 0; i < envc; i++)
		free(env[i]);
	free(env);
}

/* Where the command starts: see "User and directory" in PROTOCOL.md. */
static int resolve_cwd(const struct exec_req *req, const struct user *u, const struct user *def,
		       char *out, size_t n, bool *optional)
{
	const struct config *cfg = server_config();
	const char *base = cfg->workdir[0] ? cfg->workdir : def->home;
	int len;

	*optional = false;
	if (req->cwd && req->cwd[0] == '/')
		len = snprintf(out, n, "%s", req->cwd);
	else if (req->cwd)
		len = snprintf(out, n, "%s/%s", strcmp(base, "/") ? base : "", req->cwd);
	else if (u->uid == def->uid) {
		len = snprintf(out, n, "%s", base);
		*optional = !cfg->workdir[0];
	} else {
		len = snprintf(out, n, "%s", u->home);
		*optional = true;
	}
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static int open_pty(const struct exec_req *req, const struct user *u, int *master, int *slave)
{
	struct winsize ws = { .ws_row = req->rows, .ws_col = req->cols };
	int m, s, r;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (unlockpt(m) < 0)
		goto fail;
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		char name[64];

		if (ptsname_r(m, name, sizeof(name)) != 0)
			goto fail;
		s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s < 0)
			goto fail;
	}
	/* The size is in place before the command first looks at it. */
	ioctl(m, TIOCSWINSZ, &ws);
	if (fchown(s, u->uid, (gid_t)-1) == 0)
		fchmod(s, 0620);
	*master = m;
	*slave = s;
	return 0;
fail:
	r = -errno;
	close(m);
	return r;
}

static void spawn_failed(struct conn *c, const struct exec_req *req, const char *cwd,
			 const struct user *u, const struct spawn_err *e)
{
	const char *prog = req->argv[0];

	switch (e->stage) {
	case SPAWN_EXEC:
		if (e->err == ENOENT && strchr(prog, '/'))
			not_started(c, 127, "no such file or directory: %s", prog);
		else if (e->err == ENOENT)
			not_started(c, 127, "command not found: %s", prog);
		else if (e->err == EACCES)
			not_started(c, 126, "permission denied: %s", prog);
		else if (e->err == ENOEXEC)
			not_started(c, 126, "exec format error: %s", prog);
		else
			not_started(c, 126, "cannot execute %s: %s", prog, strerror(e->err));
		break;
	case SPAWN_CWD:
		not_started(c, 126, "cannot change directory to %s: %s", cwd, strerror(e->err));
		break;
	case SPAWN_IDS:
		not_started(c, 126, "cannot switch to user %s: %s", u->name, strerror(e->err));
		break;
	default:
		not_started(c, 126, "cannot start %s: %s", prog, strerror(e->err));
		break;
	}
}

static void stream_init(struct stream *s, struct exec_op *op, uint16_t type, int fd, bool pipe)
{
	s->op = op;
	s->type = type;
	s->is_pipe = pipe;
	s->open = true;
	s->w.fd = fd;
}

void exec_start(struct conn *c, const struct frame *f)
{
	struct exec_req req;
	struct proto_err e;
	struct user u, def;
	struct spawn_req sr = { .ctty = -1 };
	struct spawn_err se;
	struct exec_op *op = NULL;
	char cwd[PATH_MAX], **envp = NULL;
	size_t envc = 0;
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	int master = -1, slave = -1, devnull = server_devnull(), r;
	const char *who;

	if (proto_exec_decode(f, &req, &e) < 0) {
		conn_fail(c, e.code, "%s", e.msg);
		return;
	}
	who = req.user ? req.user : server_config()->user;
	if ((r = user_lookup(who, &u)) < 0) {
		if (r == -ENOENT)
			not_started(c, 126, "no such user: %s", who);
		else
			not_started(c, 126, "cannot look up user %s: %s", who, strerror(-r));
		goto out;
	}
	if (user_lookup(server_config()->user, &def) < 0)
		def = u;
	if (resolve_cwd(&req, &u, &def, cwd, sizeof(cwd), &sr.cwd_optional) < 0) {
		not_started(c, 126, "working directory name too long");
		goto out;
	}
	if ((r = build_env(&req, &u, &envp, &envc)) < 0) {
		not_started(c, 126, "cannot build the environment: %s", strerror(-r));
		goto out;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		conn_fail(c, ENOMEM, "out of memory");
		goto out;
	}
	buf_init(&op->in_q, STDIN_QUEUE_MAX + PROTO_FRAME_MAX);

	if (req.pty) {
		if ((r = open_pty(&req, &u, &master, &slave)) < 0) {
			not_started(c, 126, "cannot open a terminal: %s", strerror(-r));
			goto out;
		}
		sr.fd[0] = sr.fd[1] = sr.fd[2] = slave;
		sr.ctty = slave;
	} else {
		if (((req.flags & EXEC_F_STDIN) && pipe2(in_p, O_CLOEXEC) < 0) ||
		    (!(req.flags & EXEC_F_NO_STDOUT) && pipe2(out_p, O_CLOEXEC) < 0) ||
		    (!(req.flags & EXEC_F_NO_STDERR) && pipe2(err_p, O_CLOEXEC) < 0)) {
			not_started(c, 126, "cannot create pipes: %s", strerror(errno));
			goto out;
		}
		sr.fd[0] = in_p[0] >= 0 ? in_p[0] : devnull;
		sr.fd[1] = out_p[1] >= 0 ? out_p[1] : devnull;
		sr.fd[2] = err_p[1] >= 0 ? err_p[1] : devnull;
	}
	sr.argv = req.argv;
	sr.envp = envp;
	sr.path = config_env_get(envp, "PATH");
	sr.cwd = cwd;
	sr.uid = u.uid;
	sr.gid = u.gid;
	sr.groups = u.groups;
	sr.ngroups = u.ngroups;
	sr.set_ids = !(u.uid == geteuid() && u.gid == getegid());

	if (spawn_process(&sr, &op->pid, &se) < 0) {
		spawn_failed(c, &req, cwd, &u, &se);
		goto out;
	}
	op->running = true;
	op->conn = c;
	reap_watch(&op->child, op->pid, on_exit_status);

	/* Keep our ends; the child's ends close here. */
	if (req.pty) {
		op->pty = true;
		fd_close(&slave);
		stream_init(&op->out, op, FT_STDOUT, master, false);
		op->in.fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
		op->in_open = op->in.fd >= 0;
		master = -1;
	} else {
		if (in_p[1] >= 0) {
			op->in.fd = in_p[1];
			op->in_open = true;
			in_p[1] = -1;
		}
		if (out_p[0] >= 0) {
			stream_init(&op->out, op, FT_STDOUT, out_p[0], true);
			out_p[0] = -1;
		}
		if (err_p[0] >= 0) {
			stream_init(&op->err, op, FT_STDERR, err_p[0], true);
			err_p[0] = -1;
		}
	}
	c->ops = &exec_ops;
	c->op = op;
	{
		struct stream *streams[] = { &op->out, &op->err };

		for (size_t i = 0; i < ARRAY_SIZE(streams); i++)
			if (streams[i]->open) {
				fd_set_nonblock(streams[i]->w.fd, true);
				loop_add(&streams[i]->w, streams[i]->w.fd, EPOLLIN, stream_event);
			}
		if (op->in_open) {
			fd_set_nonblock(op->in.fd, true);
			loop_add(&op->in, op->in.fd, 0, stdin_event);
		}
	}
	op = NULL;
	proto_u32_put(conn_txbuf(c), FT_STARTED, (uint32_t)((struct exec_op *)c->op)->pid);
	conn_flush(c);
	if (!conn_tx_idle(c))
		streams_enable(c->op, false);
out:
	for (int i = 0; i < 2; i++) {
		fd_close(&in_p[i]);
		fd_close(&out_p[i]);
		fd_close(&err_p[i]);
	}
	fd_close(&master);
	fd_close(&slave);
	if (op) {
		buf_free(&op->in_q);
		free(op);
	}
	free_env(envp, envc);
	proto_exec_free(&req);
}
