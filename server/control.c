/* Operations on the sandbox as a whole (see control.h): what it is
 * (INFO), how long it lives (SESSION, EXTEND, SET_TIME, SHUTDOWN), the
 * environment its commands start with (ENV), and its writable disk held
 * still for a snapshot (FREEZE); and IDENTITY, by which a template's clone
 * becomes a sandbox of its own. */
#include "server/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "exec/job.h"
#include "lib/config.h"
#include "lib/ctl.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "lib/util.h"
#include "server/server.h"

#define SBX_VERSION "0.1.0"
#define EXTEND_MAX_S 3600  /* per EXTEND; PID 1 also caps the total */
#define WAITERS_MAX 64
#define ENV_FRAME_FILL (256 * 1024)

static struct {
	uint32_t kind;           /* LIFE_* */
	uint64_t deadline;       /* CLOCK_BOOTTIME ns; 0: none */
	uint64_t grace_deadline; /* session lifetime without a session */
} life;
static unsigned sessions;

/* Connections waiting for PID 1's answer to EXTEND or SET_TIME, in the
 * order the requests went to PID 1 (it answers in order). */
static struct conn *waiters[WAITERS_MAX];
static unsigned wait_head, wait_len;

static uint64_t left_of(uint64_t deadline)
{
	uint64_t now = time_boot_ns();

	return deadline > now ? deadline - now : 0;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void lifetime_now(struct lifetime *l)
{
	l->kind = life.kind;
	l->left_ns = life.kind == LIFE_DURATION ? left_of(life.deadline) : 0;
	l->realtime_ns = realtime_ns();
}

/* ---- the environment store and the labels file ---- */

static void state_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", server_state_dir(), name);
}

