/* The two-way relay of lib/relay.h. Each direction reads its source into
 * a pipe with splice(2) and splices the pipe into its destination; when
 * the source reaches EOF and the pipe is drained, the destination's write
 * side is shut down (or closed, for a one-way fd) and the other direction
 * carries on. An fd that cannot splice (a terminal on some kernels) falls
 * back to read/write through a small buffer. Handlers never block.
 *
 * The fds are watched edge-triggered, registered once for everything the
 * relay may need from them: a bulk transfer then costs no epoll_ctl per
 * wake-up (15% of its throughput). The rule that makes that safe: a
 * direction stops only on EAGAIN from the side it waits for (which will
 * signal the next edge), or when its pipe is full, which it only is after
 * the destination said EAGAIN; a direction that could still move when it
 * had used its share of a wake-up runs again from a zero-delay timer. */
#include "lib/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/util.h"

/* A pipe starts at the kernel's default (64 KiB). A busy direction (one
 * that filled its pipe) gets a 1 MiB pipe and, when it writes into a Unix
 * socket, a 4 MiB send buffer: how much one wake-up can move is what
 * limits a relay, and the defaults (64 KiB, 208 KiB) cost it a quarter of
 * its throughput. TCP sizes its own buffers and vsock has its own credit.
 * At most BUSY_MAX directions are busy at once, which bounds the memory
 * this takes however many connections there are. */
#define PIPE_BIG (1024 * 1024)
#define UNIX_SNDBUF_BIG (4 * 1024 * 1024)
#define BUSY_MAX 32
#define COPY_CHUNK (64 * 1024)

struct relay;

struct rwatch {
	struct watch w;
	struct relay *r;
	int fd;            /* -1: unused or closed */
	bool always_ready; /* a regular file: epoll refuses it, I/O never waits */
};

struct dir {
	int from, to;      /* fds, shared with the watches; -1 once closed */
	int pipe[2];       /* created on first use */
	size_t queued;     /* bytes in the pipe */
	size_t cap;
	bool eof;          /* the source ended */
	bool full;         /* the pipe took no more: wait for the destination */
	bool grown;        /* tried to become busy (once) */
	bool busy;         /* holds one of the BUSY_MAX slots */
	bool done;
	bool copy;         /* read/write through buf instead of splice */
	uint8_t *buf;
	size_t boff, blen, bsize;
	uint64_t bytes;
};

struct relay {
	struct rwatch w[4];
	struct dir d[2];   /* d[0]: a to b, d[1]: b to a */
	struct timer kick; /* runs the relay again: work left over, or an
			    * always-ready fd */
	relay_done_fn done;
	void *arg;
	int err;
	bool finished;
};

static unsigned nrelays, nbusy;

unsigned relay_count(void) { return nrelays; }

static void relay_run(struct relay *r);

static size_t pending(const struct dir *d)
{
	return d->copy ? d->blen - d->boff : d->queued;
}

static bool want_read(const struct dir *d)
{
	if (d->done || d->eof)
		return false;
	if (d->copy)
		return d->blen < d->bsize;
	return !d->full && (d->pipe[0] < 0 || d->queued < d->cap);
}

static bool want_write(const struct dir *d)
{
	return !d->done && pending(d) > 0;
}

static struct rwatch *watch_of(struct relay *r, int fd)
{
	for (int i = 0; i < 4; i++)
		if (r->w[i].fd == fd && fd >= 0)
			return &r->w[i];
	return NULL;
}

/* Closes fd and forgets it everywhere. */
static void close_fd(struct relay *r, int fd)
{
	struct rwatch *w = watch_of(r, fd);

	if (!w)
		return;
	loop_del(&w->w);
	close(fd);
	w->fd = -1;
	for (int k = 0; k < 2; k++) {
		if (r->d[k].from == fd)
			r->d[k].from = -1;
		if (r->d[k].to == fd)
			r->d[k].to = -1;
	}
}

static void dir_release(struct dir *d)
{
	if (d->busy) {
		d->busy = false;
		nbusy--;
	}
	fd_close(&d->pipe[0]);
	fd_close(&d->pipe[1]);
	free(d->buf);
	d->buf = NULL;
	d->queued = d->boff = d->blen = 0;
}

/* The direction is over (EOF delivered, or an error): tell the
 * destination no more is coming. */
