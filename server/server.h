/* The agent's server process: what operations need from it. */
#ifndef SBX_SERVER_H
#define SBX_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "conn/agent.h"
#include "lib/config.h"

/* `sbx-init --server`: serve the listening socket on fd SERVER_LISTEN_FD
 * (lib/ctl.h) until SIGTERM. */
int server_main(int argc, char **argv);
/* Serves an accepted, non-blocking socket as this agent (server/ops.c). */
int conn_start(int fd, bool vsock);
/* What the server gives every connection and its operation. */
extern const struct agent server_agent;

/* The sandbox configuration (read-only for operations; the environment
 * store of server/control.c changes its env). */
const struct config *server_config(void);
struct config *server_config_mut(void);
/* Where the agent keeps its state: /run/sbx in a VM. */
const char *server_state_dir(void);

/* Sends a message to PID 1 over the control channel (lib/ctl.h). */
struct ctl_msg;
int server_ctl(const struct ctl_msg *m, const int *fds, int nfds);
/* The key clients must prove (docs/PROTOCOL.md, "Authentication"), or
 * NULL when the sandbox has no token. */
const uint8_t *server_auth_key(void);
/* A template's clone proves another token from now on. */
void server_set_token(const char *token);

/* The file limit workloads get (the agent's own is raised). */
const struct rlimit *server_workload_nofile(void);

/* Asks PID 1 to power the sandbox off (reason: a short text). */
int server_request_shutdown(const char *reason);
/* Tells PID 1 about a job so it keeps the job's fds (any may be -1) open
 * across a restart of this process; then its status, and that it is
 * forgotten. 0 when PID 1 holds it. ns_pid: its pid in the workloads' PID
 * namespace (what clients are told), kept with it. */
int server_job_hold(pid_t pid, pid_t ns_pid, bool keep, bool pty, uint64_t started_ns, const char *argv,
		    const struct job_fds *fds);
void server_job_status(pid_t pid, int status);
void server_job_done(pid_t pid);

/* An O_RDWR fd on /dev/null, shared by all operations. */
int server_devnull(void);
/* True when the agent is the init of a VM or of a PID namespace. */
bool server_under_pid1(void);
/* A directory of the sandbox's writable disk (PID 1 passes it with
 * --upper-fd), or -1: what FREEZE freezes. */
int server_upper_fd(void);
/* True in a VM (not development mode): the agent may set the clock. */
bool server_in_vm(void);

#endif
