/* The epoll loop and timer list: see loop.h. Timers are kept in a list
 * sorted by deadline; a process has at most a few thousand of them. */
#include "lib/loop.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/util.h"

static int epfd = -1;
static struct timer *timers;
static void **graveyard;
static size_t graveyard_len, graveyard_cap;

int loop_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return epfd < 0 ? -errno : 0;
}

static int epoll_apply(struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	int op;

	if (events == 0) {
		if (w->in_epoll && epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL) < 0)
			return -errno;
		w->in_epoll = false;
		return 0;
	}
	op = w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(epfd, op, w->fd, &ev) < 0)
		return -errno;
	w->in_epoll = true;
	return 0;
}

int loop_add(struct watch *w, int fd, uint32_t events, watch_fn fn)
{
	int r;

	w->fd = fd;
	w->fn = fn;
	w->in_epoll = false;
	r = epoll_apply(w, events);
	if (r < 0)
		return r;
	w->events = events;
	w->added = true;
	return 0;
}

int loop_set(struct watch *w, uint32_t events)
{
	int r;

	if (!w->added || w->events == events)
		return 0;
	r = epoll_apply(w, events);
	if (r < 0)
		return r;
	w->events = events;
	return 0;
}

void loop_del(struct watch *w)
{
	if (w->added)
		epoll_apply(w, 0);
	w->added = false;
	w->events = 0;
}

void timer_cancel(struct timer *t)
{
	struct timer **pp;

	if (!t->when)
		return;
	for (pp = &timers; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	t->when = 0;
	t->next = NULL;
}

void timer_arm(struct timer *t, uint64_t delay_ns, timer_fn fn)
{
	struct timer **pp;

	timer_cancel(t);
	t->when = time_mono_ns() + delay_ns;
	t->fn = fn;
	for (pp = &timers; *pp && (*pp)->when <= t->when; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
}

void loop_free_later(void *p)
{
	if (graveyard_len == graveyard_cap) {
		size_t cap = graveyard_cap ? graveyard_cap * 2 : 64;
		void **grown = realloc(graveyard, cap * sizeof(*graveyard));

		if (!grown) {
			/* Cannot defer: leak rather than risk a use after free. */
			return;
		}
		graveyard = grown;
		graveyard_cap = cap;
	}
	graveyard[graveyard_len++] = p;
}

static void bury(void)
{
	for (size_t i = 0; i < graveyard_len; i++)
		free(graveyard[i]);
	graveyard_len = 0;
}

static int run_timers(void)
{
	uint64_t now = time_mono_ns();
	int ran = 0;

	while (timers && timers->when <= now) {
		struct timer *t = timers;

		timers = t->next;
		t->next = NULL;
		t->when = 0;
		t->fn(t);
		ran++;
	}
	return ran;
}

int loop_run_once(int max_ms)
{
	struct epoll_event evs[64];
	int timeout = max_ms, n;

	if (timers) {
		uint64_t now = time_mono_ns();
		int64_t ms = timers->when > now ? (int64_t)((timers->when - now + NSEC_PER_MSEC - 1) /
							     NSEC_PER_MSEC) : 0;

		if (timeout < 0 || ms < timeout)
			timeout = (int)MIN(ms, (int64_t)1 << 30);
	}
	n = epoll_wait(epfd, evs, (int)ARRAY_SIZE(evs), timeout);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct watch *w = evs[i].data.ptr;

		/* A handler earlier in this batch may have quieted or
		 * unregistered w; its event is stale then. */
		if (w->added && w->in_epoll)
			w->fn(w, evs[i].events & (w->events | EPOLLHUP | EPOLLERR | EPOLLRDHUP));
	}
	n += run_timers();
	bury();
	return n;
}