static void dir_end(struct relay *r, struct dir *d, int err)
{
	struct dir *other = d == &r->d[0] ? &r->d[1] : &r->d[0];

	d->done = true;
	dir_release(d);
	if (err && !r->err)
		r->err = err;
	if (d->to < 0)
		return;
	if (d->to == other->from) {
		/* A socket that also feeds the other direction. */
		shutdown(d->to, SHUT_WR);
	} else {
		close_fd(r, d->to);
	}
	if (d->from >= 0 && d->from != other->to)
		close_fd(r, d->from);
}

static int pipe_open(struct dir *d)
{
	int fl;

	if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	fl = fcntl(d->pipe[0], F_GETPIPE_SZ);
	d->cap = fl > 0 ? (size_t)fl : 4096;
	return 0;
}

static bool is_unix_socket(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

/* The direction filled its pipe: give it bigger buffers, if a slot is
 * free. Both may fail (an unprivileged user over the pipe quota, or
 * without CAP_NET_ADMIN): the defaults still work. */
static void dir_busy(struct dir *d)
{
	int sz;

	if (d->grown)
		return;
	d->grown = true;
	if (nbusy >= BUSY_MAX)
		return;
	d->busy = true;
	nbusy++;
	sz = fcntl(d->pipe[0], F_SETPIPE_SZ, PIPE_BIG);
	if (sz > 0 && (size_t)sz > d->cap) {
		d->cap = (size_t)sz;
		d->full = false;
	}
	if (d->to >= 0 && is_unix_socket(d->to)) {
		sz = UNIX_SNDBUF_BIG;
		if (setsockopt(d->to, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
			setsockopt(d->to, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
}

/* Switches a direction to read/write, keeping what the pipe holds. */
static int to_copy(struct dir *d)
{
	d->bsize = MAX((size_t)COPY_CHUNK, d->queued);
	d->buf = malloc(d->bsize);
	if (!d->buf)
		return -ENOMEM;
	d->boff = 0;
	d->blen = 0;
	while (d->blen < d->queued) {
		ssize_t n = read(d->pipe[0], d->buf + d->blen, d->queued - d->blen);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		d->blen += (size_t)n;
	}
	d->queued = 0;
	fd_close(&d->pipe[0]);
	fd_close(&d->pipe[1]);
	d->copy = true;
	return 0;
}

/* One step of copy mode: true when bytes moved. */
static int copy_step(struct dir *d, bool *moved)
{
	ssize_t n;

	if (d->boff == d->blen)
		d->boff = d->blen = 0;
	if (want_read(d)) {
		n = read(d->from, d->buf + d->blen, d->bsize - d->blen);
		if (n > 0) {
			d->blen += (size_t)n;
			*moved = true;
		} else if (n == 0) {
			d->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
	}
	if (d->boff < d->blen) {
		n = write(d->to, d->buf + d->boff, d->blen - d->boff);
		if (n > 0) {
			d->boff += (size_t)n;
			d->bytes += (uint64_t)n;
			*moved = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* One step of splice mode. */
static int splice_step(struct dir *d, bool *moved)
{
	ssize_t n;
	int rc;

	if (want_read(d)) {
		if (d->pipe[0] < 0 && (rc = pipe_open(d)) < 0)
			return rc;
		n = splice(d->from, NULL, d->pipe[1], NULL, d->cap - d->queued,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0) {
			d->queued += (size_t)n;
			*moved = true;
			if (d->queued == d->cap)
				dir_busy(d);
		} else if (n == 0) {
			d->eof = true;
		} else if (errno == EAGAIN) {
			/* With bytes queued this may be the pipe running
			 * out of slots rather than the source running dry:
			 * read again once the destination took some. */
			if (d->queued) {
				d->full = true;
				dir_busy(d);
			}
		} else if (errno == EINVAL) {
			if ((rc = to_copy(d)) < 0)
				return rc;
			*moved = true;
			return 0;
		} else if (errno != EINTR) {
			return -errno;
		}
	}
	if (d->queued) {
		n = splice(d->pipe[0], NULL, d->to, NULL, d->queued, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0) {
			d->queued -= (size_t)n;
			d->bytes += (uint64_t)n;
			d->full = false;
			*moved = true;
		} else if (n < 0 && errno == EINVAL) {
			if ((rc = to_copy(d)) < 0)
				return rc;
			*moved = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* Moves what can move now, a bounded share per wake-up so that other
 * connections get their turn. True when it stopped with work left. */
static bool dir_pump(struct relay *r, struct dir *d)
{
	bool moved = false;
	int rc = 0;

	for (int rounds = 0; !d->done && rounds < 64; rounds++) {
		moved = false;
		rc = d->copy ? copy_step(d, &moved) : splice_step(d, &moved);
		if (rc < 0 || !moved)
			break;
	}
	if (d->done)
		return false;
	if (rc < 0)
		dir_end(r, d, rc);
	else if (d->eof && pending(d) == 0)
		dir_end(r, d, 0);
	return !d->done && rc == 0 && moved;
}

static void relay_finish(struct relay *r)
{
	struct relay_stats st = { .a_to_b = r->d[0].bytes, .b_to_a = r->d[1].bytes, .err = r->err };

	r->finished = true;
	timer_cancel(&r->kick);
	for (int i = 0; i < 4; i++)
		if (r->w[i].fd >= 0)
			close_fd(r, r->w[i].fd);
	dir_release(&r->d[0]);
	dir_release(&r->d[1]);
	nrelays--;
	r->done(r->arg, &st);
	loop_free_later(r);
}

static void kick_fn(struct timer *t)
{
	relay_run(container_of(t, struct relay, kick));
}

/* Runs the relay again soon when an always-ready fd (a regular file,
 * which epoll refuses) has work, or when work was left over. */
static void relay_kick(struct relay *r, bool leftover)
{
	bool kick = leftover;

	for (int i = 0; i < 4 && !kick; i++) {
		struct rwatch *w = &r->w[i];

		if (w->fd < 0 || !w->always_ready)
			continue;
		for (int k = 0; k < 2; k++)
			kick |= (r->d[k].from == w->fd && want_read(&r->d[k])) ||
				(r->d[k].to == w->fd && want_write(&r->d[k]));
	}
	if (kick && !timer_armed(&r->kick))
		timer_arm(&r->kick, 0, kick_fn);
}

static void relay_run(struct relay *r)
{
	bool left;

	if (r->finished)
		return;
	left = dir_pump(r, &r->d[0]);
	left |= dir_pump(r, &r->d[1]);
	if (r->d[0].done && r->d[1].done) {
		relay_finish(r);
		return;
	}
	relay_kick(r, left);
}

static void relay_event(struct watch *w, uint32_t events)
{
	relay_run(container_of(w, struct rwatch, w)->r);
}

/* Everything the relay may want from fd, edge-triggered. */
static uint32_t watch_events(const struct relay *r, int fd)
{
	uint32_t ev = EPOLLET;

	for (int k = 0; k < 2; k++) {
		if (r->d[k].from == fd)
			ev |= EPOLLIN | EPOLLRDHUP;
		if (r->d[k].to == fd)
			ev |= EPOLLOUT;
	}
	return ev;
}

static void close_ends(const struct relay_end *a, const struct relay_end *b)
{
	int fds[4] = { a->rfd, a->wfd, b->rfd, b->wfd };

	for (int i = 0; i < 4; i++) {
		bool dup = false;

		for (int j = 0; j < i; j++)
			dup |= fds[j] == fds[i];
		if (!dup && fds[i] >= 0)
			close(fds[i]);
	}
}

int relay_start(const struct relay_end *a, const struct relay_end *b, relay_done_fn done,
		void *arg)
{
	int fds[4] = { a->rfd, a->wfd, b->rfd, b->wfd };
	struct relay *r = calloc(1, sizeof(*r));
	int n = 0, rc;

	if (!r) {
		close_ends(a, b);
		return -ENOMEM;
	}
	r->done = done;
	r->arg = arg;
	r->d[0] = (struct dir){ .from = a->rfd, .to = b->wfd, .pipe = { -1, -1 } };
	r->d[1] = (struct dir){ .from = b->rfd, .to = a->wfd, .pipe = { -1, -1 } };
	for (int i = 0; i < 4; i++)
		r->w[i].fd = -1;
	for (int i = 0; i < 4; i++) {
		if (fds[i] < 0 || watch_of(r, fds[i]))
			continue;
		fd_set_nonblock(fds[i], true);
		r->w[n].r = r;
		r->w[n].fd = fds[i];
		rc = loop_add(&r->w[n].w, fds[i], watch_events(r, fds[i]), relay_event);
		if (rc == -EPERM) {
			r->w[n].always_ready = true;
			rc = loop_add(&r->w[n].w, fds[i], 0, relay_event);
		}
		if (rc < 0) {
			for (int j = 0; j < n; j++)
				loop_del(&r->w[j].w);
			close_ends(a, b);
			free(r);
			return rc;
		}
		n++;
	}
	nrelays++;
	relay_run(r);
	return 0;
}
