/* SSH_START: the guest's SSH server (Debian's dropbear), started on demand
 * on 127.0.0.1:22 and kept running. Its Ed25519 host key is made here on
 * first use with libsodium, in dropbear's own key format, and the reply
 * carries the public key and its fingerprint, so the client can pin it
 * without ever trusting the network path. Readiness is dropbear's pid
 * file, which it writes after it listens (watched with inotify); a server
 * that dies is restarted, at most once a second. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "conn/agent.h"
#include "exec/cgroup.h"
#include "exec/restrict.h"
#include "exec/spawn.h"
#include "lib/atomic.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "lib/util.h"
#include "net/net.h"
#include "vsock/proto_net.h"

#define SSHD_BIN "/usr/sbin/dropbear"
#define SSHD_DIR "/run/sbx-ssh"
#define SSHD_KEY_NAME "ssh_host_ed25519_key"
#define SSHD_PID_NAME "dropbear.pid"
#define SSHD_LISTEN "127.0.0.1:22"
#define SSHD_PORT 22
/* dropbear's per-channel receive window; its default (24 KiB) makes
 * scp crawl. */
#define SSHD_WINDOW "1048576"
#define START_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define RESTART_GAP_NS (1 * NSEC_PER_SEC)

/* dropbear's private key file (signkey.c): string "ssh-ed25519", then a
 * string holding the 32-byte seed and the 32-byte public key, which is
 * exactly libsodium's secret key layout. */
#define KEY_FILE_LEN (4 + 11 + 4 + crypto_sign_SECRETKEYBYTES)

enum sshd_state { SSHD_OFF, SSHD_STARTING, SSHD_RUNNING, SSHD_RESTART_WAIT };

struct waiter {
	struct conn *conn;
	struct waiter *prev, *next;
};

static struct {
	enum sshd_state state;
	struct child child;
	pid_t pid;
	unsigned cgroup;        /* its workload cgroup, 0: none */
	uint64_t started_ns;
	struct watch inotify;
	bool inotify_on;
	struct timer timer;     /* start timeout, or the restart gap */
	bool have_key;
	struct ssh_server_info info;
	struct waiter *waiters;
	const struct agent *agent; /* whose workload it is: the last SSH_START's */
	char **env;             /* the sandbox environment it was started with */
	size_t envc;
	bool env_restart;       /* stopped to take a new environment */
} sshd;

static int waiter_frame(struct conn *c, const struct frame *f, struct proto_err *e);
static void waiter_hangup(struct conn *c);
static void waiter_destroy(struct conn *c);

static const struct conn_ops waiter_ops = {
	.name = "ssh-start",
	.frame = waiter_frame,
	.hangup = waiter_hangup,
	.destroy = waiter_destroy,
};

/* ---- the host key ---- */

