/* Starting a workload process: a new session and process group, stdio on
 * the given fds, optional controlling terminal, user and groups, working
 * directory, then execve with a PATH search. clone(CLONE_VM|CLONE_VFORK)
 * keeps it as cheap as posix_spawn while letting us do the setup
 * posix_spawn cannot (TIOCSCTTY, setuid). */
#ifndef SBX_SPAWN_H
#define SBX_SPAWN_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

struct sock_fprog;
struct config_rlimit;

#define SPAWN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct spawn_req {
	char *const *argv;
	char *const *envp;
	const char *path;      /* PATH for the lookup; NULL: SPAWN_DEFAULT_PATH */
	const char *cwd;       /* NULL: inherit */
	bool cwd_optional;     /* if cwd cannot be entered, use "/" */
	bool set_ids;          /* switch to uid/gid/groups */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int ngroups;
	int fd[3];             /* become the child's 0, 1, 2 */
	int ctty;              /* >= 0: make this tty the controlling terminal */
	int cgroup;            /* >= 0: a directory fd of the cgroup to start in */
	bool confine;          /* namespaces of its own: restrict_confine() */
	bool reset_oom;        /* the agent is OOM-proof; the workload must not be */
	const struct rlimit *nofile; /* RLIMIT_NOFILE for the workload, or NULL */
	const struct config_rlimit *rlimits; /* then these (the config's rlimit.*) */
	size_t nrlimits;
	bool restricted;       /* drop capabilities, install the seccomp filter */
	const struct sock_fprog *filter;
};

enum spawn_stage { SPAWN_OK = 0, SPAWN_SETUP, SPAWN_CWD, SPAWN_IDS, SPAWN_EXEC };

struct spawn_err {
	enum spawn_stage stage;
	int err;               /* errno */
	pid_t own_pid;         /* the child's pid as it sees it (getpid(): in
				* the workloads' PID namespace); also set when
				* the start succeeds, 0 if it never ran */
};

/* From now on every child is born in the PID namespace `ns` (an fd of
 * /proc/PID/ns/pid; init/workns.h) and the spawner stays in its own: 0 or
 * -errno. */
int spawn_set_pidns(int ns);
/* A pid a workload writes (a pid file) is its pid in the workloads'
 * namespace: our pid of the process that has it there, or -ESRCH; the
 * same pid without that namespace. */
pid_t spawn_pid_from_workload(pid_t inner);
/* The pid our child `pid` has in its own namespace, or -errno. */
pid_t spawn_pid_in_workload(pid_t pid);

/* Returns 0 and the pid (ours; e->own_pid is the child's own), or -errno
 * with e saying which step failed. A child that failed has exited
 * already; the reaper collects it. */
int spawn_process(const struct spawn_req *r, pid_t *pid, struct spawn_err *e);

#endif