/* Writes a state file atomically: a reader sees the old or the new. */
static int write_state(const char *name, mode_t mode, void (*fill)(FILE *f))
{
	char path[512], tmp[520];
	FILE *f;
	int fd;

	state_path(path, sizeof(path), name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	fill(f);
	if (fflush(f) != 0 || fsync(fd) < 0) {
		fclose(f);
		unlink(tmp);
		return -EIO;
	}
	fclose(f);
	return rename(tmp, path) < 0 ? -errno : 0;
}

static void fill_env(FILE *f)
{
	const struct config *cfg = server_config();
	char key[300];

	fprintf(f, "# the sandbox environment, as changed by `sbx env`\n");
	for (size_t i = 0; i < cfg->envc; i++) {
		const char *eq = strchr(cfg->env[i], '=');

		snprintf(key, sizeof(key), "env.%.*s", (int)(eq - cfg->env[i]), cfg->env[i]);
		kv_write(f, key, eq + 1);
	}
}

static void fill_labels(FILE *f)
{
	const struct config *cfg = server_config();

	for (size_t i = 0; i < cfg->nlabels; i++)
		fprintf(f, "%s\n", cfg->labels[i]);
}

void control_init(void)
{
	struct config *cfg = server_config_mut(), stored;
	char path[512], err[256];
	int r;

	life.kind = cfg->session ? LIFE_SESSION : cfg->lifetime ? LIFE_DURATION : LIFE_NONE;
	if (!server_state_dir()[0])
		return;
	/* The environment as `sbx env` left it, if it ever changed it: that
	 * survives a restart of this process. */
	state_path(path, sizeof(path), "env");
	config_init(&stored);
	r = config_load_file(&stored, path, err, sizeof(err));
	if (r == 0) {
		for (size_t i = 0; i < cfg->envc; i++)
			free(cfg->env[i]);
		free(cfg->env);
		cfg->env = stored.env;
		cfg->envc = stored.envc;
		stored.env = NULL;
		stored.envc = 0;
	} else if (r != -ENOENT) {
		log_warn(0, "%s", err);
	}
	config_free(&stored);
}

void control_write_labels(void)
{
	int r;

	if (server_state_dir()[0] && (r = write_state("labels", 0644, fill_labels)) < 0)
		log_warn(r, "unable to write %s/labels", server_state_dir());
}

/* ---- PID 1's answers ---- */

static void waiter_done(struct conn *c, const struct ctl_msg *m)
{
	struct lifetime l;

	if (m->arg3 < 0) {
		struct proto_err e;

		proto_fail(&e, (int)-m->arg3, "%s", m->text[0] ? m->text : strerror((int)-m->arg3));
		conn_fail(c, &e);
		return;
	}
	lifetime_now(&l);
	proto_lifetime_put(conn_txbuf(c), FT_LIFETIME, &l);
	conn_finish(c);
}

/* A clone's /run/sbx/env and labels, written once IDENTITY's answer is
 * on its way (identity_files): ~10 ms of a clone's create -> ready under
 * TCG, where the guest runs that code for the first time. Nothing of the
 * host's is served before: it is still this turn of the loop. */
static bool identity_files_due;

static void identity_files(void)
{
	int r;

	identity_files_due = false;
	if (server_state_dir()[0] && (r = write_state("env", 0600, fill_env)) < 0)
		log_warn(r, "unable to write %s/env", server_state_dir());
	control_write_labels();
}

void control_from_init(const struct ctl_msg *m)
{
	if (m->type != CTL_LIFETIME)
		return;
	life.kind = m->flags;
	life.deadline = (uint64_t)m->arg;
	life.grace_deadline = (uint64_t)m->arg2;
	if (m->arg4 && wait_len > 0) {
		struct conn *c = waiters[wait_head];

		wait_head = (wait_head + 1) % WAITERS_MAX;
		wait_len--;
		if (c)
			waiter_done(c, m);
	}
	if (identity_files_due)
		identity_files();
}

static void waiter_hangup(struct conn *c)
{
	for (unsigned i = 0; i < wait_len; i++)
		if (waiters[(wait_head + i) % WAITERS_MAX] == c)
			waiters[(wait_head + i) % WAITERS_MAX] = NULL;
	conn_release(c);
}

static const struct conn_ops waiter_ops = { .name = "lifetime", .hangup = waiter_hangup };

/* Sends m (and fds) to PID 1 and parks c until it answers. */
static int ask_init_fds(struct conn *c, const struct ctl_msg *m, const int *fds, int nfds,
			struct proto_err *e)
{
	int r;

	if (wait_len == WAITERS_MAX)
		return proto_fail(e, EBUSY, "too many lifetime requests at once");
	if ((r = server_ctl(m, fds, nfds)) < 0)
		return proto_fail(e, -r, "cannot reach the init process");
	waiters[(wait_head + wait_len) % WAITERS_MAX] = c;
	wait_len++;
	c->ops = &waiter_ops;
	return 0;
}

static int ask_init(struct conn *c, const struct ctl_msg *m, struct proto_err *e)
{
	return ask_init_fds(c, m, NULL, 0, e);
}

/* ---- operations ---- */

int control_info(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct info i = { 0 };
	struct utsname u;

	if (f->len != 0)
		return proto_fail(e, EBADMSG, "INFO payload is %u bytes, expected 0", f->len);
	str_copy(i.version, sizeof(i.version), "sbx-init " SBX_VERSION);
	if (uname(&u) == 0) {
		str_copy(i.hostname, sizeof(i.hostname), u.nodename);
		str_copy(i.kernel, sizeof(i.kernel), u.release);
	}
	i.uptime_ns = time_boot_ns();
	i.pid1 = server_under_pid1();
	i.lifetime_kind = life.kind;
	i.lifetime_left_ns = life.kind == LIFE_DURATION ? left_of(life.deadline) : 0;
	i.grace_left_ns = life.grace_deadline ? left_of(life.grace_deadline) : 0;
	i.sessions = sessions;
	i.jobs = job_count();
	proto_info_ok_put(conn_txbuf(c), &i);
	conn_finish(c);
	return 0;
}

int control_shutdown(struct conn *c, const struct frame *f, struct proto_err *e)
{
	char reason[PROTO_REASON_MAX + 1];
	int r;

	if (proto_shutdown_decode(f, reason, e) < 0)
		return -e->code;
	r = server_request_shutdown(reason[0] ? reason : "requested by the host");
	if (r < 0)
		return proto_fail(e, -r, "cannot reach the init process to shut down");
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
	return 0;
}

static void tell_sessions(void)
{
	struct ctl_msg m = { .type = CTL_SESSIONS, .arg = sessions };

	if (server_ctl(&m, NULL, 0) < 0)
		log_warn(0, "unable to tell PID 1 about %u sessions", sessions);
}

static int session_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	return proto_fail(e, EPROTO, "a session carries no %s frames", proto_type_name(f->type));
}

