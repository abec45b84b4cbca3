/* The EXEC, ATTACH and PS operations: EXEC validates the request, works
 * out the user, environment and directory, creates the pipes or terminal,
 * spawns the command and hands it to the job table (exec/job.c), which
 * relays its stdio from then on. */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "conn/agent.h"
#include "conn/conn.h"
#include "exec/cgroup.h"
#include "exec/job.h"
#include "exec/output.h"
#include "exec/restrict.h"
#include "exec/spawn.h"
#include "fs/fs.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/user.h"
#include "lib/util.h"

/* ---- starting ---- */

static void not_started(struct conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void not_started(struct conn *c, int code, const char *fmt, ...)
{
	struct exit_status x = { .how = EXIT_NOT_STARTED, .value = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x.msg, sizeof(x.msg), fmt, ap);
	va_end(ap);
	proto_exit_put(conn_txbuf(c), &x);
	conn_finish(c);
}

/* The command's environment: see "Environment" in docs/PROTOCOL.md. */
static int build_env(const struct config *cfg, const struct exec_req *req, const struct user *u,
		     char ***envp, size_t *envc)
{
	static const char *const names[] = { "HOME", "USER", "LOGNAME", "SHELL", "PATH" };
	const char *values[] = { u->home, u->name, u->name, u->shell, SPAWN_DEFAULT_PATH };
	int r = 0;

	*envp = NULL;
	*envc = 0;
	if (!(req->flags & EXEC_F_CLEAR_ENV)) {
		for (size_t i = 0; r == 0 && i < cfg->envc; i++) {
			char name[256];
			const char *eq = strchr(cfg->env[i], '=');
			size_t len = (size_t)(eq - cfg->env[i]);

			if (len >= sizeof(name))
				continue;
			memcpy(name, cfg->env[i], len);
			name[len] = '\0';
			r = config_env_set(envp, envc, name, eq + 1);
		}
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(names); i++)
			if (!config_env_get(*envp, names[i]))
				r = config_env_set(envp, envc, names[i], values[i]);
	}
	for (size_t i = 0; r == 0 && i < req->envc; i++) {
		char *eq = strchr(req->env[i], '=');

		*eq = '\0'; /* the request owns this copy */
		r = config_env_set(envp, envc, req->env[i], eq + 1);
		*eq = '=';
	}
	if (r == 0 && !*envp) {
		*envp = calloc(1, sizeof(char *));
		if (!*envp)
			r = -ENOMEM;
	}
	return r;
}

static void free_env(char **env, size_t envc)
{
	for (size_t i = 0; i < envc; i++)
		free(env[i]);
	free(env);
}

/* Where the command starts: see "User and directory" in PROTOCOL.md.
 * The same base as the file operations' relative paths (fs/path.c). */
static int resolve_cwd(const struct config *cfg, const struct exec_req *req, const struct user *u,
		       const struct user *def, char *out, size_t n, bool *optional)
{
	*optional = false;
	if (req->cwd)
		return fs_path_resolve(cfg, req->cwd, out, n);
	if (u->uid == def->uid) {
		*optional = !cfg->workdir[0];
		return fs_sandbox_dir(cfg, out, n);
	}
	*optional = true;
	return str_copy(out, n, u->home);
}

static int open_pty(const struct exec_req *req, const struct user *u, int *master, int *slave)
{
	struct winsize ws = { .ws_row = req->rows, .ws_col = req->cols };
	int m, s, r;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (unlockpt(m) < 0)
		goto fail;
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		char name[64];

		if (ptsname_r(m, name, sizeof(name)) != 0)
			goto fail;
		s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s < 0)
			goto fail;
	}
	/* The size is in place before the command first looks at it. */
	ioctl(m, TIOCSWINSZ, &ws);
	if (fchown(s, u->uid, (gid_t)-1) == 0)
		fchmod(s, 0620);
	*master = m;
	*slave = s;
	return 0;
fail:
	r = -errno;
	close(m);
	return r;
}

/* A name for a message: long ones are cut so that the reason after them
 * still fits in the 4 KiB a message has. */
static const char *shown(const char *name, char *buf, size_t n)
{
	if (strlen(name) < 256)
		return name;
	snprintf(buf, n, "%.200s... (%zu bytes)", name, strlen(name));
	return buf;
}

