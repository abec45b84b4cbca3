/* What the agent target (fuzz_agent.c) puts in place of the parts of the
 * server that start processes, touch files or ports, or talk to PID 1:
 * the server's globals, the job table, spawning, and the file and network
 * operations (which still decode their requests with the real codec, then
 * answer without acting). Everything that parses what a client sent is
 * the real code: conn/conn.c, server/ops.c, control.c, exec/exec.c,
 * lib/user.c. */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exec/job.h"
#include "exec/spawn.h"
#include "fs/fs.h"
#include "lib/config.h"
#include "lib/reap.h"
#include "net/net.h"
#include "server/server.h"
#include "tests/fuzz/fuzz.h"
#include "vsock/proto_fs.h"
#include "vsock/proto_net.h"

struct config fuzz_cfg;
bool fuzz_auth; /* the sandbox has a token: clients must prove it */
static int devnull = -1;
static const uint8_t auth_key[32] = "sbx fuzzing key, not a secret!!";

const uint8_t *server_auth_key(void) { return fuzz_auth ? auth_key : NULL; }

const struct rlimit *server_workload_nofile(void)
{
	static const struct rlimit rl = { 1024, 4096 };

	return &rl;
}

/* Workloads get no cgroup and no seccomp filter here (exec/cgroup.h,
 * exec/restrict.h): nothing is started. */
int cgroup_new(unsigned *id)
{
	*id = 0;
	return -ENOSYS;
}
void cgroup_done(unsigned id) { FUZZ_CHECK(id == 0); }
const void *restrict_filter(void) { return NULL; }

const struct config *server_config(void) { return &fuzz_cfg; }
struct config *server_config_mut(void) { return &fuzz_cfg; }
const char *server_state_dir(void) { return ""; }
bool server_under_pid1(void) { return false; }
/* No writable disk: FREEZE is refused before it would fork a watcher. */
int server_upper_fd(void) { return -1; }
void reap_watch(struct child *c, pid_t pid, child_fn fn) { FUZZ_CHECK(false); }
void server_set_token(const char *token) { FUZZ_CHECK(false); } /* IDENTITY: only a template's clone */
bool server_in_vm(void) { return false; }

int server_devnull(void)
{
	if (devnull < 0)
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	return devnull;
}

/* No PID 1: lifetime requests are answered "cannot reach the init
 * process", as when PID 1 is gone. */
int server_ctl(const struct ctl_msg *m, const int *fds, int nfds) { return -ENOTCONN; }
int server_request_shutdown(const char *reason)
{
	FUZZ_CHECK(strlen(reason) <= PROTO_REASON_MAX || strcmp(reason, "requested by the host") == 0);
	return 0;
}

/* No job is ever made (job_new below), so PID 1 is never asked to hold
 * one; server_agent (server/ops.c) names these all the same. */
int server_job_hold(pid_t pid, pid_t ns_pid, bool keep, bool pty, uint64_t started_ns,
		    const char *argv, const struct job_fds *fds)
{
	return -ENOTCONN;
}
void server_job_status(pid_t pid, int status) { }
void server_job_done(pid_t pid) { }

unsigned job_count(void) { return 0; }
bool job_room(bool keep) { return true; }
int job_attach(pid_t pid, struct conn *c, struct proto_err *e) { return -ESRCH; }
void job_list(struct conn *c) { }

struct job *job_new(const struct agent *a, const struct job_spawned *s, struct conn *c)
{
	int fds[] = { s->out_fd, s->err_fd, s->in_fd, s->out_ring, s->err_ring };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return NULL;
}

/* Never starts anything; fails at a stage chosen by the program name, so
 * every way of reporting a failed start is reached. */
int spawn_process(const struct spawn_req *r, pid_t *pid, struct spawn_err *e)
{
	static const struct spawn_err outcomes[] = {
		{ SPAWN_EXEC, ENOENT, 0 }, { SPAWN_EXEC, EACCES, 0 }, { SPAWN_EXEC, ENOEXEC, 0 },
		{ SPAWN_EXEC, E2BIG, 0 },  { SPAWN_CWD, ENOENT, 0 },  { SPAWN_IDS, EPERM, 0 },
		{ SPAWN_SETUP, EMFILE, 0 },
	};
	unsigned char c0 = (unsigned char)r->argv[0][0];

	FUZZ_CHECK(r->argv[0] && r->envp && r->cwd);
	for (char *const *p = r->envp; *p; p++)
		FUZZ_CHECK(strchr(*p, '=') != NULL);
	*e = outcomes[c0 % (sizeof(outcomes) / sizeof(outcomes[0]))];
	return -e->err;
}

int fs_dispatch(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct fs_req r;
	int rc;

	if ((rc = proto_fs_req_decode(f, &r, e)) < 0)
		return rc;
	proto_fs_req_free(&r);
	return proto_fail(e, ENOSYS, "file operations are not run by the fuzzer");
}

int net_dispatch(struct conn *c, const struct frame *f, struct proto_err *e)
{
	static struct ssh_key_req kr;
	uint16_t port;
	int r;

	switch (f->type) {
	case FT_FORWARD:
		r = proto_forward_decode(f, &port, e);
		break;
	case FT_SSH_START:
		r = proto_ssh_start_decode(f, e);
		break;
	case FT_SSH_KEY_ADD:
	case FT_SSH_KEY_REMOVE:
	case FT_SSH_KEY_LIST:
		r = proto_ssh_key_decode(f, &kr, e);
		break;
	default:
		return proto_fail(e, EOPNOTSUPP, "unknown operation: frame type 0x%04x", f->type);
	}
	if (r < 0)
		return r;
	return proto_fail(e, ENOSYS, "network operations are not run by the fuzzer");
}
