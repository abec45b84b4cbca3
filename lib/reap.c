/* The reaper: see reap.h. Registered children live in a small static hash
 * table of intrusive lists, so PID 1 can use it without allocating. */
#include "lib/reap.h"

#include <errno.h>
#include <stddef.h>
#include <sys/wait.h>

#define REAP_BUCKETS 256

static struct child *buckets[REAP_BUCKETS];
static void (*orphan_fn)(pid_t pid, int status);

void reap_set_orphan(void (*fn)(pid_t pid, int status))
{
	orphan_fn = fn;
}

static struct child **bucket(pid_t pid)
{
	return &buckets[(unsigned)pid % REAP_BUCKETS];
}

void reap_watch(struct child *c, pid_t pid, child_fn fn)
{
	struct child **b = bucket(pid);

	c->pid = pid;
	c->fn = fn;
	c->next = *b;
	*b = c;
}

void reap_unwatch(struct child *c)
{
	struct child **pp;

	if (c->pid <= 0)
		return;
	for (pp = bucket(c->pid); *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->pid = 0;
	c->next = NULL;
}

int reap_all(void)
{
	int n = 0, status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child **pp, *c = NULL;

		n++;
		for (pp = bucket(pid); *pp; pp = &(*pp)->next) {
			if ((*pp)->pid != pid)
				continue;
			c = *pp;
			*pp = c->next;
			c->pid = 0;
			c->next = NULL;
			c->fn(c, status);
			break;
		}
		if (!c && orphan_fn)
			orphan_fn(pid, status);
	}
	return n;
}

bool reap_none_left(void)
{
	siginfo_t si;

	/* WNOWAIT: only ask; the reaper proper does the reaping. */
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}