static void session_hangup(struct conn *c)
{
	sessions--;
	tell_sessions();
	conn_release(c);
}

static const struct conn_ops session_ops = {
	.name = "session",
	.frame = session_frame,
	.hangup = session_hangup,
};

int control_session(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct lifetime l;

	if (f->len != 0)
		return proto_fail(e, EBADMSG, "SESSION payload is %u bytes, expected 0", f->len);
	/* The connection stays open, quiet, for as long as the session. */
	sessions++;
	tell_sessions();
	c->ops = &session_ops;
	lifetime_now(&l);
	proto_lifetime_put(conn_txbuf(c), FT_LIFETIME, &l);
	conn_flush(c);
	return 0;
}

/* ---- FREEZE: the writable disk held still while the host copies it ---- */

#define FREEZE_MAX_MS (300 * 1000)

static struct conn *freezer;  /* the connection that holds the freeze */
static struct child watcher;  /* the process that thaws when it ends */

/* A process of its own watches the connection and thaws when the host
 * hangs up (or after FREEZE_MAX_MS): the server itself may be blocked
 * writing to the frozen disk (a file operation of another client) and
 * could not. */
static void freeze_watch(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLRDHUP };

	poll(&p, 1, FREEZE_MAX_MS);
	ioctl(server_upper_fd(), FITHAW, 0);
	_exit(0);
}

static void on_watcher_exit(struct child *ch, int status)
{
	(void)ch;
	(void)status;
}

static int freeze_frame(struct conn *c, const struct frame *f, struct proto_err *e)
{
	return proto_fail(e, EPROTO, "a frozen disk's connection carries no %s frames",
			  proto_type_name(f->type));
}

static void freeze_hangup(struct conn *c)
{
	/* EINVAL: the watcher thawed it first. */
	if (ioctl(server_upper_fd(), FITHAW, 0) < 0 && errno != EINVAL)
		log_warn(errno, "unable to thaw the writable disk");
	freezer = NULL;
	conn_release(c);
}

static const struct conn_ops freeze_ops = {
	.name = "freeze",
	.frame = freeze_frame,
	.hangup = freeze_hangup,
};

int control_freeze(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct stat st;
	pid_t pid;
	int r;

	if (f->len != 0)
		return proto_fail(e, EBADMSG, "FREEZE payload is %u bytes, expected 0", f->len);
	if (freezer)
		return proto_fail(e, EBUSY, "the writable disk is frozen already (another snapshot)");
	if (server_upper_fd() < 0 || fstat(server_upper_fd(), &st) < 0 || !S_ISDIR(st.st_mode))
		return proto_fail(e, EOPNOTSUPP, "this sandbox has no writable disk to freeze");
	/* The kernel syncs the file system, then blocks its writers until
	 * FITHAW: what the host copies is whole, its journal empty. */
	if (ioctl(server_upper_fd(), FIFREEZE, 0) < 0)
		return proto_fail(e, errno, "cannot freeze the writable disk");
	pid = fork();
	if (pid == 0)
		freeze_watch(c->w.fd);
	if (pid < 0) {
		r = errno;
		ioctl(server_upper_fd(), FITHAW, 0);
		return proto_fail(e, r, "cannot start the freeze's watcher");
	}
	reap_watch(&watcher, pid, on_watcher_exit);
	freezer = c;
	c->ops = &freeze_ops;
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_flush(c);
	return 0;
}

int control_extend(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct ctl_msg m = { .type = CTL_EXTEND };
	uint64_t s;

	if (proto_want_len(f, 8, e) < 0)
		return -e->code;
	s = get_le64(f->payload);
	if (s < 1 || s > EXTEND_MAX_S)
		return proto_fail(e, EINVAL, "EXTEND: %llu seconds is out of range (1-%d per request)",
				  (unsigned long long)s, EXTEND_MAX_S);
	m.arg = (int64_t)s;
	return ask_init(c, &m, e);
}