static int key_read(uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	static const uint8_t head[] = { 0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5',
					'1', '9', 0, 0, 0, crypto_sign_SECRETKEYBYTES };
	uint8_t file[KEY_FILE_LEN + 1], pk[crypto_sign_PUBLICKEYBYTES], check[crypto_sign_SECRETKEYBYTES];
	ssize_t n;
	int fd = open(SSHD_DIR "/" SSHD_KEY_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	n = read(fd, file, sizeof(file));
	close(fd);
	if (n != KEY_FILE_LEN || memcmp(file, head, sizeof(head)) != 0)
		r = -EBADMSG;
	/* The public half must be the one the seed gives. */
	else if (crypto_sign_seed_keypair(pk, check, file + sizeof(head)) != 0 ||
		 memcmp(pk, file + sizeof(head) + crypto_sign_SEEDBYTES, sizeof(pk)) != 0)
		r = -EBADMSG;
	else
		memcpy(sk, file + sizeof(head), crypto_sign_SECRETKEYBYTES);
	sodium_memzero(file, sizeof(file));
	sodium_memzero(check, sizeof(check));
	return r;
}

static int key_write(const uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	static const uint8_t head[] = { 0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5',
					'1', '9', 0, 0, 0, crypto_sign_SECRETKEYBYTES };
	uint8_t file[KEY_FILE_LEN];
	int dfd, r;

	dfd = open(SSHD_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	memcpy(file, head, sizeof(head));
	memcpy(file + sizeof(head), sk, crypto_sign_SECRETKEYBYTES);
	r = atomic_write(dfd, SSHD_KEY_NAME, file, sizeof(file), 0600);
	sodium_memzero(file, sizeof(file));
	close(dfd);
	return r;
}

/* Loads the host key, or makes one; fills sshd.info. */
static int host_key_ready(char *why, size_t n)
{
	uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t blob[SSH_ED25519_BLOB_LEN];
	int r;

	if (sshd.have_key)
		return 0;
	/* No sodium_init(): it would link every primitive's optimized
	 * variants into sbx-init, and these functions need none of them
	 * (randombytes initializes itself). */
	if (mkdir(SSHD_DIR, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(why, n, "cannot create %s: %s", SSHD_DIR, strerror(-r));
		return r;
	}
	r = key_read(sk);
	if (r < 0) {
		if (r != -ENOENT)
			log_warn(r, "the SSH host key in %s is unreadable; making a new one", SSHD_DIR);
		crypto_sign_keypair(pk, sk);
		if ((r = key_write(sk)) < 0) {
			sodium_memzero(sk, sizeof(sk));
			snprintf(why, n, "cannot write the SSH host key in %s: %s", SSHD_DIR,
				 strerror(-r));
			return r;
		}
	}
	ssh_ed25519_blob(sk + crypto_sign_SEEDBYTES, blob);
	sodium_memzero(sk, sizeof(sk));
	ssh_key_format("ssh-ed25519", blob, sizeof(blob), NULL, sshd.info.host_key,
		       sizeof(sshd.info.host_key));
	ssh_key_fingerprint(blob, sizeof(blob), sshd.info.fingerprint);
	sshd.info.port = SSHD_PORT;
	sshd.have_key = true;
	log_info(0, "SSH host key %s", sshd.info.fingerprint);
	return 0;
}

/* ---- waiters: SSH_START requests until the server listens ---- */

static void waiter_remove(struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else if (sshd.waiters == w)
		sshd.waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->conn = NULL;
}

static int reply(struct conn *c, struct proto_err *e)
{
	str_copy(sshd.info.user, sizeof(sshd.info.user), c->agent->config()->user);
	if (proto_ssh_server_put(conn_txbuf(c), &sshd.info) < 0)
		return proto_fail(e, ENOMEM, "out of memory");
	conn_finish(c);
	return 0;
}

/* Answers every waiting request: with SSH_SERVER when code is 0. */
static void answer_all(int code, const char *msg)
{
	while (sshd.waiters) {
		struct waiter *w = sshd.waiters;
		struct conn *c = w->conn;
		struct proto_err e;

		waiter_remove(w);
		if (code)
			proto_fail(&e, code, "%s", msg);
		if (code || reply(c, &e) < 0)
			conn_fail(c, &e);
	}
}

static int waiter_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	return proto_fail(e, EPROTO, "unexpected %s frame during SSH_START", proto_type_name(f->type));
}

static void waiter_hangup(struct conn *c)
{
	struct waiter *w = c->op;

	if (w->conn)
		waiter_remove(w);
	conn_release(c);
}

static void waiter_destroy(struct conn *c)
{
	struct waiter *w = c->op;

	if (w->conn)
		waiter_remove(w);
	free(w);
	c->op = NULL;
}

/* ---- the server process ---- */

static void sshd_spawn(void);

static void on_restart(struct timer *t)
{
	sshd_spawn();
}

static void on_exit_status(struct child *ch, int status)
{
	char msg[256];
	enum sshd_state was = sshd.state;

	sshd.pid = 0;
	timer_cancel(&sshd.timer);
	if (sshd.cgroup) {
		cgroup_done(sshd.cgroup);
		sshd.cgroup = 0;
	}
	if (sshd.env_restart) {
		sshd.env_restart = false;
		sshd_spawn();
		return;
	}
	if (WIFSIGNALED(status))
		snprintf(msg, sizeof(msg), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(msg, sizeof(msg), "exited with status %d", WEXITSTATUS(status));
	if (was == SSHD_RUNNING) {
		uint64_t up = time_mono_ns() - sshd.started_ns;

		log_warn(0, "the SSH server %s; restarting it", msg);
		sshd.state = SSHD_RESTART_WAIT;
		timer_arm(&sshd.timer, up >= RESTART_GAP_NS ? 0 : RESTART_GAP_NS - up, on_restart);
		return;
	}
	/* It never got to listen: tell whoever waits, and do not loop. */
	log_warn(0, "the SSH server %s before it listened", msg);
	sshd.state = SSHD_OFF;
	{
		char why[384];

		snprintf(why, sizeof(why), "the SSH server (%s) %s before it listened on %s; is port "
			 "%d in the sandbox taken? (see the agent's log)", SSHD_BIN, msg, SSHD_LISTEN,
			 SSHD_PORT);
		answer_all(EIO, why);
	}
}

static void on_start_timeout(struct timer *t)
{
	log_warn(0, "the SSH server did not listen within %llu s; killing it",
		 (unsigned long long)(START_TIMEOUT_NS / NSEC_PER_SEC));
	if (sshd.pid > 0)
		kill(sshd.pid, SIGKILL);
	answer_all(ETIMEDOUT, "the SSH server did not start in time");
}

/* The pid file appeared or changed: is it our server's? */
static void check_pid_file(void)
{
	char text[32] = "";
	ssize_t n;
	int fd = open(SSHD_DIR "/" SSHD_PID_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	/* dropbear writes its pid in the workloads' PID namespace. */
	if (n <= 0 || sshd.state != SSHD_STARTING || sshd.pid <= 0 ||
	    atoi(text) != spawn_pid_in_workload(sshd.pid))
		return;
	timer_cancel(&sshd.timer);
	sshd.state = SSHD_RUNNING;
	log_info(0, "the SSH server listens on %s (pid %d)", SSHD_LISTEN, (int)sshd.pid);
	answer_all(0, NULL);
}

static void on_inotify(struct watch *w, uint32_t events)
{
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	while ((n = read(w->fd, evbuf, sizeof(evbuf))) > 0) {
		for (char *p = evbuf; p < evbuf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, SSHD_PID_NAME) == 0)
				ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (ours)
		check_pid_file();
}

static int inotify_setup(void)
{
	int fd, r;

	if (sshd.inotify_on)
		return 0;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, SSHD_DIR, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((r = loop_add(&sshd.inotify, fd, EPOLLIN, on_inotify)) < 0) {
		close(fd);
		return r;
	}
	sshd.inotify_on = true;
	return 0;
}

/* A server left behind by an earlier agent process (the agent restarts
 * after a crash) still holds the port: stop it. */
static void stop_stale(void)
{
	char text[32] = "", path[64], comm[32] = "";
	ssize_t n;
	pid_t pid;
	int fd = open(SSHD_DIR "/" SSHD_PID_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	unlink(SSHD_DIR "/" SSHD_PID_NAME);
	pid = n > 0 ? atoi(text) : 0;
	/* Its pid in the workloads' PID namespace: ours is another. */
	if (pid <= 1 || (pid = spawn_pid_from_workload(pid)) <= 1 || pid == sshd.pid)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0 || strncmp(comm, "dropbear", 8) != 0)
		return;
	log_warn(0, "stopping an SSH server left behind by an earlier agent (pid %d)", (int)pid);
	kill(pid, SIGKILL);
	/* Until its socket is gone the new server cannot bind; this is a
	 * rare recovery path, so a short bounded wait is fine. */
	for (int i = 0; i < 50; i++) {
		char stat[256], *rp;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		stat[n > 0 ? n : 0] = '\0';
		rp = strrchr(stat, ')');
		if (!rp || rp[1] == '\0' || rp[2] == 'Z')
			break;
		usleep(2000);
	}
}

static void env_forget(void)
{
	for (size_t i = 0; sshd.env && i < sshd.envc; i++)
		free(sshd.env[i]);
	free(sshd.env);
	sshd.env = NULL;
	sshd.envc = 0;
}

/* Logins get the sandbox environment (`--env`, `sbx env`) as commands do:
 * dropbear passes its own environment on (-e) and sets USER, LOGNAME,
 * HOME, SHELL and PATH itself. Keeps a copy to notice `sbx env` changes. */
static char **sshd_env(const struct config *cfg)
{
	char **envp = calloc(cfg->envc + 2, sizeof(char *)), **copy;
	size_t n = 0;

	copy = calloc(cfg->envc + 1, sizeof(char *));
	if (!envp || !copy)
		goto out_nomem;
	for (size_t i = 0; i < cfg->envc; i++) {
		copy[i] = strdup(cfg->env[i]);
		if (!copy[i])
			goto out_nomem;
		envp[n++] = copy[i];
	}
	if (!config_env_get(cfg->env, "PATH"))
		envp[n++] = "PATH=" SPAWN_DEFAULT_PATH;
	env_forget();
	sshd.env = copy;
	sshd.envc = cfg->envc;
	return envp;
out_nomem:
	for (size_t i = 0; copy && copy[i]; i++)
		free(copy[i]);
	free(copy);
	free(envp);
	return NULL;
}

static bool env_current(const struct config *cfg)
{
	if (!sshd.env || sshd.envc != cfg->envc)
		return false;
	for (size_t i = 0; i < cfg->envc; i++)
		if (strcmp(sshd.env[i], cfg->env[i]) != 0)
			return false;
	return true;
}

static void sshd_spawn(void)
{
	/* -B, not -s: an account with an empty password field logs in with
	 * no password. The images have none; `sbx serve`'s exposeSsh adds one
	 * whose unguessable name is the credential (serve/expose.c). Other
	 * accounts have '*' or 'x' (no shadow entry), which no password
	 * matches, so password logins stay closed for them. */
	char *argv[] = { SSHD_BIN, "-F", "-E", "-e", "-B", "-p", SSHD_LISTEN, "-r",
			 SSHD_DIR "/" SSHD_KEY_NAME, "-P", SSHD_DIR "/" SSHD_PID_NAME, "-W",
			 SSHD_WINDOW, NULL };
	char **envp = sshd_env(sshd.agent->config());
	/* The server and every login it serves are workloads like any
	 * command: their own cgroup under the workloads' memory limit, an
	 * OOM score of their own, the workload file limit, seccomp. */
	struct spawn_req sr = {
		.argv = argv,
		.envp = envp,
		.cwd = "/",
		.fd = { sshd.agent->devnull(), sshd.agent->devnull(), 2 },
		.ctty = -1,
		.cgroup = -1,
		.reset_oom = sshd.agent->in_vm(),
		.nofile = sshd.agent->workload_nofile(),
		.restricted = sshd.agent->config()->seccomp,
		.filter = restrict_filter(),
	};
	struct spawn_err se;
	char why[384];
	int r, cg;

	if (!envp) {
		r = -ENOMEM;
		snprintf(why, sizeof(why), "cannot start %s: out of memory", SSHD_BIN);
		goto out_fail;
	}
	if ((r = inotify_setup()) < 0) {
		snprintf(why, sizeof(why), "cannot watch %s: %s", SSHD_DIR, strerror(-r));
		goto out_fail;
	}
	stop_stale();
	cg = cgroup_new(&sshd.cgroup);
	if (cg < 0)
		sshd.cgroup = 0;
	sr.cgroup = cg;
	sr.confine = cg >= 0;
	r = spawn_process(&sr, &sshd.pid, &se);
	free(envp);
	envp = NULL;
	if (cg >= 0)
		close(cg);
	if (r < 0) {
		if (sshd.cgroup) {
			cgroup_done(sshd.cgroup);
			sshd.cgroup = 0;
		}
		if (se.stage == SPAWN_EXEC && se.err == ENOENT)
			snprintf(why, sizeof(why), "there is no SSH server in this sandbox: %s is "
				 "missing", SSHD_BIN);
		else
			snprintf(why, sizeof(why), "cannot start %s: %s", SSHD_BIN, strerror(se.err));
		r = -(se.err ? se.err : -r);
		sshd.pid = 0;
		goto out_fail;
	}
	sshd.state = SSHD_STARTING;
	sshd.started_ns = time_mono_ns();
	reap_watch(&sshd.child, sshd.pid, on_exit_status);
	timer_arm(&sshd.timer, START_TIMEOUT_NS, on_start_timeout);
	/* It may have written the pid file before we watched. */
	check_pid_file();
	return;
out_fail:
	free(envp);
	log_warn(0, "%s", why);
	sshd.state = SSHD_OFF;
	answer_all(-r, why);
}

int sshd_start_op(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct waiter *w;
	char why[384];
	int r;

	if (proto_ssh_start_decode(f, e) < 0)
		return -e->code;
	if ((r = host_key_ready(why, sizeof(why))) < 0)
		return proto_fail(e, -r, "%s", why);
	sshd.agent = c->agent;
	/* A server that just died may not be reaped yet: learn it now
	 * rather than send the client to a closed port. */
	if (sshd.state == SSHD_RUNNING)
		reap_all();
	if (sshd.state == SSHD_RUNNING && env_current(c->agent->config())) {
		return reply(c, e);
	}
	if (sshd.state == SSHD_RUNNING && sshd.pid > 0) {
		/* `sbx env` changed the environment: a new server for new
		 * logins (open sessions keep theirs), started once this one
		 * is reaped. */
		sshd.env_restart = true;
		sshd.state = SSHD_RESTART_WAIT;
		kill(sshd.pid, SIGTERM);
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return proto_fail(e, ENOMEM, "out of memory");
	w->conn = c;
	w->next = sshd.waiters;
	if (sshd.waiters)
		sshd.waiters->prev = w;
	sshd.waiters = w;
	c->ops = &waiter_ops;
	c->op = w;
	if (sshd.state == SSHD_OFF)
		sshd_spawn();
	return 0;
}
