/* The reaper: the only place in sbx that calls waitpid. Whoever starts a
 * process registers a struct child (embedded in its own state, so nothing
 * is allocated) and is told the status; unregistered processes (orphans
 * that were reparented to us) are reaped silently. */
#ifndef SBX_REAP_H
#define SBX_REAP_H

#include <stdbool.h>
#include <sys/types.h>

struct child;
typedef void (*child_fn)(struct child *c, int status);

struct child {
	pid_t pid;
	child_fn fn;
	struct child *next;
};

void reap_watch(struct child *c, pid_t pid, child_fn fn);
/* Called with the status of every child nobody registered (PID 1 keeps
 * the statuses of jobs whose server died); NULL: reap them silently. */
void reap_set_orphan(void (*fn)(pid_t pid, int status));
void reap_unwatch(struct child *c);
/* Reaps every child that has exited, without blocking; returns how many. */
int reap_all(void);
/* True when no child is left at all (waitpid says ECHILD). */
bool reap_none_left(void);

#endif