int control_set_time(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct ctl_msg m = { .type = CTL_SET_LEFT };
	struct proto_err fe; /* a malformed field, quoted in e */
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len;
	uint64_t rt = 0, left = 0;
	bool have_rt = false, have_left = false;
	int r;

	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, &fe)) > 0) {
		if ((tag != LIFE_REALTIME_NS && tag != LIFE_LEFT_NS) || len != 8 ||
		    (tag == LIFE_REALTIME_NS ? have_rt : have_left))
			return proto_fail(e, EINVAL, "SET_TIME: expected REALTIME_NS and an optional LEFT_NS, "
					  "8 bytes each, once");
		if (tag == LIFE_REALTIME_NS) {
			rt = get_le64(v);
			have_rt = true;
		} else {
			left = get_le64(v);
			have_left = true;
		}
	}
	if (r < 0 || !have_rt)
		return proto_fail(e, EINVAL, "SET_TIME: %s", r < 0 ? fe.msg : "field REALTIME_NS is missing");
	if (server_in_vm()) {
		struct timespec ts = { .tv_sec = (time_t)(rt / NSEC_PER_SEC),
				       .tv_nsec = (long)(rt % NSEC_PER_SEC) };

		if (clock_settime(CLOCK_REALTIME, &ts) < 0)
			return proto_fail(e, errno, "cannot set the clock: %s", strerror(errno));
	}
	if (!have_left) {
		struct lifetime l;

		lifetime_now(&l);
		proto_lifetime_put(conn_txbuf(c), FT_LIFETIME, &l);
		conn_finish(c);
		return 0;
	}
	m.arg = (int64_t)left;
	return ask_init(c, &m, e);
}

