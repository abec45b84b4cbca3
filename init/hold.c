/* PID 1's table of jobs: see hold.h. */
#include "init/hold.h"

#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static struct held {
	pid_t pid;                /* 0: a free slot */
	pid_t ns_pid;             /* in the workloads' PID namespace */
	uint32_t flags;           /* JOBF_* */
	int64_t started;
	int status;
	int fds[CTL_FDS_MAX];
	int nfds;
	char argv[CTL_TEXT_MAX];
} held[HOLD_MAX];

static struct held *find(pid_t pid)
{
	for (size_t i = 0; i < HOLD_MAX; i++)
		if (held[i].pid == pid)
			return &held[i];
	return NULL;
}

static void forget(struct held *h)
{
	for (int i = 0; i < h->nfds; i++)
		close(h->fds[i]);
	memset(h, 0, sizeof(*h));
}

void hold_add(const struct ctl_msg *m, int *fds, int nfds)
{
	struct held *h = NULL;

	if (m->arg > 0) {
		h = find((pid_t)m->arg);
		if (h)
			forget(h); /* the pid was reused: the old job is gone */
		else
			h = find(0);
	}
	if (!h) {
		static bool said;

		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (!said)
			log_warn(0, "holding %d commands already: more will not survive a server restart",
				 HOLD_MAX);
		said = true;
		return;
	}
	h->pid = (pid_t)m->arg;
	h->ns_pid = (pid_t)m->arg5;
	h->flags = m->flags & (JOBF_KEEP | JOBF_PTY | JOBF_OUT | JOBF_ERR | JOBF_OUT_RING |
				JOBF_ERR_RING);
	h->started = m->arg2;
	h->nfds = nfds;
	memcpy(h->fds, fds, sizeof(int) * (size_t)nfds);
	memcpy(h->argv, m->text, sizeof(h->argv));
}

void hold_status(pid_t pid, int status)
{
	struct held *h = pid > 0 ? find(pid) : NULL;

	if (h) {
		h->flags |= JOBF_EXITED;
		h->status = status;
	}
}

void hold_done(pid_t pid)
{
	struct held *h = pid > 0 ? find(pid) : NULL;

	if (h)
		forget(h);
}

bool hold_next(long after, struct ctl_msg *m, int *fds, int *nfds)
{
	for (long i = after + 1; i >= 0 && i < HOLD_MAX; i++) {
		struct held *h = &held[i];

		if (!h->pid)
			continue;
		memset(m, 0, sizeof(*m));
		m->type = CTL_JOB_RESTORE;
		m->flags = h->flags;
		m->arg = h->pid;
		m->arg2 = h->started;
		m->arg3 = i;
		m->arg4 = h->status;
		m->arg5 = h->ns_pid;
		memcpy(m->text, h->argv, sizeof(m->text));
		memcpy(fds, h->fds, sizeof(int) * (size_t)h->nfds);
		*nfds = h->nfds;
		return true;
	}
	return false;
}

bool hold_reaped(pid_t pid, int status)
{
	struct held *h = find(pid);

	if (!h)
		return false;
	h->flags |= JOBF_EXITED;
	h->status = status;
	return true;
}
