/* Jobs: every command the agent started and has not yet forgotten. A job
 * outlives its client when it was started detached (or survived a server
 * restart): its output then waits in a bounded buffer per stream until a
 * client attaches and acknowledges it, and its exit status waits until a
 * client collects it. A job started by an ordinary EXEC dies with its
 * client, as a terminal session would. */
#ifndef SBX_JOB_H
#define SBX_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn/conn.h"

struct agent;

#define JOB_ARGV_MAX 200      /* bytes of the command line kept for ps */
#define JOBS_MAX 1024         /* jobs in the table, running or not collected */
#define JOBS_DETACHED_MAX 256 /* of which detached */

struct job;

/* What exec_start hands over after a successful spawn. */
struct job_spawned {
	pid_t pid;
	pid_t ns_pid;         /* its pid in the workloads' PID namespace: the
			       * one clients see (STARTED, ATTACH, PS); 0: pid */
	bool pty;
	bool keep;            /* survives its client (detached) */
	bool our_child;       /* false for jobs restored from PID 1 */
	bool held;            /* PID 1 holds its fds already */
	int out_fd, err_fd;   /* read ends (out_fd is the master with a PTY), or -1 */
	int in_fd;            /* write end of stdin (a dup of the master), or -1 */
	int out_sock;         /* a direct stdout (OUTPUT connection): our copy of
			       * the command's fd 1, shut at its exit; or -1 */
	int out_ring, err_ring; /* restored jobs: their output rings, or -1 */
	uint64_t started_ns;  /* CLOCK_REALTIME */
	char argv[JOB_ARGV_MAX];
	bool exited;          /* restored jobs: already ended */
	int status;
	unsigned cgroup;      /* its cgroup (exec/cgroup.h), 0: none */
};

/* Room for one more job? (detached: also under JOBS_DETACHED_MAX) */
bool job_room(bool keep);

/* Creates a job held for agent a (its configuration, PID 1's hold); with
 * c, the client is attached and gets STARTED. Takes ownership of the fds.
 * NULL when out of memory (the fds are closed). */
struct job *job_new(const struct agent *a, const struct job_spawned *s, struct conn *c);

/* ATTACH: attaches c to the job with that pid (as clients see it: in the
 * workloads' PID namespace); -ESRCH (e untouched) if none, -EBUSY (e
 * filled) if it is not a detached one. */
int job_attach(pid_t pid, struct conn *c, struct proto_err *e);

/* PS: appends one PS_ENTRY frame per job to c's output. */
void job_list(struct conn *c);

/* The exit status of a job that is not our child (it was re-parented to
 * PID 1 when a server died), as PID 1 tells it. */
void job_status_from_init(pid_t pid, int status);

/* How many jobs the table holds. */
unsigned job_count(void);

#endif
