/* What an operation may ask of the agent that serves its connection: the
 * sandbox configuration, /dev/null, how workloads start, and the hand-over
 * of jobs to PID 1. The server fills one in (server/ops.c) and every
 * connection carries it (c->agent), so exec/, fs/ and net/ reach none of
 * the server's globals; tests and fuzzers give their own. */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct config;
struct conn;
struct proto_err;
struct frame;

/* A job's fds that PID 1 keeps open across a restart of the server (any
 * may be -1). */
struct job_fds {
	int out, err;            /* the read ends of the command's output */
	int out_ring, err_ring;  /* a detached job's output buffers (memfds) */
};

struct agent {
	/* The sandbox configuration (read-only for operations). */
	const struct config *(*config)(void);
	/* The key clients must prove, or NULL when the sandbox has no token. */
	const uint8_t *(*auth_key)(void);
	/* Starts the operation a request frame names; -errno with e filled
	 * fails the connection (conn_fail). */
	int (*dispatch)(struct conn *c, const struct frame *f, struct proto_err *e);
	/* An O_RDWR fd on /dev/null, shared by all operations. */
	int (*devnull)(void);
	/* True in a VM (not development mode). */
	bool (*in_vm)(void);
	/* The file limit workloads get. */
	const struct rlimit *(*workload_nofile)(void);
	/* Tells PID 1 about a job so it keeps the job's fds open across a
	 * restart of the server; then its status, and that it is forgotten.
	 * job_hold returns 0 when PID 1 holds it; ns_pid is its pid in the
	 * workloads' PID namespace, which a restarted server reports. */
	int (*job_hold)(pid_t pid, pid_t ns_pid, bool keep, bool pty, uint64_t started_ns, const char *argv,
			const struct job_fds *fds);
	void (*job_status)(pid_t pid, int status);
	void (*job_done)(pid_t pid);
};

#endif