static void spawn_failed(struct conn *c, const struct exec_req *req, const char *cwd0,
			 const struct user *u, const struct spawn_err *e)
{
	char pbuf[256], cbuf[256];
	const char *prog = shown(req->argv[0], pbuf, sizeof(pbuf)), *cwd = shown(cwd0, cbuf, sizeof(cbuf));

	switch (e->stage) {
	case SPAWN_EXEC:
		if (e->err == ENOENT && strchr(req->argv[0], '/'))
			not_started(c, 127, "no such file or directory: %s", prog);
		else if (e->err == ENOENT)
			not_started(c, 127, "command not found: %s", prog);
		else if (e->err == EACCES)
			not_started(c, 126, "permission denied: %s", prog);
		else if (e->err == ENOEXEC)
			not_started(c, 126, "exec format error: %s", prog);
		else
			not_started(c, 126, "cannot execute %s: %s", prog, strerror(e->err));
		break;
	case SPAWN_CWD:
		not_started(c, 126, "cannot change directory to %s: %s", cwd, strerror(e->err));
		break;
	case SPAWN_IDS:
		not_started(c, 126, "cannot switch to user %s: %s", u->name, strerror(e->err));
		break;
	default:
		if (e->err == EAGAIN)
			not_started(c, 126, "cannot start %s: %s (the sandbox is at its process "
				    "limit, pids_max)", prog, strerror(e->err));
		else
			not_started(c, 126, "cannot start %s: %s", prog, strerror(e->err));
		break;
	}
}

static void argv_summary(char *out, size_t n, char *const *argv)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; argv[i] && len + 1 < n; i++) {
		int w = snprintf(out + len, n - len, "%s%s", i ? " " : "", argv[i]);

		if (w < 0)
			break;
		len += (size_t)w;
	}
}