/* ENV: list, set or unset the sandbox environment. */
int control_env(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct config *cfg = server_config_mut();
	struct proto_err fe; /* a malformed field, quoted in e */
	struct field_iter it;
	const uint8_t *v;
	uint16_t tag;
	uint32_t len, op = 0;
	size_t mark, base;
	int r;

	base = buf_len(conn_txbuf(c));
	/* Pass 1: the operation, and every name checked before anything
	 * changes, so a bad request changes nothing. */
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, &fe)) > 0) {
		if (tag == ENV_OP && len == 4 && !op) {
			op = get_le32(v);
		} else if (tag == ENV_ENTRY || tag == ENV_NAME) {
			const uint8_t *eq = memchr(v, '=', len);
			size_t nlen = tag == ENV_ENTRY ? (eq ? (size_t)(eq - v) : 0) : len;
			bool ok = nlen > 0 && nlen < 256 && !memchr(v, '\0', len) &&
				  (tag == ENV_ENTRY || !eq) && (v[0] < '0' || v[0] > '9');

			for (size_t i = 0; ok && i < nlen; i++)
				ok = v[i] == '_' || (v[i] >= '0' && v[i] <= '9') ||
				     ((v[i] | 0x20) >= 'a' && (v[i] | 0x20) <= 'z');
			if (!ok)
				return proto_fail(e, EINVAL, "ENV: '%.*s' is not %s", (int)MIN(len, 100u),
						  (const char *)v, tag == ENV_ENTRY ?
						  "NAME=value with a NAME of letters, digits and '_'" :
						  "a variable name (letters, digits and '_')");
		} else {
			return proto_fail(e, EINVAL, "ENV: unknown or malformed field %u", tag);
		}
	}
	if (r < 0 || op < ENV_LIST || op > ENV_UNSET)
		return proto_fail(e, EINVAL, "ENV: %s", r < 0 ? fe.msg : "OP must be 1 (list), 2 (set) or 3 (unset)");
	if (op == ENV_LIST) {
		/* As many ENV_LIST frames as it takes (a variable can be
		 * 128 KiB, the frame cap is 1 MiB), then OK. */
		size_t i = 0;

		while (i < cfg->envc) {
			if (proto_begin(conn_txbuf(c), FT_ENV_LIST, &mark) < 0)
				goto nomem;
			do {
				if (proto_field_put_str(conn_txbuf(c), ENV_ENTRY, cfg->env[i]) < 0)
					goto nomem;
			} while (++i < cfg->envc &&
				 buf_len(conn_txbuf(c)) - mark + strlen(cfg->env[i]) < ENV_FRAME_FILL);
			if (proto_end(conn_txbuf(c), mark) < 0)
				goto nomem;
		}
		proto_put(conn_txbuf(c), FT_OK, NULL, 0);
		conn_finish(c);
		return 0;
	}
	if (op == ENV_SET) {
		/* All or nothing: the variables the request adds must fit. */
		size_t added = 0;

		proto_fields(&it, f);
		while (proto_field_next(&it, &tag, &v, &len, NULL) > 0) {
			const uint8_t *eq = memchr(v, '=', len);
			char name[256];

			if (tag != ENV_ENTRY)
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)(eq - v), (const char *)v);
			added += !config_env_get(cfg->env, name);
		}
		if (cfg->envc + added > CONFIG_ENV_MAX) {
			return proto_fail(e, E2BIG, "ENV: %zu variables would pass the limit of %d; nothing "
					  "was changed", cfg->envc + added, CONFIG_ENV_MAX);
		}
	}
	proto_fields(&it, f);
	while (proto_field_next(&it, &tag, &v, &len, NULL) > 0) {
		char *s;

		if (tag == ENV_OP || (tag == ENV_ENTRY) != (op == ENV_SET))
			continue;
		s = strndup((const char *)v, len);
		if (!s)
			goto nomem;
		if (op == ENV_SET) {
			char *eq = strchr(s, '=');

			*eq = '\0';
			r = config_env_set(&cfg->env, &cfg->envc, s, eq + 1);
		} else {
			r = config_env_set(&cfg->env, &cfg->envc, s, NULL);
		}
		free(s);
		if (r < 0)
			return proto_fail(e, -r, "ENV: cannot change the environment: %s", strerror(-r));
	}
	if (server_state_dir()[0] && (r = write_state("env", 0600, fill_env)) < 0)
		return proto_fail(e, -r, "ENV: changed, but cannot save it in %s: %s", server_state_dir(),
				  strerror(-r));
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
	return 0;
nomem:
	/* The answer is queued whole (at most 2 MiB per connection): drop
	 * the part queued, and say why. */
	buf_truncate(conn_txbuf(c), base);
	return proto_fail(e, E2BIG, "ENV: the environment is too large to list (over 2 MiB)");
}

/* ---- IDENTITY ---- */

/* Seed material from the host into the kernel's pool, credited, and a
 * reseed of the CRNG now rather than at its next scheduled one: a clone's
 * random numbers must not be its template's (random(4), RNDADDENTROPY,
 * RNDRESEEDCRNG). */
static int rng_reseed(const uint8_t *seed, uint32_t len)
{
	/* struct rand_pool_info ends in a flexible array: room for it and
	 * the seed, as words (the kernel reads buf as __u32s) */
	uint32_t raw[(sizeof(struct rand_pool_info) + IDENT_SEED_MAX) / 4 + 1];
	struct rand_pool_info *info = (struct rand_pool_info *)(void *)raw;
	int fd, r = 0;

	memset(raw, 0, sizeof(raw));
	info->entropy_count = (int)(len / 4 * 4 * 8);
	info->buf_size = (int)(len / 4 * 4);
	memcpy(info->buf, seed, (size_t)info->buf_size);
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, RNDADDENTROPY, info) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		r = -errno;
	close(fd);
	explicit_bzero(raw, sizeof(raw));
	return r;
}

/* The clone's configuration, sealed, for PID 1 to hand a restarted
 * server. */
