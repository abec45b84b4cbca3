/* A two-way byte relay between two endpoints in the process's event loop
 * (lib/loop.h): the agent's FORWARD connections, and on the host each
 * exposed connection and `sbx expose --stdio`. Bytes move with splice(2)
 * through one pipe per direction, so memory per relay is bounded by two
 * pipes, and each direction ends on its own (half-close). */
#ifndef SBX_RELAY_H
#define SBX_RELAY_H

#include <stdint.h>

/* One side: a socket (rfd == wfd) or a pair of one-way fds (stdin and
 * stdout). The relay makes them non-blocking and owns them from
 * relay_start on, closing them when it ends (or fails to start). */
struct relay_end {
	int rfd, wfd;
};

struct relay_stats {
	uint64_t a_to_b, b_to_a; /* bytes delivered */
	int err;                 /* 0, or the first -errno that ended a direction */
};

/* Called once, when both directions have ended; the fds are closed by
 * then. */
typedef void (*relay_done_fn)(void *arg, const struct relay_stats *st);

/* Starts relaying; returns 0 or -errno (the fds are closed either way). */
int relay_start(const struct relay_end *a, const struct relay_end *b, relay_done_fn done,
		void *arg);

/* Relays running now. */
unsigned relay_count(void);

#endif