int exec_start(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct exec_req req;
	struct user u, def;
	struct spawn_req sr = { .ctty = -1, .cgroup = -1 };
	struct spawn_err se;
	struct job_spawned js = { .our_child = true, .out_ring = -1, .err_ring = -1, .out_sock = -1 };
	struct timespec now;
	char cwd[PATH_MAX], **envp = NULL;
	size_t envc = 0;
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	const struct agent *a = c->agent;
	const struct config *cfg = a->config();
	int master = -1, slave = -1, devnull = a->devnull(), cg = -1, out_sock = -1, r, failed = 0;
	const char *who;

	if ((r = proto_exec_decode(f, &req, e)) < 0)
		return r;
	js.keep = req.flags & EXEC_F_DETACH;
	if (!job_room(js.keep)) {
		failed = proto_fail(e, EAGAIN, "too many commands: at most %d, of which %d detached "
				    "(collect finished ones with attach)", JOBS_MAX, JOBS_DETACHED_MAX);
		goto out;
	}
	/* Claimed first: from here every ending (EXIT how=2 included)
	 * closes it, so its client sees the end of the stream. */
	if (req.out_conn && (out_sock = exec_output_claim(req.out_id, e)) < 0) {
		failed = out_sock;
		goto out;
	}
	who = req.user ? req.user : cfg->user;
	if ((r = user_lookup(who, &u)) < 0) {
		if (r == -ENOENT)
			not_started(c, 126, "no such user: %s", who);
		else
			not_started(c, 126, "cannot look up user %s: %s", who, strerror(-r));
		goto out;
	}
	/* Most commands run as the default user: one lookup then (each
	 * reads /etc/passwd and /etc/group). */
	if (!strcmp(who, cfg->user) || user_lookup(cfg->user, &def) < 0)
		def = u;
	if (resolve_cwd(cfg, &req, &u, &def, cwd, sizeof(cwd), &sr.cwd_optional) < 0) {
		not_started(c, 126, "working directory name too long");
		goto out;
	}
	if ((r = build_env(cfg, &req, &u, &envp, &envc)) < 0) {
		not_started(c, 126, "cannot build the environment: %s", strerror(-r));
		goto out;
	}
	if (req.pty) {
		if ((r = open_pty(&req, &u, &master, &slave)) < 0) {
			not_started(c, 126, "cannot open a terminal: %s", strerror(-r));
			goto out;
		}
		sr.fd[0] = sr.fd[1] = sr.fd[2] = slave;
		sr.ctty = slave;
	} else {
		if (((req.flags & EXEC_F_STDIN) && pipe2(in_p, O_CLOEXEC) < 0) ||
		    (!(req.flags & EXEC_F_NO_STDOUT) && out_sock < 0 && pipe2(out_p, O_CLOEXEC) < 0) ||
		    (!(req.flags & EXEC_F_NO_STDERR) && pipe2(err_p, O_CLOEXEC) < 0)) {
			not_started(c, 126, "cannot create pipes: %s", strerror(errno));
			goto out;
		}
		sr.fd[0] = in_p[0] >= 0 ? in_p[0] : devnull;
		sr.fd[1] = out_sock >= 0 ? out_sock : out_p[1] >= 0 ? out_p[1] : devnull;
		sr.fd[2] = err_p[1] >= 0 ? err_p[1] : devnull;
	}
	sr.argv = req.argv;
	sr.envp = envp;
	sr.path = config_env_get(envp, "PATH");
	sr.cwd = cwd;
	sr.uid = u.uid;
	sr.gid = u.gid;
	sr.groups = u.groups;
	sr.ngroups = u.ngroups;
	sr.set_ids = !(u.uid == geteuid() && u.gid == getegid());
	cg = cgroup_new(&js.cgroup);
	if (cg < 0)
		js.cgroup = 0;
	sr.cgroup = cg;
	sr.confine = cg >= 0;
	sr.reset_oom = a->in_vm();
	sr.nofile = a->workload_nofile();
	sr.rlimits = cfg->rlimits;
	sr.nrlimits = cfg->nrlimits;
	sr.restricted = cfg->seccomp;
	sr.filter = restrict_filter();

	if (spawn_process(&sr, &js.pid, &se) < 0) {
		if (js.cgroup)
			cgroup_done(js.cgroup);
		spawn_failed(c, &req, cwd, &u, &se);
		goto out;
	}
	/* Clients are told the pid the workload has in its own namespace. */
	js.ns_pid = se.own_pid;
	clock_gettime(CLOCK_REALTIME, &now);
	js.started_ns = (uint64_t)now.tv_sec * NSEC_PER_SEC + (uint64_t)now.tv_nsec;
	argv_summary(js.argv, sizeof(js.argv), req.argv);
	/* Keep our ends (the job owns them now); the child's ends close
	 * below. */
	js.pty = req.pty;
	if (req.pty) {
		js.out_fd = master;
		js.err_fd = -1;
		js.in_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
		master = -1;
	} else {
		js.in_fd = in_p[1];
		js.out_fd = out_p[0];
		js.err_fd = err_p[0];
		js.out_sock = out_sock;
		in_p[1] = out_p[0] = err_p[0] = out_sock = -1;
	}
	if (!job_new(a, &js, c))
		failed = proto_fail(e, ENOMEM, "out of memory after starting pid %d", js.pid);
out:
	for (int i = 0; i < 2; i++) {
		fd_close(&in_p[i]);
		fd_close(&out_p[i]);
		fd_close(&err_p[i]);
	}
	fd_close(&master);
	fd_close(&slave);
	fd_close(&cg);
	fd_close(&out_sock);
	free_env(envp, envc);
	proto_exec_free(&req);
	return failed;
}

int exec_attach(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct proto_err fe; /* a malformed field, quoted in e */
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len, pid = 0;
	int r;

	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, &fe)) > 0) {
		if (tag != ATTACH_PID || len != 4 || pid)
			return proto_fail(e, EINVAL, "ATTACH: expected one field PID of 4 bytes");
		pid = get_le32(v);
	}
	if (r < 0 || pid == 0)
		return proto_fail(e, EINVAL, "ATTACH: %s", r < 0 ? fe.msg : "field PID is missing");
	r = job_attach((pid_t)pid, c, e);
	if (r == -ESRCH)
		return proto_fail(e, ESRCH, "no command with pid %u", pid);
	return r;
}


int exec_ps(struct conn *c, const struct frame *f, struct proto_err *e)
{
	if (f->len != 0)
		return proto_fail(e, EBADMSG, "PS payload is %u bytes, expected 0", f->len);
	job_list(c);
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
	return 0;
}
