/* One epoll event loop per process, with one-shot timers. Handlers are
 * short; anything that owns an fd embeds a struct watch and recovers itself
 * with container_of. */
#ifndef SBX_LOOP_H
#define SBX_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct watch;
typedef void (*watch_fn)(struct watch *w, uint32_t events);

struct watch {
	int fd;
	uint32_t events; /* wanted EPOLL* mask; 0 = quiet (not in epoll) */
	watch_fn fn;
	bool added;      /* known to the loop */
	bool in_epoll;
};

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer {
	uint64_t when; /* CLOCK_MONOTONIC ns; 0 when not armed */
	timer_fn fn;
	struct timer *next;
};

int loop_init(void);
/* Registers w->fd for events (0 is allowed: registered but quiet). */
int loop_add(struct watch *w, int fd, uint32_t events, watch_fn fn);
/* Changes the mask; a no-op when it is unchanged. A quiet watch is taken
 * out of epoll entirely, because epoll reports EPOLLHUP even for an empty
 * mask and a paused pipe would otherwise wake the loop forever. */
int loop_set(struct watch *w, uint32_t events);
/* Unregisters (the fd is not closed). */
void loop_del(struct watch *w);

void timer_arm(struct timer *t, uint64_t delay_ns, timer_fn fn);
void timer_cancel(struct timer *t);
static inline bool timer_armed(const struct timer *t) { return t->when != 0; }

/* Frees p (with free(3)) after the current batch of events, so that a
 * handler may destroy an object whose watch is still in the batch: call
 * loop_del on its watches first. */
void loop_free_later(void *p);

/* Waits for events (at most max_ms, -1 for no limit besides timers) and
 * runs their handlers and due timers. Returns how many events and timers
 * it handled (0: the time ran out, or a signal came), or -errno. */
int loop_run_once(int max_ms);

#endif