static int config_memfd(const uint8_t *text, uint32_t len)
{
	int fd = memfd_create("sbx-config", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (fd_write_all(fd, text, len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int control_identity(struct conn *c, const struct frame *f, struct proto_err *e)
{
	struct config *cfg = server_config_mut(), next;
	struct ctl_msg m = { .type = CTL_IDENTITY };
	const uint8_t *v, *text = NULL, *seed = NULL;
	uint32_t len, text_len = 0, seed_len = 0;
	struct proto_err fe; /* a malformed field, quoted in e */
	struct field_iter it;
	char err[512];
	uint64_t rt = 0;
	uint16_t tag;
	int r, fd;

	if (!cfg->template)
		return proto_fail(e, EPERM, "IDENTITY: this sandbox is not a template's fresh clone");
	proto_fields(&it, f);
	while ((r = proto_field_next(&it, &tag, &v, &len, &fe)) > 0) {
		if (tag == IDENT_CONFIG && !text && len > 0 && len <= CONFIG_VALUE_MAX) {
			text = v;
			text_len = len;
		} else if (tag == IDENT_SEED && !seed && len >= IDENT_SEED_MIN &&
			   len <= IDENT_SEED_MAX) {
			seed = v;
			seed_len = len;
		} else if (tag == IDENT_REALTIME_NS && !rt && len == 8) {
			rt = get_le64(v);
		} else {
			return proto_fail(e, EINVAL, "IDENTITY: expected CONFIG (up to %d bytes), SEED "
					  "(%d-%d bytes) and REALTIME_NS, once each", CONFIG_VALUE_MAX,
					  IDENT_SEED_MIN, IDENT_SEED_MAX);
		}
	}
	if (r < 0 || !text || !seed || !rt)
		return proto_fail(e, EINVAL, "IDENTITY: %s", r < 0 ? fe.msg : "CONFIG, SEED and REALTIME_NS "
				  "are required");
	config_init(&next);
	if (config_parse_text(&next, (const char *)text, text_len, "IDENTITY", err,
			      sizeof(err)) < 0 || next.template || !next.token[0]) {
		proto_fail(e, EINVAL, "IDENTITY: %s", next.template ? "the clone is a template" :
			  !next.token[0] ? "the clone has no token" : err);
		config_free(&next);
		return -e->code;
	}
	if (server_in_vm()) {
		struct timespec ts = { .tv_sec = (time_t)(rt / NSEC_PER_SEC),
				       .tv_nsec = (long)(rt % NSEC_PER_SEC) };

		if ((r = rng_reseed(seed, seed_len)) < 0 ||
		    (next.hostname[0] && sethostname(next.hostname, strlen(next.hostname)) < 0 &&
		     (r = -errno)) ||
		    (clock_settime(CLOCK_REALTIME, &ts) < 0 && (r = -errno))) {
			proto_fail(e, -r, "IDENTITY: cannot take the clone's identity: %s",
				  strerror(-r));
			config_free(&next);
			return -e->code;
		}
	}
	if ((fd = config_memfd(text, text_len)) < 0) {
		proto_fail(e, -fd, "IDENTITY: cannot keep the configuration: %s", strerror(-fd));
		config_free(&next);
		return -e->code;
	}
	/* From here on the template is gone: its token no longer opens. */
	server_set_token(next.token);
	explicit_bzero(next.token, sizeof(next.token));
	cfg->template = false;
	str_copy(cfg->hostname, sizeof(cfg->hostname), next.hostname);
	strv_free(cfg->env, cfg->envc);
	cfg->env = next.env;
	cfg->envc = next.envc;
	next.env = NULL;
	next.envc = 0;
	strv_free(cfg->labels, cfg->nlabels);
	cfg->labels = next.labels;
	cfg->nlabels = next.nlabels;
	next.labels = NULL;
	next.nlabels = 0;
	cfg->session = next.session;
	cfg->lifetime = next.lifetime;
	/* The files after the answer (control_from_init), or now if PID 1
	 * cannot be asked. */
	identity_files_due = true;
	m.flags = next.session ? LIFE_SESSION : next.lifetime ? LIFE_DURATION : LIFE_NONE;
	m.arg = (int64_t)next.lifetime;
	m.arg2 = (int64_t)next.session_grace;
	config_free(&next);
	/* PID 1 has its own copy once sent: ours is closed either way. */
	r = ask_init_fds(c, &m, &fd, 1, e);
	close(fd);
	if (r < 0)
		identity_files();
	return r;
}
